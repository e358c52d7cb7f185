"""Sentence-order prediction (ALBERT): are segments A and B in their original order, or swapped?

The packer builds A/B from consecutive sentences of one document and swaps half of them. The classifier is BERT's
own pooler + `cls.seq_relationship` of `BertForPreTraining`, so the trained head is saved in the standard
checkpoint and fine-tuning starts from a trained pooler.
"""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective, Step, accuracy, register_objective


@register_objective("sop")
class SentenceOrder(Objective):
    families = ("bert",)

    def packing(self) -> dict:
        return {"sentence_order": True}

    def loss(self, step: Step):
        logits = step.model.cls.seq_relationship(step.encoder.pooler_output)
        labels = step.batch["sop_label"].long()
        if not (labels != -100).any():  # only single-segment examples in this batch
            return logits.sum() * 0.0, {}  # no accuracy to average in
        return F.cross_entropy(logits.float(), labels, ignore_index=-100), {"acc": accuracy(logits, labels)}
