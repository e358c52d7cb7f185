"""One fine-tuning run of one seed: encode, train with the techniques, evaluate on dev, keep the best checkpoint.

    result = train_seed(cfg, task, splits, seed, out, accelerator)

`out/` receives `model/` (the best dev checkpoint in plain transformers format, written atomically),
`checkpoints/step-N/` (accelerate state for `resume`: weights, optimizer, scheduler, RNG, technique state such as
the EMA average) and `metrics.jsonl` (train loss / lr / samples per second, dev metrics per evaluation).
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
from ..pretrain.trainer import restore_or_start, save_checkpoint
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


def build_optimizer(model, cfg: FinetuneConfig, techniques) -> torch.optim.Optimizer:
    """AdamW with no decay on biases/norms (pre-training's `decay_groups`) and each parameter's lr scaled by the
    techniques (layer-wise decay)."""
    from ..pretrain.optim import decay_groups

    num_layers = getattr(_inner(model).config, "num_hidden_layers", 0)
    by_scale: dict[float, list] = {}
    for name, p in model.named_parameters():
        by_scale.setdefault(math.prod(t.lr_scale(name, num_layers) for t in techniques), []).append((name, p))
    params = [dict(group, lr=cfg.train.lr * scale) for scale, named in sorted(by_scale.items())
              for group in decay_groups(named, cfg.train.weight_decay) if group["params"]]
    return torch.optim.AdamW(params, lr=cfg.train.lr, eps=cfg.train.adam_epsilon)


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


# ------------------------------------------------------------------------------------------------------ the loop
def train_seed(cfg: FinetuneConfig, task: TaskSpec, splits: dict, seed: int, out: Path, accelerator) -> SeedResult:
    from accelerate.utils import set_seed
    from tqdm import tqdm

    from ..models.load import save_pretrained
    from ..pretrain.optim import build_scheduler

    t, main = cfg.train, accelerator.is_main_process
    set_seed(seed)
    kind = get_kind(task.kind)
    techniques = build_techniques(cfg.techniques, kind.name)
    smoothing = max([tech.smoothing() for tech in techniques] + [0.0])
    model, tokenizer = build_model(cfg, task, kind)
    pad_id = tokenizer.pad_token_id or 0
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

    steps_per_epoch = math.ceil(len(train_enc) / t.batch_size)
    total_steps = max(1, math.ceil(t.epochs * steps_per_epoch))
    eval_every = t.eval_every or steps_per_epoch
    optimizer = build_optimizer(model, cfg, techniques)
    scheduler = build_scheduler(optimizer, t.schedule, warmup_steps=int(t.warmup_ratio * total_steps),
                                total_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    # always registered (even empty), so a checkpoint loads whatever techniques the resumed run switches on
    accelerator.register_for_checkpointing(_TechniqueState(techniques))

    state, metrics_log, resumed = restore_or_start(accelerator, out, cfg.resume,
                                                   {"step": 0, "best": None, "train_seconds": 0.0, "train_samples": 0})
    if resumed:
        log.info("seed %d: resumed from %s (step %d of %d)", seed, resumed, state["step"], total_steps)

    lengths = [feature_length(f) for f in train_enc.features]
    rank, world = accelerator.process_index, accelerator.num_processes
    log.info("seed %d: %d steps (%.1f epochs x %d) of %d examples, %d per micro-batch, %d process(es); techniques: %s",
             seed, total_steps, t.epochs, steps_per_epoch, t.batch_size, t.micro_batch_size, world,
             ", ".join(tech.name for tech in techniques) or "none")

    def forward(batch):
        return kind.logits(model(**kind.model_inputs(batch, accelerator.device)))

    def task_loss(logits, batch):
        return kind.loss(logits, {k: v.to(logits.device) for k, v in batch.items()}, smoothing)

    plan_epoch, plan = -1, []
    window = {"loss": 0.0, "n": 0, "samples": 0, "start": time.perf_counter()}
    bar = tqdm(total=total_steps, initial=state["step"], desc=f"{task.name} seed {seed}", unit="step",
               disable=not main, mininterval=2)
    model.train()
    while state["step"] < total_steps:
        epoch, within = divmod(state["step"], steps_per_epoch)
        if epoch != plan_epoch:
            plan, plan_epoch = epoch_batches(lengths, t.batch_size, seed, epoch, t.group_by_length), epoch
        share = process_share(plan[within], rank, world)
        chunks = micro_batches(share, t.micro_batch_size)
        for k, chunk in enumerate(chunks):
            features = [train_enc.features[i] for i in chunk]
            batch = kind.collate(features, pad_id)
            weight = len(chunk) / len(share)
            sync = k == len(chunks) - 1
            with accelerator.no_sync(model) if not sync else contextlib.nullcontext():
                with accelerator.autocast():
                    logits = forward(batch)
                    loss = task_loss(logits, batch)
                    step = Step(model=model, batch=batch, logits=logits, loss=loss, kind=kind, forward=forward,
                                task_loss=task_loss, backward=lambda x, w=weight: accelerator.backward(x * w))
                    total = loss + sum(tech.extra_loss(step) for tech in techniques)
                accelerator.backward(total * weight)
                for tech in techniques:
                    with accelerator.autocast():
                        tech.after_backward(step)
            window["loss"] += float(total.detach()) * weight
            window["samples"] += len(chunk)
        window["n"] += 1
        if t.clip_norm > 0:
            accelerator.clip_grad_norm_(model.parameters(), t.clip_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        for tech in techniques:
            tech.after_optimizer_step(model)
        state["step"] += 1
        bar.update(1)

        final = state["step"] == total_steps
        if state["step"] % t.log_every == 0 or final:
            elapsed = time.perf_counter() - window["start"]
            samples = window["samples"] * world
            state["train_seconds"] += elapsed
            state["train_samples"] += samples
            row = {"split": "train", "step": state["step"], "epoch": round(state["step"] / steps_per_epoch, 3),
                   "loss": round(window["loss"] / window["n"], 5), "lr": scheduler.get_last_lr()[-1],
                   "samples_per_s": round(samples / elapsed, 1)}
            if main:
                metrics_log.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}")
            window = {"loss": 0.0, "n": 0, "samples": 0, "start": time.perf_counter()}
        if final or state["step"] % eval_every == 0:
            paused = time.perf_counter()
            _evaluate_and_keep(model, tokenizer, dev_enc, dev_ds, kind, task, cfg, pad_id, accelerator, techniques,
                               state, metrics_log, out, save_pretrained)
            save_checkpoint(accelerator, out / "checkpoints", state, keep_last=1)
            window["start"] += time.perf_counter() - paused  # evaluation is not training time
    bar.close()
    accelerator.wait_for_everyone()
    return SeedResult(seed, state["best"] or {}, out / "model", state["train_seconds"], state["train_samples"])


def _evaluate_and_keep(model, tokenizer, dev_enc, dev_ds, kind, task, cfg, pad_id, accelerator, techniques, state,
                       metrics_log, out, save_pretrained) -> None:
    """Dev metrics under the evaluation weights (EMA's average if on); a new best is saved as out/model."""
    if accelerator.is_main_process:
        inner = accelerator.unwrap_model(model)
        with contextlib.ExitStack() as stack:
            for tech in techniques:
                stack.enter_context(tech.eval_weights(inner))
            metrics, _, _ = evaluate(inner, dev_enc, dev_ds, kind, task, cfg, pad_id, accelerator)
            row = {"split": "dev", "step": state["step"], **{k: round(v, 5) for k, v in metrics.items()}}
            metrics_log.write(row)
            score = metrics[task.main_metric]
            best = state["best"]
            improved = best is None or score > best[task.main_metric]
            log.info("step %d dev: %s%s", state["step"], ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                     " (best so far)" if improved else "")
            if improved:
                state["best"] = row
                final = inner
                for tech in techniques:
                    final = tech.finalize_model(final)
                save_pretrained(final, tokenizer, out / "model", overwrite=True)
                atomic.write_text(out / "best.json", json.dumps(row, indent=1))
    accelerator.wait_for_everyone()
    # every process needs the same `best` in its checkpoint state
    state["best"] = _broadcast_json(state["best"], accelerator)


def _broadcast_json(value, accelerator):
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]
