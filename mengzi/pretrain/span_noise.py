"""T5 span corruption, the pre-training objective of Mengzi-T5, in plain numpy.

Why this file exists: the objective must match the T5 reference exactly (google-research/text-to-text-transfer-transformer
`t5/data/preprocessors.py`, and its numpy port in HF `examples/flax/language-modeling/run_t5_mlm_flax.py`), because
sequence lengths, noise statistics and sentinel layout are part of what a checkpoint was trained on. Only numpy, so
the collator runs in data-loader workers without torch.

One idea: pick ~15% of the tokens as noise, in spans of mean length 3. The mask starts with a nonnoise span and
ends with a noise span. The encoder input keeps the nonnoise tokens and replaces noise span i by sentinel i; the
labels do the opposite (nonnoise span i becomes sentinel i), so each sentinel is followed by the tokens it hid:

    original: x0 x1 x2 x3 x4 x5 x6 x7           noise: x2 x3 | x7
    inputs:   x0 x1 <S0> x4 x5 x6 <S1> </s>     nonnoise tokens + one sentinel per span + EOS
    labels:   <S0> x2 x3 <S1> x7 </s>           noise tokens + one sentinel per span + EOS

Randomness comes only from an explicit `np.random.Generator`, so a seed reproduces a batch (the reference draws
from the global `np.random` state).

Sentinel ids are passed explicitly: in T5 / Mengzi-T5 vocabularies `<extra_id_0>` is the *last* id and `<extra_id_i>`
is `len(vocab) - 1 - i`, e.g. `sentinel_ids = [len(tok) - 1 - i for i in range(100)]`, or
`tok.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(100)])`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _noise_counts(length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """(num_noise_tokens, num_noise_spans) for a sequence of `length` tokens, as the reference mask computes them."""
    num_noise_tokens = int(round(length * noise_density))
    # avoid degeneracy by ensuring positive numbers of noise and nonnoise tokens
    num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
    # ... and at least one noise span
    num_noise_spans = max(int(round(num_noise_tokens / mean_noise_span_length)), 1)
    return num_noise_tokens, num_noise_spans


def compute_input_and_target_lengths(
    inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 3.0
) -> tuple[int, int]:
    """How many raw tokens to take so the corrupted encoder input is exactly `inputs_length` (EOS included).

    Returns (tokens_length, targets_length). Same loop as the reference `random_spans_helper`
    (`_tokens_length_to_inputs_length_targets_length`): grow tokens_length while the input still fits.
    512 -> (568, 114) for the default density and span length. `span_corrupt` of tokens_length tokens then gives
    exactly (inputs_length, targets_length) whenever the configuration has at least one noise token and one span
    (the mask clips those counts to >= 1; the reference loop does not), i.e. for any realistic configuration.
    """

    def lengths(tokens_length: int) -> tuple[int, int]:
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        # inputs: nonnoise tokens + one sentinel per span + EOS; targets: noise tokens + one sentinel per span + EOS
        return num_nonnoise_tokens + num_noise_spans + 1, num_noise_tokens + num_noise_spans + 1

    tokens_length = inputs_length - 1
    while lengths(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    _, targets_length = lengths(tokens_length)
    # the reference's "minor hack": at density 0.5 keep targets no longer than inputs (a nice round number)
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def _random_segmentation(num_items: int, num_segments: int, rng: np.random.Generator) -> np.ndarray:
    """Split `num_items` into `num_segments` non-empty segments at random; returns the segment lengths."""
    first_in_segment = rng.permutation(np.arange(num_items - 1) < num_segments - 1)
    segment_id = np.cumsum(np.concatenate([[False], first_in_segment]))
    return np.bincount(segment_id, minlength=num_segments)


def random_spans_noise_mask(
    length: int, noise_density: float, mean_noise_span_length: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of `length`: True marks noise. Exactly `round(length * noise_density)` noise tokens (clipped to
    [1, length - 1]) in `round(num_noise_tokens / mean_noise_span_length)` spans (at least 1); the first token is never
    noise and the last span is noise. As the reference, with `rng` instead of the global numpy state."""
    if noise_density == 0.0:
        return np.zeros(length, dtype=bool)
    orig_length, length = length, max(length, 2)  # the reference widens to 2 tokens to avoid degeneracy
    num_noise_tokens, num_noise_spans = _noise_counts(length, noise_density, mean_noise_span_length)
    num_nonnoise_tokens = length - num_noise_tokens
    if num_noise_spans > min(num_noise_tokens, num_nonnoise_tokens):
        raise ValueError(
            f"cannot split {num_noise_tokens} noise and {num_nonnoise_tokens} nonnoise tokens into {num_noise_spans} "
            f"non-empty spans each: lower noise_density ({noise_density}) or raise mean_noise_span_length "
            f"({mean_noise_span_length})"
        )

    noise_span_lengths = _random_segmentation(num_noise_tokens, num_noise_spans, rng)
    nonnoise_span_lengths = _random_segmentation(num_nonnoise_tokens, num_noise_spans, rng)
    # nonnoise, noise, nonnoise, noise, ...: span i starts where the lengths before it end
    interleaved = np.stack([nonnoise_span_lengths, noise_span_lengths], axis=1).reshape(-1)
    span_start = np.zeros(length, dtype=np.int64)
    span_start[np.cumsum(interleaved)[:-1]] = 1
    is_noise = np.cumsum(span_start) % 2 == 1
    return is_noise[:orig_length]


