"""The technique interface and registry. A technique is switched on from a recipe by name with its options:

    techniques: {fgm: {epsilon: 1.0}, ema: {decay: 0.999}, llrd: {decay: 0.9}}

and hooks into the trainer at a few fixed points (each a no-op by default). Adding one is one decorated class in
one file of this package:

    @register_technique("name")
    class Name(Technique):
        def extra_loss(self, step): ...
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import torch

from ...config import ConfigError

TECHNIQUES: dict[str, type[Technique]] = {}


def register_technique(name: str):
    def register(cls):
        if name in TECHNIQUES:
            raise ValueError(f"technique {name} registered twice")
        cls.name = name
        TECHNIQUES[name] = cls
        return cls

    return register


@dataclass
class Step:
    """What a technique sees of one micro-batch: the batch, the clean logits and loss, and how to run the model
    again (adversarial and R-Drop passes)."""

    model: Any  # the model being trained (possibly DDP/peft wrapped)
    batch: dict
    logits: torch.Tensor
    loss: torch.Tensor  # the task loss of `logits`
    kind: Any
    forward: Any  # batch -> logits
    task_loss: Any  # logits, batch -> loss (with the configured smoothing)
    backward: Any  # loss -> None (accelerator.backward with the accumulation weight)
    extras: dict = field(default_factory=dict)


class Technique:
    name = ""
    # kinds it applies to (None: all); a recipe switching it on for another kind is an error
    kinds: tuple[str, ...] | None = None

    def prepare_train_data(self, dataset, kind_name: str):
        """Before encoding the training split (augmentation)."""
        return dataset

    def prepare_model(self, model, kind_name: str):
        """After the model is built, before the optimizer (LoRA wraps it here)."""
        return model

    def prepare_train_features(self, encoded, kind, accelerator) -> None:
        """After encoding (distillation attaches the teacher's logits to each feature)."""

    def lr_scale(self, param_name: str, num_layers: int) -> float:
        """Multiplier of the peak learning rate for one parameter (layer-wise decay)."""
        return 1.0

    def smoothing(self) -> float:
        return 0.0

    def extra_loss(self, step: Step) -> torch.Tensor | float:
        """Added to the task loss before backward (R-Drop, distillation)."""
        return 0.0

    def after_backward(self, step: Step) -> None:
        """After the clean backward (adversarial training adds its own forward/backward here)."""

    def after_optimizer_step(self, model) -> None:
        """After each optimizer step (EMA)."""

    def eval_weights(self, model):
        """Context in which evaluation and the best checkpoint see the weights (EMA swaps its average in)."""
        return contextlib.nullcontext()

    def finalize_model(self, model):
        """Before the model is saved in plain transformers format (LoRA merges its adapters)."""
        return model

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def build_techniques(spec: dict, kind_name: str) -> list[Technique]:
    """Technique objects from the recipe's `techniques` mapping; unknown names or options are config errors."""
    from . import adversarial, regularize, setup  # noqa: F401  (each registers its techniques)

    out = []
    for name, options in (spec or {}).items():
        if name not in TECHNIQUES:
            raise ConfigError(f"techniques.{name}: unknown technique; registered: {sorted(TECHNIQUES)}")
        cls = TECHNIQUES[name]
        options = options or {}
        if not isinstance(options, dict):
            raise ConfigError(f"techniques.{name}: expected a mapping of options, got {options!r}")
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(f"techniques.{name}: unknown option(s) {unknown}; {name} takes {accepted}")
        if cls.kinds is not None and kind_name not in cls.kinds:
            raise ConfigError(f"techniques.{name}: applies to {list(cls.kinds)} tasks, not {kind_name}")
        try:
            out.append(cls(**options))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"techniques.{name}: {e}") from None
    if sum(t.name in ("fgm", "pgd") for t in out) > 1:
        raise ConfigError("techniques: fgm and pgd are two ways to do the same thing; pick one")
    return out


def input_embedding(model) -> torch.nn.Parameter:
    """The word-embedding matrix adversarial training perturbs (through DDP and peft wrappers)."""
    inner = model.module if hasattr(model, "module") and not hasattr(model, "get_input_embeddings") else model
    return inner.get_input_embeddings().weight


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p || q) over the last axis, summed over positions and averaged over the batch."""
    p = torch.log_softmax(p_logits / temperature, dim=-1)
    q = torch.log_softmax(q_logits / temperature, dim=-1)
    return torch.nn.functional.kl_div(q, p, log_target=True, reduction="sum") / p_logits.shape[0]
