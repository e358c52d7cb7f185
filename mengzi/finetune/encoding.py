"""The torch-free half of each task kind: examples -> features, and logits -> predictions.

Fine-tuning (`kinds.py`, with a transformers tokenizer) and the deployment `Predictor` (with the `tokenizers`
library alone) both call these functions, so an exported model sees exactly the features its PyTorch original was
evaluated on, and its predictions are decoded by the same code. Nothing here imports torch.

A tokenizer needs: `__call__(texts, add_special_tokens=False)["input_ids"]`, `cls_token_id`, `sep_token_id`,
`pad_token_id`, `mask_token_id` (and, for spans, what `spans.prepare_span_features` uses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Encoded:
    """Features of one split: one dict per model input (a window for spans), `example_index` into the dataset."""

    features: list[dict]
    extra: dict = field(default_factory=dict)  # spans: offsets per feature for decoding

    def __len__(self) -> int:
        return len(self.features)


class Columns(dict):
    """Column name -> list of values: what `datasets.Dataset` offers encoders (`ds["text"]`, `column_names`),
    without the datasets library."""

    @property
    def column_names(self) -> list[str]:
        return list(self)


def special_ids(tokenizer) -> tuple[int, int, int]:
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no [CLS]/[SEP]: fine-tuning heads here are for BERT-family "
                         "encoders (T5/GPT text-to-text fine-tuning is a separate path)")
    return tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id or 0


def token_ids(tokenizer, texts) -> list[list[int]]:
    texts = list(texts)
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def truncate_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Longest-first truncation (drop from the end of the longer part), as BERT's `_truncate_seq_pair`."""
    excess = len(a) + len(b) - budget
    if excess <= 0:
        return a, b
    la, lb = len(a), len(b)
    for _ in range(excess):
        if la > lb:
            la -= 1
        else:
            lb -= 1
    return a[:la], b[:lb]


def pair_ids(cls_id: int, sep_id: int, a: list[int], b: list[int] | None) -> tuple[list[int], list[int]]:
    ids = [cls_id, *a, sep_id]
    types = [0] * len(ids)
    if b is not None:
        ids += [*b, sep_id]
        types += [1] * (len(b) + 1)
    return ids, types


