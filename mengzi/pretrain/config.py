"""The pre-training recipe as dataclasses: model, objectives, corpus, packing, trainer. YAML files in
`recipes/pretrain/` are their serialisation; `mengzi pretrain --config R.yaml --train.max-steps 10` overrides."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option
from ..engine.args import TrainArgs
from .corpus import CorpusConfig


@dataclass
class ModelSpec:
    preset: str = option("mengzi-bert-tiny", "architecture preset (see `mengzi presets`)")
    init_from: str = option("", "continue pre-training this checkpoint (folder, preset or hub id) instead of "
                                "a random init (the -fin recipe)")
    tokenizer: str = option("", "tokenizer of a fresh model; default: the preset's")
    overrides: dict = option({}, "preset config fields to change, e.g. {num_hidden_layers: 6}")


@dataclass
class PackingConfig:
    max_seq_len: int = option(512, "tokens per example (T5: encoder tokens after span corruption)", min=8)
    short_seq_prob: float = option(0.1, "BERT: share of examples packed to a random shorter length", min=0, max=1)


@dataclass
class TrainConfig(TrainArgs):
    """The engine's `TrainArgs` with pre-training's defaults, and the size of the held-out evaluation."""

    max_steps: int = option(1000, "optimizer steps (0: `epochs` passes over a cached corpus)", min=0)
    lr: float = option(1e-4, "peak learning rate", min=0)
    warmup_steps: int = option(100, "linear warmup steps (0: warmup_ratio of the steps)", min=0)
    seed: int = option(0, "seed of the init, the data order and every mask", min=0)
    log_every: int = option(10, "steps between metric lines", min=1)
    eval_every: int = option(200, "steps between held-out evaluations (0: only at the end)", min=0)
    eval_at_start: bool = option(True, "evaluate before the first step (continued pre-training: the 'before')")
    save_every: int = option(500, "steps between checkpoints (0: at every evaluation; one is always written at the "
                                  "end)", min=0)
    eval_batches: int = option(20, "held-out micro-batches per evaluation", min=0)


@dataclass
class PretrainConfig:
    out: str = option("", "run folder: config, metrics, checkpoints, loss curve, final model (out/model)")
    model: ModelSpec = option(ModelSpec(), "what to train")
    objectives: dict = option({"mlm": {}}, "objective -> its options; registered: mlm, sop, pos, ner, distill, "
                                           "span_corruption, causal_lm")
    corpus: CorpusConfig = option(CorpusConfig(), "training and held-out text")
    packing: PackingConfig = option(PackingConfig(), "how documents become examples")
    train: TrainConfig = option(TrainConfig(), "the optimisation")
    resume: bool = option(False, "continue from the run folder's last complete checkpoint")
    overwrite: bool = option(False, "start afresh in a run folder that already has checkpoints")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")
