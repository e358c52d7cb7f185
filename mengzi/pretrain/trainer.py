"""`pretrain(cfg)`: the loop every text variant trains with, on accelerate.

    accelerate launch --num_processes 2 -m mengzi pretrain --config recipes/pretrain/mengzi-bert-tiny.yaml

What is pre-training's own: the model and its objectives' heads, the packed corpus, the micro-batches of a step
(masks seeded by the step and the micro-batch), the held-out evaluation. The loop, checkpoints and the run folder
(`run.json`, `config.yaml`, `train.log`, `metrics.jsonl`, `metrics.json`, `curves.png`, `model/` with the extra heads
beside the weights) are the engine's (`mengzi.engine`); `corpus_stats.json` is written here.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..config import ConfigError
from ..engine import loop, runfolder
from .batches import StepBatches, collate, example_order
from .config import PretrainConfig
from .model import PRETRAIN_TASK, PretrainModule, build_heads, build_objectives, merged_packing

log = logging.getLogger("mengzi.pretrain")


# ------------------------------------------------------------------------------------------------- building
def build_model(cfg: PretrainConfig):
    """(model, tokenizer, family, fresh): a preset initialised from scratch, or a checkpoint to continue."""
    from ..models.load import family_of, init_model, load
    from ..models.presets import get_preset

    if cfg.model.init_from:
        family = family_of(_config_of(cfg.model.init_from))
        model, tokenizer = load(cfg.model.init_from, task=PRETRAIN_TASK[family])
        return model.train(), tokenizer, family, False
    family = get_preset(cfg.model.preset).family
    if family not in PRETRAIN_TASK:
        raise ConfigError(f"model.preset: {cfg.model.preset} is a {family} model; text pre-training covers "
                          f"{sorted(PRETRAIN_TASK)}")
    model, tokenizer = init_model(cfg.model.preset, tokenizer=cfg.model.tokenizer or None, task=PRETRAIN_TASK[family],
                                  seed=cfg.train.seed, data=cfg.data or None, overrides=cfg.model.overrides)
    return model.train(), tokenizer, family, True


def _config_of(name_or_path: str):
    from transformers import AutoConfig

    from ..models.load import model_folder

    return AutoConfig.from_pretrained(model_folder(name_or_path, None))


def build_packer(family: str, tokenizer, objectives, cfg: PretrainConfig):
    from .packing import ChunkPacker, SegmentPairPacker

    wants = merged_packing(objectives)
    if family == "bert":
        return SegmentPairPacker(tokenizer, cfg.packing.max_seq_len, seed=cfg.train.seed,
                                 short_seq_prob=cfg.packing.short_seq_prob,
                                 sentence_order=wants.get("sentence_order", False),
                                 segmenter=wants.get("segmenter"), tag_schemes=wants["tag_schemes"])
    chunk = cfg.packing.max_seq_len
    for o in objectives:
        chunk = o.chunk_len(chunk) if hasattr(o, "chunk_len") else chunk
    return ChunkPacker(tokenizer, chunk, seed=cfg.train.seed)


def load_corpus(cfg: PretrainConfig, packer, accelerator):
    """(train, eval, train stats); the main process builds the cache first, the others then read it."""
    from .corpus import cached_split, streaming_split

    if not cfg.corpus.sources:
        raise ConfigError("corpus.sources: name at least one file, folder or glob")
    if cfg.corpus.stream:
        train, stats = streaming_split(cfg.corpus, "train", packer, cfg.train.seed, cfg.data or None)
        evaluation, _ = streaming_split(cfg.corpus, "eval", packer, cfg.train.seed, cfg.data or None)
        return train, evaluation, stats
    with accelerator.main_process_first():
        train, stats = cached_split(cfg.corpus, "train", packer, cfg.data or None)
        evaluation, _ = cached_split(cfg.corpus, "eval", packer, cfg.data or None)
    return train, evaluation, stats


# --------------------------------------------------------------------------------------------------- the stage
class PretrainStage(loop.Stage):
    name = "pre-training"

    def __init__(self, cfg: PretrainConfig, module: PretrainModule, tokenizer, train_data, eval_examples: list[dict],
                 stats):
        super().__init__(module)
        self.cfg, self.tokenizer, self.train_data, self.eval_examples = cfg, tokenizer, train_data, eval_examples
        self.stats = stats
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if not cfg.corpus.stream and len(train_data):
            self.steps_per_epoch = math.ceil(len(train_data) / cfg.train.batch_size)
        self.batches: StepBatches | None = None

    def start(self, run: loop.Run) -> None:
        t = self.cfg.train
        order = example_order(self.train_data, self.cfg.corpus.stream, t.seed, start=run.step * t.batch_size)
        self.batches = StepBatches(order, t.batch_size, t.micro_batch_size, run.accelerator.process_index,
                                   run.accelerator.num_processes)

    def micro_batches(self, run: loop.Run) -> list[loop.Micro]:
        micro = self.batches.next_step()
        out = []
        for k, examples in enumerate(micro):
            # masks seeded by the global micro-batch index: 1 process x 2 micro-batches == 2 processes x 1
            rng = np.random.default_rng([self.cfg.train.seed, run.step,
                                         run.accelerator.process_index * len(micro) + k])
            batch = run.unwrapped.collate(collate(examples, self.pad_id), rng)
            out.append(loop.Micro({key: v.to(run.accelerator.device) for key, v in batch.items()}, len(examples),
                                  int(batch["attention_mask"].sum())))
        return out

    def loss(self, run: loop.Run, batch):
        loss, metrics = run.model(batch)
        return loss, {k: float(v) for k, v in metrics.items() if k != "loss"}

    @torch.no_grad()
    def evaluate(self, run: loop.Run) -> dict:
        """Mean held-out metrics with fixed masks (seeded by the batch index), micro-batches split over processes;
        a metric is averaged over the batches that report it (SOP accuracy over batches holding a pair)."""
        if not self.eval_examples:
            return {}
        t, accelerator, inner = self.cfg.train, run.accelerator, run.unwrapped
        run.model.eval()
        keys = sorted(metric_names(inner))
        sums, counts = dict.fromkeys(keys, 0.0), dict.fromkeys(keys, 0)
        n_batches = (len(self.eval_examples) + t.micro_batch_size - 1) // t.micro_batch_size
        for i in range(accelerator.process_index, n_batches, accelerator.num_processes):
            chunk = self.eval_examples[i * t.micro_batch_size : (i + 1) * t.micro_batch_size]
            batch = inner.collate(collate(chunk, self.pad_id), np.random.default_rng([t.seed, 2**31 - 1, i]))
            with accelerator.autocast():
                _, metrics = run.model({key: v.to(accelerator.device) for key, v in batch.items()})
            for key, v in metrics.items():
                sums[key] += float(v)
                counts[key] += 1
        total = loop.sum_over_processes(accelerator, [sums[k] for k in keys] + [counts[k] for k in keys])
        run.model.train()
        n = len(keys)
        return {**{k: round(v / c, 5) for k, v, c in zip(keys, total[:n], total[n:]) if c}, "batches": n_batches}

    def save_model(self, run: loop.Run, folder: Path) -> None:
        from ..models.load import save_pretrained

        inner = run.unwrapped
        save_pretrained(inner.model, self.tokenizer, folder, heads=inner.heads if len(inner.heads) else None,
                        overwrite=True)


    def finish(self, run: loop.Run) -> dict:
        if self.cfg.corpus.stream:  # read to the end now
            _report_corpus(self.stats, run.out)
        return {"eval": run.state["last_eval"] or {},
                "corpus": {k: v for k, v in asdict(self.stats).items() if k != "problems"}}


def metric_names(inner: PretrainModule) -> set[str]:
    """Every metric the objectives report (the same on every process, so reductions line up)."""
    names = {"loss"}
    for o in inner.objectives:
        names |= {f"{o.name}_loss"} | {f"{o.name}_{m}" for m in o.metric_names}
    return names


# --------------------------------------------------------------------------------------------------- the command
def pretrain(cfg: PretrainConfig) -> Path:
    from accelerate.utils import set_seed

    if not cfg.out:
        raise ConfigError("pretrain needs a run folder: --out RUN")
    out, t = Path(cfg.out), cfg.train
    # BERT's pooler/seq_relationship sit idle without SOP: DDP must not wait for their gradients
    with loop.session(cfg, t, out, "mengzi pretrain", find_unused="sop" not in cfg.objectives) as accelerator:
        set_seed(t.seed)
        model, tokenizer, family, fresh = build_model(cfg)
        objectives = build_objectives(cfg.objectives, tokenizer, model.config, family)
        for objective in objectives:
            objective.setup(model, fresh=fresh)
        heads = build_heads(model.config, objectives, cfg.model.init_from or None)
        if t.gradient_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        module = PretrainModule(model, heads, objectives)
        train_data, eval_data, stats = load_corpus(cfg, build_packer(family, tokenizer, objectives, cfg), accelerator)
        if accelerator.is_main_process:
            _report_corpus(stats, out, streaming=cfg.corpus.stream)
        log.info("training %s (%s, %.1fM parameters); objectives: %s", cfg.model.init_from or cfg.model.preset,
                 family, sum(p.numel() for p in model.parameters()) / 1e6, ", ".join(cfg.objectives))
        eval_examples = _eval_examples(eval_data, t.micro_batch_size * t.eval_batches)
        stage = PretrainStage(cfg, module, tokenizer, train_data, eval_examples, stats)
        info = runfolder.RunInfo("pretrain", task=", ".join(cfg.objectives), max_seq_len=cfg.packing.max_seq_len,
                                 model=cfg.model.init_from or cfg.model.preset, extra={"family": family})
        state = loop.train(stage, t, out, accelerator, resume=cfg.resume, info=info,
                           metric_keys=["loss", *sorted(metric_names(module) - {"loss"})])
        log.info("done: %d steps; model -> %s", state["step"], out / "model")
    return out


def _report_corpus(stats, out: Path, streaming: bool = False) -> None:
    if streaming:
        log.info("corpus: streaming; its statistics fill as it is read (logged and saved at the end)")
        return
    log.info("corpus: %s", stats.summary())
    for problem in stats.problems:
        log.warning("skipped %s", problem)
    atomic.write_text(out / "corpus_stats.json", json.dumps(asdict(stats), ensure_ascii=False, indent=1))


def _eval_examples(dataset, n: int) -> list[dict]:
    """The first `n` held-out examples, in file order: the same slice at every evaluation."""
    return [] if dataset is None or n <= 0 else list(itertools.islice(dataset, n))