def context_window(ctx: list[int], budget: int, mask_id: int | None) -> list[int]:
    """At most `budget` tokens of a context: centred on the first [MASK] if it has one (a ChID blank), else the
    head."""
    if len(ctx) <= budget:
        return ctx
    if mask_id is not None and mask_id in ctx:
        centre = ctx.index(mask_id)
        start = min(max(0, centre - budget // 2), len(ctx) - budget)
        return ctx[start : start + budget]
    return ctx[:budget]


# ------------------------------------------------------------------------------------------------ classification
def encode_classification(dataset, tokenizer, max_seq_len: int) -> Encoded:
    cls_id, sep_id, _ = special_ids(tokenizer)
    first = token_ids(tokenizer, dataset["text"])
    pairs = list(dataset["text_pair"]) if "text_pair" in dataset.column_names else [""] * len(first)
    paired = any(pairs)
    second = token_ids(tokenizer, pairs) if paired else [None] * len(first)
    labels = dataset["label"] if "label" in dataset.column_names else [-1] * len(first)
    features = []
    for i, (a, b, label) in enumerate(zip(first, second, labels)):
        budget = max_seq_len - (3 if paired else 2)
        a, b2 = truncate_pair(a, b if paired else [], budget)
        ids, types = pair_ids(cls_id, sep_id, a, b2 if paired else None)
        features.append({"input_ids": ids, "token_type_ids": types, "label": int(label), "example_index": i})
    return Encoded(features)


def predict_classification(logits, encoded: Encoded, dataset, **_) -> list[int]:
    return [int(np.argmax(row)) for row in logits]


# ----------------------------------------------------------------------------------------------- multiple choice
def encode_multiple_choice(dataset, tokenizer, max_seq_len: int) -> Encoded:
    """`[CLS] context [SEP] question + choice [SEP]` per choice; the choice is kept whole, a long question is cut,
    and the context is windowed around its blank."""
    cls_id, sep_id, _ = special_ids(tokenizer)
    contexts = token_ids(tokenizer, dataset["context"])
    questions = list(dataset["question"]) if "question" in dataset.column_names else []
    questions = token_ids(tokenizer, questions) if any(questions) else [[]] * len(contexts)
    choice_lists = dataset["choices"]
    flat_ids = iter(token_ids(tokenizer, [c for choices in choice_lists for c in choices]))
    labels = dataset["label"] if "label" in dataset.column_names else [-1] * len(contexts)
    half = max_seq_len // 2
    features = []
    for i, (ctx, q, choices, label) in enumerate(zip(contexts, questions, choice_lists, labels)):
        encoded = []
        for _ in choices:
            c = next(flat_ids)[:half]
            second = q[: max(0, half - len(c))] + c
            window = context_window(ctx, max_seq_len - 3 - len(second), tokenizer.mask_token_id)
            encoded.append(pair_ids(cls_id, sep_id, window, second))
        features.append({"choices": encoded, "label": int(label), "example_index": i})
    return Encoded(features)


def predict_multiple_choice(logits, encoded: Encoded, dataset, **_) -> list[int]:
    return [int(np.argmax(row[: len(f["choices"])])) for row, f in zip(logits, encoded.features)]


# ------------------------------------------------------------------------------------------------- span extraction
def encode_span(dataset, tokenizer, max_seq_len: int, doc_stride: int = 128) -> Encoded:
    from .spans import prepare_span_features

    answers = dataset["answers"] if "answers" in dataset.column_names else None
    has_answers = answers is not None and any(a["text"] for a in answers)
    raw = prepare_span_features(tokenizer, list(dataset["question"]), list(dataset["context"]),
                                max_length=max_seq_len, doc_stride=doc_stride,
                                answers=list(answers) if has_answers else None)
    features = []
    for k in range(len(raw["input_ids"])):
        f = {"input_ids": raw["input_ids"][k], "token_type_ids": raw["token_type_ids"][k],
             "example_index": raw["example_index"][k]}
        if has_answers:
            f["start_positions"] = raw["start_positions"][k]
            f["end_positions"] = raw["end_positions"][k]
        features.append(f)
    return Encoded(features, {"raw": raw})


def decode_span_answers(logits, encoded: Encoded, dataset, max_answer_len: int = 64) -> list[dict]:
    """Per example the best span over its windows: {"text", "score", "start", "end"...} (see `decode_spans`)."""
    from .spans import decode_spans

    return decode_spans([row[0] for row in logits], [row[1] for row in logits], encoded.extra["raw"],
                        list(dataset["context"]), max_answer_length=max_answer_len)


def predict_span(logits, encoded: Encoded, dataset, max_answer_len: int = 64, **_) -> list[str]:
    return [d["text"] for d in decode_span_answers(logits, encoded, dataset, max_answer_len)]


# kind -> (encode(dataset, tokenizer, max_seq_len, [doc_stride]), predict(logits, encoded, dataset, **limits))
ENCODERS: dict[str, tuple[Callable, Callable]] = {
    "classification": (encode_classification, predict_classification),
    "multiple_choice": (encode_multiple_choice, predict_multiple_choice),
    "span": (encode_span, predict_span),
}


def encode(kind: str, dataset, tokenizer, max_seq_len: int, doc_stride: int = 128) -> Encoded:
    if kind not in ENCODERS:
        raise ValueError(f"unknown task kind {kind!r}; known: {sorted(ENCODERS)}")
    fn = ENCODERS[kind][0]
    return fn(dataset, tokenizer, max_seq_len, doc_stride) if kind == "span" else fn(dataset, tokenizer, max_seq_len)


def predict(kind: str, logits, encoded: Encoded, dataset, max_answer_len: int = 64) -> list:
    return ENCODERS[kind][1](logits, encoded, dataset, max_answer_len=max_answer_len)
