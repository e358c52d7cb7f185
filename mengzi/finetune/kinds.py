"""What a task looks like to the model. Three kinds cover CLUE and most user data:

    classification   text (+ text_pair) -> one of N labels          AutoModelForSequenceClassification
    multiple_choice  context + question + 2..K choices -> a choice   AutoModelForMultipleChoice
    span             question + context -> an answer span           AutoModelForQuestionAnswering

Each kind turns a `datasets.Dataset` in the shared schema (see `mengzi.clue.tasks`) into features, pads them into
batches, computes its loss from the logits and turns logits back into predictions. Logits are always one tensor per
batch, so techniques (R-Drop, distillation, ensembling) treat every kind alike: [B, labels], [B, choices] (padded
choices masked), or [B, 2, L] (span start and end).

Sequences are assembled from separately tokenized parts (`[CLS] a [SEP] b [SEP]`): every text is tokenized once,
not once per choice, and truncation is ours (longest first for pairs; for a multiple-choice context, a window kept
around the blank when the context holds `[MASK]`s, as ChID's does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import encoding
from .encoding import Encoded, context_window, pair_ids, truncate_pair  # noqa: F401  (re-exported)

KINDS: dict[str, type[Kind]] = {}
NEG = -1e4  # logit of a padded choice: exp() underflows to 0 in fp32 and bf16


def register_kind(cls):
    KINDS[cls.name] = cls
    return cls


def get_kind(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"unknown task kind {name!r}; known: {sorted(KINDS)}")
    return KINDS[name]()


class Kind:
    name = ""
    model_task = ""  # mengzi.models.load TASKS key

    def encode(self, dataset, tokenizer, cfg) -> Encoded:
        return encoding.encode(self.name, dataset, tokenizer, cfg.max_seq_len, getattr(cfg, "doc_stride", 128))

    def collate(self, features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def logits(self, outputs) -> torch.Tensor:
        return outputs.logits.float()

    def loss(self, logits: torch.Tensor, batch: dict, smoothing: float = 0.0) -> torch.Tensor:
        raise NotImplementedError

    def predict(self, logits: list, encoded: Encoded, dataset, cfg) -> list:
        return encoding.predict(self.name, logits, encoded, dataset, getattr(cfg, "max_answer_len", 64))

    def num_labels(self, labels) -> int:
        return 1

    def masked(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """Logits with padding positions (padded choices, span padding) pushed to NEG, for KL terms."""
        return logits

    def logit_width(self, feature: dict) -> int:
        """How many logits along the last axis belong to this feature (the rest is batch padding)."""
        return 10**9

    def model_inputs(self, batch: dict, device) -> dict[str, torch.Tensor]:
        return {k: batch[k].to(device) for k in ("input_ids", "token_type_ids", "attention_mask")}

    def teacher_logits(self, features: list[dict], shape: tuple[int, ...]) -> torch.Tensor:
        """Distillation targets of a batch, padded like the batch's logits."""
        out = torch.full(shape, NEG)
        for i, f in enumerate(features):
            row = torch.tensor(f["teacher_logits"])
            out[i][..., : row.shape[-1]] = row
        return out


def _pad(rows: list[list[int]], value: int, length: int | None = None) -> torch.Tensor:
    length = length or max(len(r) for r in rows)
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out


def _sequence_batch(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding: to the longest sequence of this batch, not to max_seq_len."""
    ids = _pad([f["input_ids"] for f in features], pad_id)
    length = ids.shape[1]
    return {"input_ids": ids, "token_type_ids": _pad([f["token_type_ids"] for f in features], 0, length),
            "attention_mask": _pad([[1] * len(f["input_ids"]) for f in features], 0, length)}


# ------------------------------------------------------------------------------------------------ classification
@register_kind
class Classification(Kind):
    name = "classification"
    model_task = "sequence-classification"

    def num_labels(self, labels) -> int:
        return len(labels)

    def collate(self, features, pad_id):
        batch = _sequence_batch(features, pad_id)
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        if "teacher_logits" in features[0]:
            batch["teacher_logits"] = torch.tensor([f["teacher_logits"] for f in features])
        return batch

    def loss(self, logits, batch, smoothing=0.0):
        return F.cross_entropy(logits, batch["labels"], label_smoothing=smoothing)



# ----------------------------------------------------------------------------------------------- multiple choice
@register_kind
class MultipleChoice(Kind):
    name = "multiple_choice"
    model_task = "multiple-choice"

    def collate(self, features, pad_id):
        n_choices = max(len(f["choices"]) for f in features)
        length = max(len(ids) for f in features for ids, _ in f["choices"])
        empty = ([pad_id], [0])
        rows = [f["choices"] + [empty] * (n_choices - len(f["choices"])) for f in features]
        ids = _pad([ids for row in rows for ids, _ in row], pad_id, length)
        types = _pad([t for row in rows for _, t in row], 0, length)
        mask = _pad([[1] * len(i) if (i, t) != empty else [0] for row in rows for i, t in row], 0, length)
        b = len(features)
        batch = {"input_ids": ids.view(b, n_choices, length), "token_type_ids": types.view(b, n_choices, length),
                "attention_mask": mask.view(b, n_choices, length),
                "choice_mask": torch.tensor([[1] * len(f["choices"]) + [0] * (n_choices - len(f["choices"]))
                                             for f in features], dtype=torch.bool),
                "labels": torch.tensor([f["label"] for f in features], dtype=torch.long)}
        if "teacher_logits" in features[0]:
            batch["teacher_logits"] = self.teacher_logits(features, (b, n_choices))
        return batch

    def masked(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return logits.masked_fill(~batch["choice_mask"].to(logits.device), NEG)

    def logit_width(self, feature: dict) -> int:
        return len(feature["choices"])

    def loss(self, logits, batch, smoothing=0.0):
        """Cross-entropy over the real choices; `smoothing` (choice smoothing) spreads that share of the target
        over the other real choices of the question, never over padding."""
        logits = self.masked(logits, batch)
        logp = F.log_softmax(logits, dim=-1)
        valid = batch["choice_mask"].to(logits.device).float()
        target = F.one_hot(batch["labels"], logits.shape[-1]).float()
        if smoothing > 0:
            others = (valid - target).clamp(min=0)
            target = target * (1 - smoothing) + others * smoothing / others.sum(-1, keepdim=True).clamp(min=1)
        return -(target * logp * valid).sum(-1).mean()

# ------------------------------------------------------------------------------------------------- span extraction
@register_kind
class Span(Kind):
    name = "span"
    model_task = "question-answering"

    def collate(self, features, pad_id):
        batch = _sequence_batch(features, pad_id)
        if "start_positions" in features[0]:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features], dtype=torch.long)
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features], dtype=torch.long)
        if "teacher_logits" in features[0]:
            batch["teacher_logits"] = self.teacher_logits(features, (len(features), 2, batch["input_ids"].shape[1]))
        return batch

    def masked(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        mask = batch["attention_mask"].to(logits.device).bool()
        return logits.masked_fill(~mask[:, None, :], NEG)

    def logit_width(self, feature: dict) -> int:
        return len(feature["input_ids"])

    def logits(self, outputs) -> torch.Tensor:
        return torch.stack([outputs.start_logits, outputs.end_logits], dim=1).float()

    def loss(self, logits, batch, smoothing=0.0):
        logits = self.masked(logits, batch)
        return (F.cross_entropy(logits[:, 0], batch["start_positions"], label_smoothing=smoothing)
                + F.cross_entropy(logits[:, 1], batch["end_positions"], label_smoothing=smoothing)) / 2
