"""Evaluation of Oscar heads: caption metrics (character ROUGE / BLEU / exact match from `mengzi.textgen.metrics`)
and retrieval recall (R@1, R@5 for text->image and image->text, plus the polluted-tag test: does the true tag list
score higher than another image's tags with the same caption and regions)."""

from __future__ import annotations

import numpy as np
import torch

from .data import Example
from .decode import generate_captions
from .inputs import Layout, caption_ids, encode, tag_ids


def caption_metrics(model, tokenizer, examples: list[Example], layout: Layout, beams: int = 1,
                    batch_size: int = 64) -> tuple[dict, list[str]]:
    from mengzi.textgen.metrics import score

    predictions: list[str] = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start: start + batch_size]
        predictions += generate_captions(model, tokenizer, [e.tags for e in chunk], [e.regions.feats for e in chunk],
                                         layout, beams=beams)
    references = [e.caption for e in examples]
    return score(predictions, references), predictions


@torch.no_grad()
def pair_scores(model, tokenizer, captions: list[str], tags: list[list[str]], regions: list[np.ndarray],
                layout: Layout, batch_size: int = 256) -> torch.Tensor:
    """log p(match) for each (caption[k], tags[k], regions[k]) triple."""
    model.eval()
    out = []
    for start in range(0, len(captions), batch_size):
        end = start + batch_size
        batch = encode(tokenizer, [caption_ids(tokenizer, c, layout) for c in captions[start:end]],
                       [tag_ids(tokenizer, t, layout) for t in tags[start:end]], regions[start:end], layout)
        batch.pop("caption_len")  # retrieval attends bidirectionally
        out.append(model.match_score(model(**batch).logits))
    return torch.cat(out)


def distinct_captions(examples: list[Example], n: int) -> list[Example]:
    """The first `n` examples whose captions differ (identical captions would make recall ill-defined)."""
    seen, out = set(), []
    for e in examples:
        if e.caption not in seen:
            seen.add(e.caption)
            out.append(e)
    return out[:n]


def retrieval_metrics(model, tokenizer, examples: list[Example], layout: Layout, seed: int = 0) -> dict:
    """R@1/R@5 both ways over all N x N image-caption pairs (chance: 1/N and 5/N), and polluted-tag accuracy."""
    n = len(examples)
    captions = [e.caption for e in examples]
    image_idx, caption_idx = np.divmod(np.arange(n * n), n)
    scores = pair_scores(model, tokenizer, [captions[j] for j in caption_idx],
                         [examples[i].tags for i in image_idx], [examples[i].regions.feats for i in image_idx],
                         layout).view(n, n)  # [image, caption]
    truth = torch.arange(n)

    def recall(matrix: torch.Tensor, k: int) -> float:  # rows are queries, the right answer is the diagonal
        top = matrix.topk(min(k, n), dim=1).indices
        return float((top == truth.view(-1, 1)).any(dim=1).float().mean())

    rng = np.random.default_rng(seed)
    others = [int(rng.choice([j for j in range(n) if examples[j].tags != examples[i].tags] or [i]))
              for i in range(n)]
    polluted = pair_scores(model, tokenizer, captions, [examples[j].tags for j in others],
                           [e.regions.feats for e in examples], layout)
    differs = torch.tensor([examples[j].tags != e.tags for j, e in zip(others, examples, strict=True)])
    true_scores = scores.diagonal()
    return {"n": n, "i2t_r1": recall(scores, 1), "i2t_r5": recall(scores, 5), "t2i_r1": recall(scores.T, 1),
            "t2i_r5": recall(scores.T, 5), "chance_r1": 1 / n, "chance_r5": min(5, n) / n,
            "polluted_tag_accuracy": float((true_scores > polluted)[differs].float().mean()),
            "polluted_pairs": int(differs.sum())}
