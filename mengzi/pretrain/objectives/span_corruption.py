"""T5 span corruption: 15% of tokens in spans of mean length 3 replaced by sentinels; the target lists the spans.

Lengths follow the T5 reference exactly: the packer cuts raw chunks of the length that corruption turns into
`max_seq_len` encoder tokens and `targets_length` decoder tokens (both with EOS), so nothing is padded or cut.
Noise is drawn per step from the step's seeded generator (dynamic across epochs, exact on resume).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...config import option
from ..span_noise import compute_input_and_target_lengths, span_corrupt
from .base import Objective, ObjectiveConfig, Step, accuracy, register_objective


@dataclass
class SpanCorruptionConfig(ObjectiveConfig):
    noise_density: float = option(0.15, "share of tokens corrupted")
    mean_noise_span_length: float = option(3.0, "mean length of a corrupted span")


@register_objective("span_corruption")
class SpanCorruption(Objective):
    families = ("t5",)
    Config = SpanCorruptionConfig
    order = 10

    def __init__(self, cfg, tokenizer, model_config, family):
        super().__init__(cfg, tokenizer, model_config, family)
        sentinels = [tokenizer.convert_tokens_to_ids(f"<extra_id_{i}>") for i in range(100)]
        self.sentinel_ids = [s for s in sentinels if s is not None and s != tokenizer.unk_token_id]
        if not self.sentinel_ids:
            raise ValueError("span corruption needs a tokenizer with <extra_id_N> sentinels (a t5-kind tokenizer)")

    def chunk_len(self, max_seq_len: int) -> int:
        return compute_input_and_target_lengths(max_seq_len, self.cfg.noise_density,
                                                self.cfg.mean_noise_span_length)[0]

    def collate(self, batch, rng):
        inputs, labels = span_corrupt(batch["input_ids"].numpy(), rng, self.sentinel_ids, self.tokenizer.eos_token_id,
                                      self.cfg.noise_density, self.cfg.mean_noise_span_length)
        batch["input_ids"] = torch.from_numpy(inputs).long()
        batch["attention_mask"] = torch.ones_like(batch["input_ids"])
        batch["labels"] = torch.from_numpy(labels).long()

    def loss(self, step: Step):
        b = step.batch
        logits = step.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), b["labels"].flatten(), ignore_index=-100)
        return loss, {"acc": accuracy(logits, b["labels"])}
