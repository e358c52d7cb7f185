"""Metrics of generated Chinese text against references, each registered in one line of `METRICS`.

All scores are in [0, 1] (BLEU too: sacrebleu's 0-100 score / 100). Both sides are NFKC-normalised first, so
full- and half-width forms are the same character: SentencePiece tokenizers (Mengzi-T5's included) NFKC-normalise
their input and so write "；" back as ";" and "（" as "(": no fault of the model.

* `rouge-1`, `rouge-2`, `rouge-l`: character-level ROUGE F1 as Chinese evaluations compute it (e.g. the LCSTS /
  CSL keyword-generation papers): both texts are split into characters with whitespace dropped, so no word
  segmenter decides the score. ROUGE-N counts clipped n-gram overlaps; ROUGE-L uses the longest common
  subsequence (F1 with beta 1). The corpus figure is the mean of the per-example F1s. Two empty texts score 1,
  one empty text 0.
* `bleu`: sacrebleu's corpus BLEU with its `zh` tokenizer (Chinese characters split, other text as 13a).
* `exact_match`: share of predictions equal to their reference (normalised, surrounding whitespace stripped).
* `keyword_f1` (micro) and `keyword_f1_macro`: keywords are the non-empty pieces between the separators
  `KEYWORD_SEPARATORS` (full- and half-width semicolon and comma), stripped; each side is a set (a repeated keyword
  counts once). Micro: true positives, predicted and gold counts summed over all examples, then F1. Macro: the
  mean of the per-example F1s (an example with no gold and no predicted keyword scores 1).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

KEYWORD_SEPARATORS = "；;，,"
_SPLIT = re.compile(f"[{re.escape(KEYWORD_SEPARATORS)}]")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def chars(text: str) -> list[str]:
    return [c for c in normalize(text) if not c.isspace()]


def _f1(overlap: float, predicted: float, gold: float) -> float:
    if predicted == 0 and gold == 0:
        return 1.0
    if overlap == 0:
        return 0.0
    precision, recall = overlap / predicted, overlap / gold
    return 2 * precision * recall / (precision + recall)


def rouge_n(prediction: str, reference: str, n: int) -> float:
    """Character n-gram ROUGE F1 of one pair."""
    p, r = chars(prediction), chars(reference)
    if not p and not r:
        return 1.0
    p_grams = Counter(tuple(p[i : i + n]) for i in range(len(p) - n + 1))
    r_grams = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
    overlap = sum((p_grams & r_grams).values())
    return _f1(overlap, sum(p_grams.values()), sum(r_grams.values())) if p_grams or r_grams else 0.0


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Longest common subsequence length, O(len(a) * len(b)) time and O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(prediction: str, reference: str) -> float:
    p, r = chars(prediction), chars(reference)
    if not p and not r:
        return 1.0
    return _f1(lcs_length(p, r), len(p), len(r))


def keywords(text: str) -> set[str]:
    return {k.strip() for k in _SPLIT.split(normalize(text)) if k.strip()}


def _keyword_counts(predictions, references):
    for p, r in zip(predictions, references, strict=True):
        pk, rk = keywords(p), keywords(r)
        yield len(pk & rk), len(pk), len(rk)


def keyword_f1_micro(predictions: Sequence[str], references: Sequence[str]) -> float:
    counts = list(_keyword_counts(predictions, references))
    return _f1(*(sum(c[i] for c in counts) for i in range(3)))


def keyword_f1_macro(predictions: Sequence[str], references: Sequence[str]) -> float:
    counts = list(_keyword_counts(predictions, references))
    return sum(_f1(*c) for c in counts) / len(counts) if counts else 0.0


def _mean(pair_metric: Callable[[str, str], float]) -> Callable[[Sequence[str], Sequence[str]], float]:
    def corpus(predictions: Sequence[str], references: Sequence[str]) -> float:
        scores = [pair_metric(p, r) for p, r in zip(predictions, references, strict=True)]
        return sum(scores) / len(scores) if scores else 0.0

    return corpus


def bleu(predictions: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    return sacrebleu.corpus_bleu([normalize(p) for p in predictions], [[normalize(r) for r in references]],
                                 tokenize="zh").score / 100


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    return _mean(lambda p, r: float(normalize(p).strip() == normalize(r).strip()))(predictions, references)


# name -> corpus metric(predictions, references) -> float in [0, 1]; one line a metric
METRICS: dict[str, Callable[[Sequence[str], Sequence[str]], float]] = {
    "rouge-1": _mean(lambda p, r: rouge_n(p, r, 1)),
    "rouge-2": _mean(lambda p, r: rouge_n(p, r, 2)),
    "rouge-l": _mean(rouge_l),
    "bleu": bleu,
    "exact_match": exact_match,
    "keyword_f1": keyword_f1_micro,
    "keyword_f1_macro": keyword_f1_macro,
}
TEXT_METRICS = ("rouge-1", "rouge-2", "rouge-l", "bleu", "exact_match")  # what every source -> target task reports
KEYWORD_METRICS = TEXT_METRICS + ("keyword_f1", "keyword_f1_macro")


def score(predictions: Sequence[str], references: Sequence[str], names: Sequence[str] = TEXT_METRICS) -> dict:
    """{name: value} for the named metrics."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return {name: METRICS[name](predictions, references) for name in names}
