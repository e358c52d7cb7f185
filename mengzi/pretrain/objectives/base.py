"""What an objective is, the registry that names them, and the shared forward pass they read.

An objective turns packed examples into a loss. It may

* `collate` a batch (dynamic masking, span corruption) with the step's seeded numpy generator;
* ask the packer for columns (`packing`), declare extra heads saved beside the model (`heads`) and trainable
  helpers that are not saved with it (`modules`, e.g. a distillation projection);
* read the shared encoder pass (`Step.encoder`, run once however many objectives read it) or run its own.

Register with `@register_objective("name")`; a recipe combines them by name with a weight each.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from ...config import option

OBJECTIVES: dict[str, type[Objective]] = {}


def register_objective(name: str):
    def wrap(cls):
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return wrap


@dataclass
class ObjectiveConfig:
    weight: float = option(1.0, "weight of this loss in the sum")


class Objective:
    name = ""
    families: tuple[str, ...] = ()
    Config: type = ObjectiveConfig
    order = 50  # collate order: masking (10) before objectives that read masked inputs (distillation, 60)
    needs_hidden_states = False
    metric_names: tuple[str, ...] = ("acc",)  # what `loss` reports besides the loss itself

    def __init__(self, cfg, tokenizer, model_config, family: str):
        if family not in self.families:
            raise ValueError(f"objective {self.name!r} trains {'/'.join(self.families)} models, not {family}")
        self.cfg, self.tokenizer, self.model_config, self.family = cfg, tokenizer, model_config, family

    def packing(self) -> dict:
        """Packer settings this objective needs (merged over all objectives)."""
        return {}

    def heads(self) -> dict[str, dict]:
        """Extra heads (saved beside the model as mengzi_heads.*): {name: {"type": ..., "labels": [...]}}."""
        return {}

    def modules(self) -> dict[str, torch.nn.Module]:
        """Trainable helpers that are checkpointed but not part of the final model."""
        return {}

    def setup(self, model, fresh: bool) -> None:
        """Called once the model exists (`fresh`: randomly initialised, not loaded or resumed)."""

    def collate(self, batch: dict[str, torch.Tensor], rng: np.random.Generator) -> None:
        """Edit the batch in place before the forward pass."""

    def loss(self, step: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError


class Step:
    """One forward pass's shared state: the batch, the model, its heads and the encoder output, computed lazily."""

    def __init__(self, model, heads, extras, batch: dict[str, torch.Tensor], hidden_states: bool):
        self.model, self.heads, self.extras, self.batch = model, heads, extras, batch
        self.hidden_states = hidden_states

    @cached_property
    def encoder(self):
        """BERT family: `model.bert(...)`; `.last_hidden_state`, `.pooler_output`, `.hidden_states`."""
        b = self.batch
        return self.model.bert(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                               token_type_ids=b["token_type_ids"], output_hidden_states=self.hidden_states)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    keep = labels != -100
    if not keep.any():
        return logits.new_zeros(())
    return (logits.argmax(-1)[keep] == labels[keep]).float().mean()