def _collapse_spans(ids: np.ndarray, mask: np.ndarray, sentinel_ids: np.ndarray) -> np.ndarray:
    """Drop the tokens under `mask`, putting `sentinel_ids[i]` where the i-th masked span began (`filter_input_ids`)."""
    span_starts = mask & ~np.concatenate([[False], mask[:-1]])
    span_index = np.maximum(np.cumsum(span_starts) - 1, 0)
    with_sentinels = np.where(span_starts, sentinel_ids[span_index], ids)
    return with_sentinels[~mask | span_starts]


def span_corrupt(
    ids: np.ndarray,
    rng: np.random.Generator,
    sentinel_ids: Sequence[int],
    eos_id: int,
    noise_density: float = 0.15,
    mean_noise_span_length: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Span-corrupt a batch of raw token ids (batch, tokens_length) into (input_ids, labels).

    With tokens_length from `compute_input_and_target_lengths(inputs_length, ...)`, input_ids is (batch, inputs_length)
    and labels (batch, targets_length), both ending in `eos_id`. `sentinel_ids[i]` replaces noise span i in the inputs
    and precedes its tokens in the labels. Each row gets its own mask drawn from `rng`.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be (batch, tokens_length), got shape {ids.shape}")
    length = ids.shape[1]
    sentinels = np.asarray(sentinel_ids, dtype=ids.dtype)
    # the span count depends only on the length (not on the draw), so it can be checked up front
    num_noise_spans = _noise_counts(max(length, 2), noise_density, mean_noise_span_length)[1] if noise_density else 0
    if num_noise_spans > len(sentinels):
        raise ValueError(
            f"{length} tokens at noise_density={noise_density}, mean_noise_span_length={mean_noise_span_length} make "
            f"{num_noise_spans} noise spans, but only {len(sentinels)} sentinel ids were given (T5 vocabularies have 100)"
        )

    inputs, labels = [], []
    eos = np.array([eos_id], dtype=ids.dtype)
    for row in ids:
        noise = random_spans_noise_mask(length, noise_density, mean_noise_span_length, rng)
        inputs.append(np.concatenate([_collapse_spans(row, noise, sentinels), eos]))
        labels.append(np.concatenate([_collapse_spans(row, ~noise, sentinels), eos]))
    return np.stack(inputs), np.stack(labels)
