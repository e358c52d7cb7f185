"""The pre-training recipe as dataclasses: model, objectives, corpus, packing, trainer. YAML files in
`recipes/pretrain/` are their serialisation; `mengzi pretrain --config R.yaml --train.max-steps 10` overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import FieldError, option
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
class TrainConfig:
    max_steps: int = option(1000, "optimizer steps", min=1)
    batch_size: int = option(32, "examples per optimizer step over all processes", min=1)
    micro_batch_size: int = option(32, "examples per forward pass and process; accumulation makes up the rest", min=1)
    optimizer: Literal["adamw", "lamb"] = option("adamw", "adamw, or lamb for very large batches")
    lr: float = option(1e-4, "peak learning rate", min=0)
    weight_decay: float = option(0.01, "decoupled weight decay (not on biases and norms)", min=0)
    betas: list[float] = option([0.9, 0.999], "Adam/LAMB betas", min=0, below=1)
    eps: float = option(1e-6, "Adam/LAMB epsilon", above=0)
    schedule: Literal["linear", "cosine", "constant"] = option("linear", "decay after warmup")
    warmup_steps: int = option(100, "linear warmup steps", min=0)
    clip_norm: float = option(1.0, "gradient-norm clipping (0: off)", min=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = option(
        "auto", "auto: bf16 on GPUs with bf16, else fp16 on GPU; on CPU bf16 where it has native bf16, else fp32")
    gradient_checkpointing: bool = option(False, "recompute activations in backward: less memory, ~30% slower")
    seed: int = option(0, "seed of the init, the data order and every mask", min=0)
    log_every: int = option(10, "steps between metric lines", min=1)
    eval_every: int = option(200, "steps between held-out evaluations (0: only at the end)", min=0)
    eval_batches: int = option(20, "held-out micro-batches per evaluation", min=0)
    eval_at_start: bool = option(True, "evaluate before the first step (continued pre-training: the 'before')")
    save_every: int = option(500, "steps between checkpoints (one is always written at the end)", min=1)
    keep_last: int = option(2, "checkpoints kept", min=0)
    threads: int = option(0, "torch threads per process (0: torch's default)", min=0)

    def check_fields(self) -> None:
        if len(self.betas) != 2:
            raise FieldError("betas", f"expected two numbers [beta1, beta2], got {self.betas}")


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
