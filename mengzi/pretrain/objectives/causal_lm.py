"""Causal language modelling (GPT-Neo): predict every next token of EOS-separated, packed documents."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective, Step, accuracy, register_objective


@register_objective("causal_lm")
class CausalLM(Objective):
    families = ("gpt-neo",)

    def loss(self, step: Step):
        ids = step.batch["input_ids"]
        logits = step.model(input_ids=ids, attention_mask=step.batch["attention_mask"]).logits[:, :-1]
        labels = ids[:, 1:].masked_fill(step.batch["attention_mask"][:, 1:] == 0, -100)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return loss, {"acc": accuracy(logits, labels)}
