"""Extractive QA (CMRC2018) in two halves: cut (question, context) pairs into overlapping windows a BERT-size model
can read, and turn the model's start/end logits over those windows back into answer text.

`prepare_span_features` runs on the training side (it needs a Hugging Face *fast* tokenizer for offsets);
`decode_spans` is numpy only, so the deployment `Predictor` decodes exactly as fine-tuning evaluates.

Windows. Each window is `[CLS] question [SEP] context piece [SEP]`, at most `max_length` tokens. `doc_stride` is
the STEP between the first context tokens of consecutive windows, as in Google's `run_squad.py` and the CLUE
CMRC2018 baseline (max_seq_length 512, doc_stride 128). Hugging Face's `stride` argument means something else,
the OVERLAP between windows; we convert: overlap = context tokens per window - doc_stride. A step larger than a
window is cut to the window (adjacent windows, no gap), as Google's loop does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

CLS_INDEX = 0  # where a window that does not hold the whole answer points both positions (BERT's convention)


def truncate_questions(tokenizer, questions: list[str], max_question_length: int) -> list[str]:
    """Each question cut after its first `max_question_length` tokens, cut in the raw text (via offsets) so the
    tokenizer later sees the original characters rather than a lossy decode."""
    offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [question if len(spans) <= max_question_length else question[: spans[max_question_length - 1][1]]
            for question, spans in zip(questions, offsets)]  # fmt: skip


def locate_answer(context: str, text: str, answer_start: int) -> int:
    """Character start of answer `text` in `context`: `answer_start` when the text is there, else the occurrence
    nearest to it (a few official CMRC2018 answers are off by one or two characters), else -1 (also for "")."""
    if not text:
        return -1
    if context[answer_start : answer_start + len(text)] == text:
        return answer_start
    occurrences, found = [], context.find(text)
    while found != -1:
        occurrences.append(found)
        found = context.find(text, found + 1)
    return min(occurrences, key=lambda start: abs(start - answer_start)) if occurrences else -1


def answer_token_positions(offsets: Sequence, char_start: int, char_end: int) -> tuple[int, int]:
    """(start, end) token indices of the characters [char_start, char_end) in one window, both inclusive, or
    (CLS_INDEX, CLS_INDEX) when the window does not contain the whole answer. `offsets` has None off the context."""
    context_tokens = [i for i, offset in enumerate(offsets) if offset is not None]
    if char_start < 0 or char_end <= char_start or not context_tokens:
        return CLS_INDEX, CLS_INDEX
    first, last = context_tokens[0], context_tokens[-1]
    if offsets[first][0] > char_start or offsets[last][1] < char_end:
        return CLS_INDEX, CLS_INDEX
    # The first token that ends after the answer starts, the last that starts before it ends: whitespace around
    # the answer text (a few official answers carry it) falls outside every token and drops out.
    start = next(i for i in context_tokens if offsets[i][1] > char_start)
    end = next(i for i in reversed(context_tokens) if offsets[i][0] < char_end)
    return (start, end) if start <= end else (CLS_INDEX, CLS_INDEX)


def prepare_span_features(tokenizer, questions: list[str], contexts: list[str], max_length: int = 512,
                          doc_stride: int = 128, answers: list[dict] | None = None,
                          max_question_length: int = 64) -> dict[str, list]:
    """Windows over every (question, context) pair, in example order. Questions are first cut to
    `max_question_length` tokens; `doc_stride` is the step, in context tokens, from one window to the next (see the
    module doc: not Hugging Face's overlap).

    Returns lists with one entry per window: `input_ids`, `attention_mask` (and `token_type_ids` when the tokenizer
    makes them), `example_index` (the pair it came from), `offset_mapping` ((start, end) characters in the
    context, None for question and special tokens). With `answers` (SQuAD-style {"text": [...],
    "answer_start": [...]} per example; the first answer is used) also `start_positions` / `end_positions`.
    """
    if len(questions) != len(contexts) or (answers is not None and len(answers) != len(contexts)):
        raise ValueError("questions, contexts (and answers) must have one entry per example")
    input_names = [name for name in ("input_ids", "token_type_ids", "attention_mask")
                   if name in tokenizer.model_input_names]  # fmt: skip
    out: dict[str, list] = {name: [] for name in [*input_names, "offset_mapping", "example_index"]}
    if answers is not None:
        out.update(start_positions=[], end_positions=[])
    if not questions:
        return out  # the tokenizer rejects an empty batch
    questions = truncate_questions(tokenizer, questions, max_question_length)
    question_lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]

    # The overlap depends on how much room the question leaves, so examples whose questions have the same token
    # length go through the tokenizer together, one batched call per length.
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, length in enumerate(question_lengths):
        by_length[length].append(index)
    windows_of: list[list[dict]] = [[] for _ in questions]
    for question_length, indices in by_length.items():
        context_room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - question_length
        if context_room < 1:
            raise ValueError(f"max_length={max_length} leaves no room for the context after a "
                             f"{question_length}-token question; lower max_question_length")  # fmt: skip
        overlap = context_room - min(doc_stride, context_room)
        encoded = tokenizer([questions[i] for i in indices], [contexts[i] for i in indices],
                            truncation="only_second", max_length=max_length, stride=overlap,
                            return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)  # fmt: skip
        for window, position in enumerate(encoded["overflow_to_sample_mapping"]):
            sequence_ids = encoded.sequence_ids(window)
            features = {name: encoded[name][window] for name in input_names}
            features["offset_mapping"] = [tuple(offset) if sequence == 1 else None
                                          for offset, sequence in zip(encoded["offset_mapping"][window], sequence_ids)]
            windows_of[indices[position]].append(features)

    for example, windows in enumerate(windows_of):
        char_start = char_end = -1
        if answers is not None:
            text, given_start = answers[example]["text"][0], answers[example]["answer_start"][0]
            char_start = locate_answer(contexts[example], text, given_start)
            char_end = char_start + len(text)
        for features in windows:
            for key, value in features.items():
                out[key].append(value)
            out["example_index"].append(example)
            if answers is not None:
                start, end = answer_token_positions(features["offset_mapping"], char_start, char_end)
                out["start_positions"].append(start)
                out["end_positions"].append(end)
    return out


def _masked_logits(logits, offsets: Sequence) -> np.ndarray:
    """One window's logits as float64 with every non-context position (question, specials, padding) at -inf."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if len(logits) < len(offsets):
        raise ValueError(f"{len(logits)} logits for a window of {len(offsets)} tokens")
    masked = np.full(len(logits), -np.inf)
    context = np.fromiter((offset is not None for offset in offsets), dtype=bool, count=len(offsets))
    masked[: len(offsets)][context] = logits[: len(offsets)][context]
    return masked


def _top_positions(logits: np.ndarray, n_best: int) -> np.ndarray:
    """Indices of the `n_best` highest finite logits, best first."""
    order = np.argsort(-logits, kind="stable")[:n_best]
    return order[np.isfinite(logits[order])]


def decode_spans(start_logits, end_logits, features: dict, contexts: list[str], n_best: int = 20,
                 max_answer_length: int = 64) -> list[dict]:
    """The best answer span of each example over all its windows.

    `start_logits` / `end_logits`: per window, either a list of 1-D arrays (ragged, one per window) or a padded
    2-D array; `features` is what `prepare_span_features` returned (only `offset_mapping` and `example_index`
    are read). A span is the top `n_best` starts x top `n_best` ends of one window with start <= end, at most
    `max_answer_length` tokens, both ends on context tokens; its score is start logit + end logit.

    Returns, per example: {"text": best answer or "" when no span is possible, "score": its score (-inf when
    none), "n_best": up to `n_best` distinct spans, best first, each {"text", "score", "start", "end"} with
    start/end the answer's character range [start, end) in the context}.
    """
    windows_of: dict[int, list[int]] = defaultdict(list)
    for window, example in enumerate(features["example_index"]):
        windows_of[example].append(window)

    results = []
    for example, context in enumerate(contexts):
        best_by_span: dict[tuple[int, int], float] = {}  # overlapping windows find the same span twice
        for window in windows_of[example]:
            offsets = features["offset_mapping"][window]
            starts = _masked_logits(start_logits[window], offsets)
            ends = _masked_logits(end_logits[window], offsets)
            # Question, special and pad tokens are masked to -inf *before* the top-n cut, so they never crowd
            # real context candidates out of the n best.
            top_starts = _top_positions(starts, n_best)[:, None]
            top_ends = _top_positions(ends, n_best)[None, :]
            allowed = (top_ends >= top_starts) & (top_ends - top_starts + 1 <= max_answer_length)
            for row, column in zip(*np.nonzero(allowed)):
                s, e = int(top_starts[row, 0]), int(top_ends[0, column])
                span = (int(offsets[s][0]), int(offsets[e][1]))
                score = float(starts[s] + ends[e])
                if score > best_by_span.get(span, -np.inf):
                    best_by_span[span] = score
        ranked = sorted(best_by_span.items(), key=lambda item: (-item[1], item[0]))[:n_best]
        n_best_spans = [{"text": context[start:end], "score": score, "start": start, "end": end}
                        for (start, end), score in ranked]  # fmt: skip
        best = n_best_spans[0] if n_best_spans else {"text": "", "score": float("-inf")}
        results.append({"text": best["text"], "score": best["score"], "n_best": n_best_spans})
    return results

