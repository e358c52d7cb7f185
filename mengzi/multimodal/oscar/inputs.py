"""Oscar's input layout as tensors: `[CLS] caption [SEP] (pad) | tags [SEP] (pad) | regions (pad)`.

The caption segment has a fixed length (`caption_tokens + 2`) in training and decoding alike, so tag positions do
not move while a caption grows and `caption_len` (Oscar's captioning mask) is one number for the batch. Token
types: 0 for the caption segment, 1 for tags (Oscar's `sequence_b_segment_id`).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import Layout


def caption_ids(tokenizer, caption: str, layout: Layout) -> list[int]:
    """[CLS] caption [SEP], caption truncated to `layout.caption_tokens` pieces (not padded)."""
    pieces = tokenizer(caption, add_special_tokens=False)["input_ids"][: layout.caption_tokens]
    return [tokenizer.cls_token_id, *pieces, tokenizer.sep_token_id]


def tag_ids(tokenizer, tags: list[str], layout: Layout) -> list[int]:
    pieces = tokenizer(" ".join(tags), add_special_tokens=False)["input_ids"][: layout.tag_tokens]
    return [*pieces, tokenizer.sep_token_id]


def encode(tokenizer, captions: list[list[int]], tags: list[list[int]], regions: list[np.ndarray],
           layout: Layout) -> dict[str, torch.Tensor]:
    """Tensors for a batch from caption ids (from `caption_ids`, possibly partial or masked), tag ids (from
    `tag_ids`) and (n_i, 2054) region arrays; `caption_len` is the fixed caption-segment length."""
    pad = tokenizer.pad_token_id
    cap_len, tag_len = layout.caption_len, layout.tag_tokens + 1
    batch = len(captions)
    input_ids = torch.full((batch, cap_len + tag_len), pad, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    token_types = torch.zeros_like(input_ids)
    token_types[:, cap_len:] = 1
    n_regions = min(max(len(r) for r in regions), layout.max_regions)
    feats = torch.zeros(batch, n_regions, regions[0].shape[1])
    img_mask = torch.zeros(batch, n_regions, dtype=torch.long)
    for i, (cap, tag, reg) in enumerate(zip(captions, tags, regions, strict=True)):
        cap, tag, reg = cap[:cap_len], tag[:tag_len], reg[:n_regions]
        input_ids[i, : len(cap)] = torch.tensor(cap)
        attention[i, : len(cap)] = 1
        input_ids[i, cap_len: cap_len + len(tag)] = torch.tensor(tag)
        attention[i, cap_len: cap_len + len(tag)] = 1
        feats[i, : len(reg)] = torch.from_numpy(np.asarray(reg, dtype=np.float32))
        img_mask[i, : len(reg)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": token_types, "img_feats": feats,
            "img_mask": img_mask, "caption_len": cap_len}


def mask_caption(ids: list[int], tokenizer, prob: float, rng: np.random.Generator,
                 max_masked: int = 3) -> tuple[list[int], list[int]]:
    """Oscar's masked-token training on one `[CLS] caption [SEP]`: choose round(prob * n) (at least 1, at most
    `max_masked`) of the caption tokens and the closing [SEP] (so the model learns where to stop); 80% become
    [MASK], 10% a random token, 10% stay. Returns (input ids, labels with -100 except at chosen positions)."""
    candidates = np.arange(1, len(ids))
    count = int(min(max(round(prob * len(candidates)), 1), max_masked, len(candidates)))
    chosen = rng.choice(candidates, size=count, replace=False)
    masked, labels = list(ids), [-100] * len(ids)
    for pos in chosen:
        labels[pos] = ids[pos]
        roll = rng.random()
        if roll < 0.8:
            masked[pos] = tokenizer.mask_token_id
        elif roll < 0.9:
            masked[pos] = int(rng.integers(1000, len(tokenizer)))  # past [PAD]/[unused]/specials of the BERT vocab
    return masked, labels
