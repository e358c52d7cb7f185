"""Masked language modelling with dynamic masking: 15% of tokens, 80% [MASK] / 10% random / 10% kept.

Chinese whole-word masking: the packer stores where each word starts (the shared segmenter's words aligned to
WordPiece offsets), and a word is masked with all of its characters and pieces, never a part of it. n-gram
masking masks runs of 1..`ngram` consecutive words (or tokens) at once, with P(n) proportional to 1/n as in
ALBERT/MacBERT. Masks are drawn per step from a generator seeded by (seed, step, micro-batch, process), so every
epoch sees new masks and a resumed run draws exactly the masks the uninterrupted run would have.

The LM head runs on masked positions only: for a 21128-token vocabulary it is most of a small model's compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...config import option
from .base import Objective, ObjectiveConfig, Step, accuracy, register_objective


@dataclass
class MLMConfig(ObjectiveConfig):
    mask_prob: float = option(0.15, "share of (non-special) tokens to predict")
    replace_mask: float = option(0.8, "of those, the share replaced by [MASK]")
    replace_random: float = option(0.1, "the share replaced by a random token (the rest stay as they are)")
    whole_word: bool = option(True, "mask whole words from the segmenter, not single characters/pieces")
    ngram: int = option(1, "mask runs of up to this many words/tokens (1: no n-gram masking)")
    segmenter: str = option("jieba", "word segmenter for whole-word masking (jieba, char)")


def mask_positions(word_start: np.ndarray, special: np.ndarray, rng: np.random.Generator, mask_prob: float,
                   ngram: int = 1) -> np.ndarray:
    """Boolean mask over one sequence: whole units (a word, or a token when every token starts one) chosen in
    random order, n-gram runs of units with P(n) ~ 1/n, until `mask_prob` of the maskable tokens are covered."""
    maskable = np.flatnonzero(~special)
    chosen = np.zeros(len(word_start), dtype=bool)
    if len(maskable) == 0:
        return chosen
    starts = [i for i in maskable if word_start[i]] or [int(maskable[0])]
    bounds = [*starts[1:], None]
    units = []
    for s, e in zip(starts, bounds):
        end = e if e is not None else len(word_start)
        units.append([i for i in range(s, end) if not special[i]])
    budget = max(1, int(round(len(maskable) * mask_prob)))
    ns = np.arange(1, max(1, ngram) + 1)
    p = (1.0 / ns) / (1.0 / ns).sum()
    covered = 0
    for u in rng.permutation(len(units)):
        if covered >= budget:
            break
        n = int(rng.choice(ns, p=p)) if ngram > 1 else 1
        span = [i for unit in units[u : u + n] for i in unit]
        if not span or chosen[span].any():
            continue
        if covered + len(span) > budget:
            if n > 1:  # try the unit alone before giving up on it
                span = units[u]
            if covered + len(span) > budget:
                continue
        chosen[span] = True
        covered += len(span)
    return chosen


@register_objective("mlm")
class MaskedLM(Objective):
    families = ("bert",)
    Config = MLMConfig
    order = 10

    def __init__(self, cfg, tokenizer, model_config, family):
        super().__init__(cfg, tokenizer, model_config, family)
        special = set(tokenizer.all_special_ids)
        self.random_ids = np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)
        self.special_ids = np.array(sorted(special), dtype=np.int64)

    def packing(self) -> dict:
        return {"segmenter": self.cfg.segmenter if self.cfg.whole_word else None}

    def collate(self, batch, rng):
        ids = batch["input_ids"].numpy()
        starts = batch["word_start"].numpy() if self.cfg.whole_word else np.ones_like(ids)
        special = np.isin(ids, self.special_ids) | (batch["attention_mask"].numpy() == 0)
        chosen = np.stack([mask_positions(starts[i], special[i], rng, self.cfg.mask_prob, self.cfg.ngram)
                           for i in range(len(ids))])
        labels = np.where(chosen, ids, -100)
        roll = rng.random(ids.shape)
        to_mask = chosen & (roll < self.cfg.replace_mask)
        to_random = chosen & (roll >= self.cfg.replace_mask) & (roll < self.cfg.replace_mask + self.cfg.replace_random)
        new = ids.copy()
        new[to_mask] = self.tokenizer.mask_token_id
        new[to_random] = rng.choice(self.random_ids, size=int(to_random.sum()))
        batch["input_ids"] = torch.from_numpy(new)
        batch["mlm_labels"] = torch.from_numpy(labels)

    def loss(self, step: Step):
        labels = step.batch["mlm_labels"]
        where = labels != -100
        hidden = step.encoder.last_hidden_state[where]
        logits = step.model.cls.predictions(hidden)
        step.mlm_logits = logits  # distillation compares the teacher's logits at the same positions
        target = labels[where]
        return F.cross_entropy(logits.float(), target), {"acc": accuracy(logits, target)}
