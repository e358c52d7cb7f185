"""`TrainArgs`: the optimisation every stage shares, under `train:` in every recipe, with the same names everywhere.

A stage subclasses it to change defaults and add what is its own (sequence lengths, evaluation sizes):

    @dataclass
    class TrainConfig(TrainArgs):
        max_seq_len: int = option(128, "tokens per sequence")

Torch-free, so the command line loads fast.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from ..config import FieldError, option

PRECISION_HELP = "auto: bf16 on GPUs with bf16, else fp16 on GPU; on CPU bf16 where it has native bf16, else fp32"
TRACKERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "mlflow": ("mlflow",)}  # packages


@dataclass
class TrainArgs:
    max_steps: int = option(0, "optimizer steps (0: `epochs` passes over the training set)", min=0)
    epochs: float = option(3.0, "passes over the training set when max_steps is 0 (fractions allowed)", min=0)
    batch_size: int = option(32, "examples per optimizer step over all processes (Langboat's 'global batch')", min=1)
    micro_batch_size: int = option(32, "examples per forward pass and process; accumulation makes up the rest", min=1)
    optimizer: Literal["adamw", "lamb"] = option("adamw", "adamw, or lamb for very large batches")
    lr: float = option(3e-5, "peak learning rate", min=0)
    weight_decay: float = option(0.01, "decoupled weight decay (not on biases and norms)", min=0)
    betas: list[float] = option([0.9, 0.999], "Adam/LAMB betas", min=0, below=1)
    adam_epsilon: float = option(1e-8, "Adam/LAMB epsilon (HF's default; Google BERT's 1e-6 starves small models' "
                                       "embedding updates)", above=0)
    schedule: Literal["linear", "cosine", "constant"] = option("linear", "decay after warmup")
    warmup_steps: int = option(0, "linear warmup steps (0: warmup_ratio of the steps)", min=0)
    warmup_ratio: float = option(0.1, "share of the steps with linear warmup when warmup_steps is 0", min=0, max=1)
    clip_norm: float = option(1.0, "gradient-norm clipping (0: off)", min=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = option("auto", PRECISION_HELP)
    gradient_checkpointing: bool = option(False, "recompute activations in backward: less memory, ~30% slower")
    seed: int = option(42, "seed of the init, the data order, dropout and every mask", min=0)
    threads: int = option(0, "torch threads per process (0: torch's default)", min=0)
    log_every: int = option(20, "optimizer steps between training-metric lines", min=1)
    eval_every: int = option(0, "optimizer steps between evaluations (0: once per epoch, or only at the end when "
                                "training by max_steps)", min=0)
    eval_at_start: bool = option(False, "also evaluate before the first step (a baseline in the log)")
    save_every: int = option(0, "optimizer steps between resumable checkpoints (0: at every evaluation); one is "
                                "always written at the end", min=0)
    keep_last: int = option(2, "checkpoints kept while training (older ones are deleted)", min=1)
    keep_checkpoints: bool = option(False, "keep the last checkpoint (optimizer state included) after the run "
                                           "finished; off: only model/ stays")
    early_stopping_patience: int = option(0, "stop after this many evaluations without a better dev metric "
                                             "(0: never)", min=0)
    report_to: list[str] = option([], f"experiment trackers through accelerate, any of {', '.join(TRACKERS)} "
                                      "(when installed); metrics.jsonl and the PNG curves are always written")

    def check_fields(self) -> None:
        if len(self.betas) != 2:
            raise FieldError("betas", f"expected two numbers [beta1, beta2], got {self.betas}")
        if self.max_steps == 0 and self.epochs == 0:
            raise FieldError("epochs", "must be above 0 when max_steps is 0 (nothing would be trained)")
        for tracker in self.report_to:
            if tracker not in TRACKERS:
                raise FieldError("report_to", f"unknown tracker {tracker!r}; choose from {list(TRACKERS)}")
            if not any(importlib.util.find_spec(p) for p in TRACKERS[tracker]):
                raise FieldError("report_to", f"{tracker} is not installed: pip install "
                                 + ("tensorboardX" if tracker == "tensorboard" else tracker))
