"""Caption decoding as Oscar does it: [MASK] goes at the next caption position and the captioner fills it.

Under the captioning mask the [MASK] sees the caption prefix, the tags and the regions, never later positions,
so each step is one encoder pass with the prefix + [MASK]. Greedy keeps the best token; beam search keeps the
`beams` best prefixes by summed log-probability and picks the final one by score / length**length_penalty.
A caption ends at [SEP] or after `max_tokens` pieces; the other special tokens ([PAD], [CLS], [MASK], [UNK]) are
never generated (a [PAD] would look like the padding after a finished caption).
"""

from __future__ import annotations

import numpy as np
import torch

from .inputs import Layout, encode, tag_ids


@torch.no_grad()
def generate_captions(model, tokenizer, tags: list[list[str]], regions: list[np.ndarray], layout: Layout,
                      beams: int = 1, max_tokens: int | None = None, length_penalty: float = 1.0) -> list[str]:
    """Chinese captions (word pieces joined without spaces) for images given as tags + (n, 2054) regions."""
    max_tokens = min(max_tokens or layout.caption_tokens, layout.caption_tokens)
    model.eval()
    batch = len(regions)
    tags_ids = [tag_ids(tokenizer, t, layout) for t in tags]
    # every beam of image i is row i * beams + j; the context (tags, regions) is repeated per beam
    rows = [i for i in range(batch) for _ in range(beams)]
    context = encode(tokenizer, [[tokenizer.cls_token_id]] * len(rows), [tags_ids[i] for i in rows],
                     [regions[i] for i in rows], layout)
    sep, pad, mask = tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id
    never = [t for t in (pad, tokenizer.cls_token_id, mask, tokenizer.unk_token_id) if t is not None]
    prefixes = torch.full((len(rows), 0), pad, dtype=torch.long)
    scores = torch.zeros(batch, beams)
    scores[:, 1:] = -float("inf")  # all beams start identical: expand only the first
    finished = torch.zeros(batch, beams, dtype=torch.bool)
    lengths = torch.zeros(batch, beams)
    for step in range(max_tokens + 1):  # + 1: the closing [SEP]
        position = step + 1  # after [CLS]
        ids = context["input_ids"].clone()
        attention = context["attention_mask"].clone()
        ids[:, 1:position] = prefixes
        ids[:, position] = mask
        attention[:, : position + 1] = 1
        logits = model(**{**context, "input_ids": ids, "attention_mask": attention},
                       predict_positions=torch.full((len(rows),), position))["logits"]
        logp = torch.log_softmax(logits.float(), dim=-1)
        logp[:, never] = -float("inf")
        if step == max_tokens:  # out of room: only [SEP] may follow
            forced = torch.full_like(logp, -float("inf"))
            forced[:, sep] = logp[:, sep]
            logp = forced
        done = finished.view(-1)
        logp[done] = -float("inf")
        logp[done, pad] = 0.0  # a finished beam stays as it is, padding on
        vocab = logp.shape[-1]
        candidates = (scores.view(-1, 1) + logp).view(batch, beams * vocab)
        scores, index = candidates.topk(beams, dim=-1)
        parent, token = index // vocab, index % vocab
        gather = (parent + torch.arange(batch).view(-1, 1) * beams).view(-1)
        prefixes = torch.cat([prefixes[gather], token.view(-1, 1)], dim=1)
        was_done = finished.view(-1)[gather].view(batch, beams)
        lengths = lengths.view(-1)[gather].view(batch, beams) + (~was_done).float()
        finished = was_done | (token == sep)
        if finished.all():
            break
    final = scores / lengths.clamp(min=1) ** length_penalty
    best = final.argmax(dim=-1)
    out = []
    for i in range(batch):
        tokens = prefixes[i * beams + best[i]].tolist()
        tokens = tokens[: tokens.index(sep)] if sep in tokens else tokens
        out.append("".join(tokenizer.convert_ids_to_tokens(tokens)).replace("##", ""))
    return out


@torch.no_grad()
def caption_logprob(model, tokenizer, tags: list[str], regions: np.ndarray, caption: str, layout: Layout) -> float:
    """log p(caption + [SEP] | tags, regions) as decoding computes it: one [MASK] step per piece."""
    from .inputs import caption_ids

    model.eval()
    target = caption_ids(tokenizer, caption, layout)[1:]  # pieces + [SEP]
    steps = len(target)
    prefixes = [[tokenizer.cls_token_id, *target[:t], tokenizer.mask_token_id] for t in range(steps)]
    batch = encode(tokenizer, prefixes, [tag_ids(tokenizer, tags, layout)] * steps, [regions] * steps, layout)
    logits = model(**batch, predict_positions=torch.arange(1, steps + 1))["logits"]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return float(logp[torch.arange(steps), torch.tensor(target)].sum())
