"""Extra pre-training heads (sentence order, per-token POS/NE tags) saved *beside* the backbone.

Files in a model folder:

* `mengzi_heads.json` — `{"<name>": {"type": "<head type>", "num_labels": N, "labels": [...]}}`
* `mengzi_heads.safetensors` — tensors keyed `<name>.<parameter>`, e.g. `sop.classifier.weight`,
  `sop.classifier.bias`, `pos.classifier.weight`, `pos.classifier.bias`.

transformers only reads `model.safetensors` (or its shards), so a plain `from_pretrained` of the backbone never
sees these files: no unexpected-key warnings, identical outputs. Add a head type with `@register_head("name")`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from .. import atomic

HEADS_CONFIG = "mengzi_heads.json"
HEADS_WEIGHTS = "mengzi_heads.safetensors"
HEAD_TYPES: dict[str, type[nn.Module]] = {}


def register_head(name: str):
    def wrap(cls):
        HEAD_TYPES[name] = cls
        return cls

    return wrap


@register_head("sentence-order")
class SentenceOrderHead(nn.Module):
    """Sentence-order prediction (ALBERT's SOP): pooled [CLS] -> in order / swapped."""

    def __init__(self, hidden_size: int, num_labels: int = 2, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


@register_head("token-tagging")
class TokenTaggingHead(nn.Module):
    """Per-token labels (POS tags, NE tags) from the final hidden states."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(hidden))


class PretrainingHeads(nn.ModuleDict):
    """Named heads plus their specs; `save(folder)` / `PretrainingHeads.load(folder)`."""

    def __init__(self, hidden_size: int, specs: dict[str, dict]):
        super().__init__()
        self.hidden_size = hidden_size
        self.specs = {name: dict(spec) for name, spec in specs.items()}
        for name, spec in self.specs.items():
            if spec["type"] not in HEAD_TYPES:
                raise KeyError(f"head {name!r}: unknown type {spec['type']!r}; registered: {sorted(HEAD_TYPES)}")
            labels = spec.get("labels")
            num_labels = spec.setdefault("num_labels", len(labels) if labels else 2)
            if labels is not None and len(labels) != num_labels:
                raise ValueError(f"head {name!r}: {len(labels)} labels but num_labels={num_labels}")
            self[name] = HEAD_TYPES[spec["type"]](hidden_size, num_labels, dropout=spec.get("dropout", 0.1))

    def save(self, folder: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = folder / f".{HEADS_WEIGHTS}.tmp"
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.replace(atomic.share(tmp), folder / HEADS_WEIGHTS)
        atomic.write_text(folder / HEADS_CONFIG,
                          json.dumps({"hidden_size": self.hidden_size, "heads": self.specs}, ensure_ascii=False,
                                     indent=2))

    @classmethod
    def load(cls, folder: str | os.PathLike) -> PretrainingHeads | None:
        """The heads saved in `folder`, or None if it has none."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / HEADS_CONFIG).is_file():
            return None
        meta = json.loads((folder / HEADS_CONFIG).read_text(encoding="utf-8"))
        heads = cls(meta["hidden_size"], meta["heads"])
        state = load_file(str(folder / HEADS_WEIGHTS))
        missing, unexpected = heads.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{folder / HEADS_WEIGHTS}: missing keys {missing}, unexpected keys {unexpected}")
        return heads
