"""Linguistic injection (Mengzi's POS/NE auxiliary tasks): predict each token's tag from the final hidden states.

Labels come from the shared segmenter's tagger, aligned to tokens by the packer (`mengzi.pretrain.linguistic`
holds the tag schemes and checks them against human annotation). One class serves every scheme; each scheme
registers under its own name, so a recipe says `pos:` or `ner:`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from ...config import option
from .base import Objective, ObjectiveConfig, Step, accuracy, register_objective


@dataclass
class TaggingConfig(ObjectiveConfig):
    weight: float = option(0.5, "weight of this loss in the sum")
    segmenter: str = option("jieba", "segmenter whose tagger gives the labels")


class TokenTagging(Objective):
    families = ("bert",)
    Config = TaggingConfig
    scheme = ""

    def packing(self) -> dict:
        return {"tag_schemes": (self.scheme,), "segmenter": self.cfg.segmenter}

    def heads(self):
        from ..linguistic import TAG_SCHEMES

        return {self.scheme: {"type": "token-tagging", "labels": list(TAG_SCHEMES[self.scheme].labels)}}

    def loss(self, step: Step):
        labels = step.batch[f"{self.scheme}_ids"].long()
        logits = step.heads[self.scheme](step.encoder.last_hidden_state)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return loss, {"acc": accuracy(logits, labels)}


@register_objective("pos")
class POSTagging(TokenTagging):
    scheme = "pos"


@register_objective("ner")
class NETagging(TokenTagging):
    scheme = "ner"
