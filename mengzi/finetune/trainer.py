"""One fine-tuning run of one seed: encode, train with the techniques on the engine, keep the best dev checkpoint.

    result = train_seed(cfg, task, splits, seed, out, accelerator)

What is fine-tuning's own: the task's model and head, the encoded features, the batches of an epoch, one micro-step
with the techniques' hooks, the dev evaluation (under EMA's weights when on) and saving the best model with its
labels. The loop, checkpoints (technique state such as the EMA average included), metrics.jsonl, early stopping and
the run folder are the engine's (`mengzi.engine`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..config import ConfigError
from ..engine import loop
from ..engine.optim import decay_groups
from ..engine.runfolder import RunInfo
from .batches import epoch_batches, eval_batches, feature_length, micro_batches, process_share
from .config import FinetuneConfig
from .kinds import Encoded, Kind, get_kind
from .techniques import Step, build_techniques

log = logging.getLogger("mengzi.finetune")


@dataclass
class TaskSpec:
    """What the engine needs to know about a task; the CLUE harness and `mengzi finetune` each build one."""

    name: str
    kind: str  # classification | multiple_choice | span
    labels: tuple[str, ...] = ()
    metric: object = None  # (predictions, dev dataset) -> {"<main metric>": value, ...}
    main_metric: str = "accuracy"


@dataclass
class SeedResult:
    seed: int
    best: dict  # dev metrics of the best evaluation (+ step)
    model_dir: Path
    train_seconds: float
    train_samples: int


class _TechniqueState:
    """Technique state (EMA average) checkpointed with the rest by accelerate."""

    def __init__(self, techniques):
        self.techniques = techniques

    def state_dict(self):
        return {t.name: t.state_dict() for t in self.techniques}

    def load_state_dict(self, state):
        for t in self.techniques:
            t.load_state_dict(state.get(t.name, {}))


# ------------------------------------------------------------------------------------------------------- model
def build_model(cfg: FinetuneConfig, task: TaskSpec, kind: Kind):
    from ..models.load import load

    source = cfg.init_from or cfg.model
    if not source:
        raise ConfigError("name the model to fine-tune: --model FOLDER (e.g. runs/pretrain/mengzi-bert-tiny/model)")
    folder = Path(source)
    if (folder / "model" / "config.json").is_file():  # a run folder (transfer from another task's run)
        folder = folder / "model"
    kwargs = {}
    if kind.name == "classification":
        kwargs = dict(num_labels=len(task.labels), id2label=dict(enumerate(task.labels)),
                      label2id={label: i for i, label in enumerate(task.labels)})
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights are newly initialized" is the point of adding a head
    try:
        model, tokenizer = load(folder if folder.exists() else source, task=kind.model_task,
                                ignore_mismatched_sizes=bool(cfg.init_from), config_overrides=kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.mengzi_task = task.name
    model.config.mengzi_task_kind = kind.name
    return model.train(), tokenizer


def parameter_groups(model, cfg: FinetuneConfig, techniques) -> list[dict]:
    """No decay on biases/norms (`decay_groups`) and each parameter's lr scaled by the techniques (layer-wise
    decay)."""
    num_layers = getattr(_inner(model).config, "num_hidden_layers", 0)
    by_scale: dict[float, list] = {}
    for name, p in model.named_parameters():
        by_scale.setdefault(math.prod(t.lr_scale(name, num_layers) for t in techniques), []).append((name, p))
    return [dict(group, lr=cfg.train.lr * scale) for scale, named in sorted(by_scale.items())
            for group in decay_groups(named, cfg.train.weight_decay) if group["params"]]


def _inner(model):
    while hasattr(model, "module") and not hasattr(model, "config"):
        model = model.module
    if hasattr(model, "get_base_model"):  # peft
        model = model.get_base_model()
    return model


# -------------------------------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_logits(model, encoded: Encoded, kind: Kind, pad_id: int, batch_size: int, accelerator) -> list[np.ndarray]:
    """Logits of every feature, in feature order, each cut to its own width (no batch padding)."""
    was_training = model.training
    model.eval()
    out: list[np.ndarray | None] = [None] * len(encoded)
    lengths = [feature_length(f) for f in encoded.features]
    for indices in eval_batches(lengths, batch_size):
        features = [encoded.features[i] for i in indices]
        batch = kind.collate(features, pad_id)
        with accelerator.autocast():
            logits = kind.logits(model(**kind.model_inputs(batch, accelerator.device)))
        for i, f, row in zip(indices, features, logits.float().cpu().numpy()):
            out[i] = row[..., : kind.logit_width(f)]
    model.train(was_training)
    return out


def evaluate(model, encoded, dataset, kind, task, cfg, pad_id, accelerator) -> tuple[dict, list, list]:
    logits = predict_logits(model, encoded, kind, pad_id, cfg.train.eval_batch_size, accelerator)
    predictions = kind.predict(logits, encoded, dataset, cfg.train)
    return task.metric(predictions, dataset), predictions, logits


# ----------------------------------------------------------------------------------------------------- the stage
class FinetuneStage(loop.Stage):
    eval_split = "dev"

    def __init__(self, cfg: FinetuneConfig, task: TaskSpec, kind: Kind, techniques, model, tokenizer, train_enc,
                 dev_enc, dev_ds, seed: int):
        super().__init__(model)
        self.cfg, self.task, self.kind, self.techniques, self.tokenizer = cfg, task, kind, techniques, tokenizer
        self.train_enc, self.dev_enc, self.dev_ds, self.seed = train_enc, dev_enc, dev_ds, seed
        self.name, self.main_metric = f"{task.name} seed {seed}", task.main_metric
        self.steps_per_epoch = math.ceil(len(train_enc) / cfg.train.batch_size)
        self.lengths = [feature_length(f) for f in train_enc.features]
        self.pad_id = tokenizer.pad_token_id or 0
        self.smoothing = max([tech.smoothing() for tech in techniques] + [0.0])
        self.plan: tuple[int, list] = (-1, [])

    def parameter_groups(self, args) -> list[dict]:
        return parameter_groups(self.model, self.cfg, self.techniques)

    def checkpoint_objects(self) -> list:
        # always registered (even empty), so a checkpoint loads whatever techniques the resumed run switches on
        return [_TechniqueState(self.techniques)]

    def micro_batches(self, run: loop.Run) -> list[loop.Micro]:
        t = self.cfg.train
        epoch, within = divmod(run.step, self.steps_per_epoch)
        if self.plan[0] != epoch:
            self.plan = (epoch, epoch_batches(self.lengths, t.batch_size, self.seed, epoch, t.group_by_length))
        share = process_share(self.plan[1][within], run.accelerator.process_index, run.accelerator.num_processes)
        return [loop.Micro(chunk, len(chunk), sum(self.lengths[i] for i in chunk))
                for chunk in micro_batches(share, t.micro_batch_size)]

    def train_micro(self, run: loop.Run, micro: loop.Micro, weight: float) -> dict:
        accelerator, kind, model = run.accelerator, self.kind, run.model

        def forward(batch):
            return kind.logits(model(**kind.model_inputs(batch, accelerator.device)))

        def task_loss(logits, batch):
            return kind.loss(logits, {k: v.to(logits.device) for k, v in batch.items()}, self.smoothing)

        batch = kind.collate([self.train_enc.features[i] for i in micro.batch], self.pad_id)
        with accelerator.autocast():
            logits = forward(batch)
            loss = task_loss(logits, batch)
            step = Step(model=model, batch=batch, logits=logits, loss=loss, kind=kind, forward=forward,
                        task_loss=task_loss, backward=lambda x: accelerator.backward(x * weight))
            total = loss + sum(tech.extra_loss(step) for tech in self.techniques)
        accelerator.backward(total * weight)
        for tech in self.techniques:
            with accelerator.autocast():
                tech.after_backward(step)
        return {"loss": float(total.detach())}

    def after_step(self, run: loop.Run) -> None:
        for tech in self.techniques:
            tech.after_optimizer_step(run.model)

    def evaluate(self, run: loop.Run) -> dict:
        """Dev metrics under the evaluation weights (EMA's average if on), on the main process."""
        if not run.accelerator.is_main_process:
            return {}
        inner = run.unwrapped
        with contextlib.ExitStack() as stack:
            for tech in self.techniques:
                stack.enter_context(tech.eval_weights(inner))
            metrics, _, _ = evaluate(inner, self.dev_enc, self.dev_ds, self.kind, self.task, self.cfg, self.pad_id,
                                     run.accelerator)
        return {k: round(v, 5) for k, v in metrics.items()}

    def save_model(self, run: loop.Run, folder: Path) -> None:
        from ..models.load import save_pretrained

        inner = run.unwrapped
        with contextlib.ExitStack() as stack:  # the best model is the one evaluated: EMA's average when on
            for tech in self.techniques:
                stack.enter_context(tech.eval_weights(inner))
            final = inner
            for tech in self.techniques:
                final = tech.finalize_model(final)
            save_pretrained(final, self.tokenizer, folder, overwrite=True)
        atomic.write_text(run.out / "best.json", json.dumps(run.state["best"], indent=1))

    def finish(self, run: loop.Run) -> dict:
        return {"task": self.task.name, "seed": self.seed, "best": run.state["best"]}


def train_seed(cfg: FinetuneConfig, task: TaskSpec, splits: dict, seed: int, out: Path, accelerator,
               info: RunInfo | None = None) -> SeedResult:
    from accelerate.utils import set_seed

    t = cfg.train
    set_seed(seed)
    kind = get_kind(task.kind)
    techniques = build_techniques(cfg.techniques, kind.name)
    model, tokenizer = build_model(cfg, task, kind)
    for tech in techniques:
        model = tech.prepare_model(model, kind.name)
    train_ds, dev_ds = splits["train"], splits["dev"]
    for tech in techniques:
        train_ds = tech.prepare_train_data(train_ds, kind.name)
    started = time.perf_counter()
    train_enc = kind.encode(train_ds, tokenizer, t)
    dev_enc = kind.encode(dev_ds, tokenizer, t)
    log.info("encoded %d training examples -> %d features, %d dev -> %d in %.1fs", len(train_ds), len(train_enc),
             len(dev_ds), len(dev_enc), time.perf_counter() - started)
    if not len(train_enc):
        raise ConfigError(f"{task.name}: no training examples")
    for tech in techniques:
        tech.prepare_train_features(train_enc, kind, accelerator)
    log.info("seed %d: techniques: %s", seed, ", ".join(tech.name for tech in techniques) or "none")
    stage = FinetuneStage(cfg, task, kind, techniques, model, tokenizer, train_enc, dev_enc, dev_ds, seed)
    info = info or RunInfo("finetune", task=task.name, kind=task.kind, labels=list(task.labels))
    state = loop.train(stage, t, out, accelerator, resume=cfg.resume, info=info)
    accelerator.wait_for_everyone()
    best = {k: v for k, v in (state["best"] or {}).items() if k != "split"}
    return SeedResult(seed, best, out / "model", state["train_seconds"], state["samples_seen"])
