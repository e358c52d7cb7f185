"""T5 span corruption: lengths as the reference loop, exact shapes, noise statistics, lossless reconstruction."""

from __future__ import annotations

import numpy as np
import pytest

from mengzi.pretrain.span_noise import compute_input_and_target_lengths, random_spans_noise_mask, span_corrupt

VOCAB = 1000
SENTINELS = [VOCAB - 1 - i for i in range(100)]  # T5 layout: <extra_id_0> is the last id
EOS = 1
CONFIGS = [(512, 0.15, 3.0), (128, 0.15, 3.0), (256, 0.3, 5.0), (64, 0.5, 3.0), (1024, 0.15, 3.0), (100, 0.1, 2.0)]


def reference_lengths(inputs_length, noise_density, mean_noise_span_length):
    """HF run_t5_mlm_flax.py / T5 random_spans_helper, transcribed (T5 starts the loop at inputs_length - 1)."""

    def _tokens_length_to_inputs_length_targets_length(tokens_length):
        num_noise_tokens = int(round(tokens_length * noise_density))
        num_nonnoise_tokens = tokens_length - num_noise_tokens
        num_noise_spans = int(round(num_noise_tokens / mean_noise_span_length))
        return num_nonnoise_tokens + num_noise_spans + 1, num_noise_tokens + num_noise_spans + 1

    tokens_length = inputs_length - 1
    while _tokens_length_to_inputs_length_targets_length(tokens_length + 1)[0] <= inputs_length:
        tokens_length += 1
    inputs_length, targets_length = _tokens_length_to_inputs_length_targets_length(tokens_length)
    if noise_density == 0.5 and targets_length > inputs_length:
        tokens_length -= 1
        targets_length -= 1
    return tokens_length, targets_length


def hf_noise_mask(length, noise_density, mean_noise_span_length, rng):
    """HF run_t5_mlm_flax.py `random_spans_noise_mask`, transcribed; `np.random.shuffle` -> `rng.shuffle`."""
    orig_length = length
    num_noise_tokens = int(np.round(length * noise_density))
    num_nonnoise_tokens = length - num_noise_tokens
    num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
    num_noise_spans = int(np.round(min(num_noise_tokens, num_nonnoise_tokens) / mean_noise_span_length))
    num_noise_spans = max(num_noise_spans, 1)
    num_nonnoise_tokens = length - num_noise_tokens

    def _random_segmentation(num_items, num_segments):
        mask_indices = np.arange(num_items - 1) < (num_segments - 1)
        rng.shuffle(mask_indices)
        first_in_segment = np.pad(mask_indices, [[1, 0]])
        segment_id = np.cumsum(first_in_segment)
        _, segment_length = np.unique(segment_id, return_counts=True)
        return segment_length

    noise_span_lengths = _random_segmentation(num_noise_tokens, num_noise_spans)
    nonnoise_span_lengths = _random_segmentation(num_nonnoise_tokens, num_noise_spans)
    interleaved_span_lengths = np.reshape(
        np.stack([nonnoise_span_lengths, noise_span_lengths], axis=1), [num_noise_spans * 2]
    )
    span_starts = np.cumsum(interleaved_span_lengths)[:-1]
    span_start_indicator = np.zeros((length,), dtype=np.int8)
    span_start_indicator[span_starts] = True
    span_num = np.cumsum(span_start_indicator)
    is_noise = np.equal(span_num % 2, 1)
    return is_noise[:orig_length]


def hf_filter(input_ids, mask_indices):
    """HF `create_sentinel_ids` + `filter_input_ids`, transcribed (len(tokenizer) = VOCAB, EOS appended)."""
    start_indices = mask_indices - np.roll(mask_indices, 1, axis=-1) * mask_indices
    start_indices[:, 0] = mask_indices[:, 0]
    sentinel_ids = np.where(start_indices != 0, np.cumsum(start_indices, axis=-1), start_indices)
    sentinel_ids = np.where(sentinel_ids != 0, (VOCAB - sentinel_ids), 0)
    sentinel_ids -= mask_indices - start_indices
    input_ids_full = np.where(sentinel_ids != 0, sentinel_ids, input_ids)
    input_ids = input_ids_full[input_ids_full >= 0].reshape((input_ids.shape[0], -1))
    return np.concatenate([input_ids, np.full((input_ids.shape[0], 1), EOS)], axis=-1)


def random_ids(rng, batch, length):
    """Ordinary tokens only: no EOS, no sentinel, so reconstruction is unambiguous."""
    return rng.integers(5, VOCAB - 100, size=(batch, length), dtype=np.int64)


def reconstruct(inputs, labels):
    """Undo span corruption: each sentinel in `inputs` becomes the tokens that follow it in `labels`."""
    assert inputs[-1] == EOS and labels[-1] == EOS
    hidden, current = {}, None
    for token in labels[:-1]:
        if token in SENTINELS:
            current = hidden.setdefault(int(token), [])
        else:
            current.append(int(token))
    out = []
    for token in inputs[:-1]:
        out.extend(hidden[int(token)] if token in SENTINELS else [int(token)])
    return out


def test_published_lengths():
    # the HF flax script logs expanded_inputs_length=568, targets_length=114 for max_seq_length=512
    assert compute_input_and_target_lengths(512, 0.15, 3.0) == (568, 114)
    assert compute_input_and_target_lengths(512) == (568, 114)


@pytest.mark.parametrize("config", CONFIGS + [(8, 0.15, 3.0), (20, 0.5, 1.0), (513, 0.15, 3.0)])
def test_lengths_match_reference_loop(config):
    assert compute_input_and_target_lengths(*config) == reference_lengths(*config)


@pytest.mark.parametrize("config", CONFIGS)
def test_shapes_exact_for_many_seeds(config):
    inputs_length, density, span = config
    tokens_length, targets_length = compute_input_and_target_lengths(*config)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        inputs, labels = span_corrupt(random_ids(rng, 3, tokens_length), rng, SENTINELS, EOS, density, span)
        assert inputs.shape == (3, inputs_length)
        assert labels.shape == (3, targets_length)
        assert (inputs[:, -1] == EOS).all() and (labels[:, -1] == EOS).all()


@pytest.mark.parametrize("length,density,span", [(568, 0.15, 3.0), (300, 0.3, 5.0), (50, 0.5, 2.0), (1, 0.15, 3.0)])
def test_noise_mask_statistics(length, density, span):
    expected_noise = min(max(round(length * density), 1), length - 1)
    expected_spans = max(round(expected_noise / span), 1)
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = random_spans_noise_mask(length, density, span, rng)
        assert mask.dtype == bool and mask.shape == (length,)
        assert not mask[0]  # the first token is never noise
        if length < 2:
            continue
        assert mask.sum() == expected_noise
        starts = mask & ~np.concatenate([[False], mask[:-1]])
        assert starts.sum() == expected_spans
        assert mask[-1]  # the reference interleaving ends with a noise span


def test_noise_fraction_over_a_batch():
    rng = np.random.default_rng(1)
    masks = np.stack([random_spans_noise_mask(568, 0.15, 3.0, rng) for _ in range(200)])
    assert masks.mean() == pytest.approx(85 / 568)  # round(568 * 0.15) = 85 noise tokens every time
    assert masks.mean() == pytest.approx(0.15, abs=0.005)


def test_spans_are_random():
    rng = np.random.default_rng(2)
    masks = {random_spans_noise_mask(100, 0.15, 3.0, rng).tobytes() for _ in range(20)}
    assert len(masks) > 15
    # every position except the first is noise in some draw
    hits = np.stack([random_spans_noise_mask(100, 0.15, 3.0, rng) for _ in range(500)]).any(axis=0)
    assert not hits[0] and hits[1:].all()


def test_zero_density_is_no_noise():
    assert not random_spans_noise_mask(10, 0.0, 3.0, np.random.default_rng(0)).any()


@pytest.mark.parametrize("config", CONFIGS)
def test_reconstruction_gives_back_the_original(config):
    inputs_length, density, span = config
    tokens_length, _ = compute_input_and_target_lengths(*config)
    rng = np.random.default_rng(3)
    ids = random_ids(rng, 4, tokens_length)
    inputs, labels = span_corrupt(ids, rng, SENTINELS, EOS, density, span)
    for row, inp, lab in zip(ids, inputs, labels):
        assert reconstruct(inp, lab) == row.tolist()
        # sentinels appear in order 0, 1, 2, ... in both inputs and labels
        used = [int(t) for t in inp if t in SENTINELS]
        assert used == SENTINELS[: len(used)]
        assert [int(t) for t in lab if t in SENTINELS] == used


def test_layout_on_a_known_mask(monkeypatch):
    """The docstring example, with the mask fixed: sentinel i replaces noise span i, labels mirror the inputs."""
    import mengzi.pretrain.span_noise as span_noise

    mask = np.array([0, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    monkeypatch.setattr(span_noise, "random_spans_noise_mask", lambda *args: mask)
    ids = np.arange(10, 18)[None]
    inputs, labels = span_noise.span_corrupt(ids, np.random.default_rng(0), [99, 98, 97], EOS, 0.25, 1.0)
    assert inputs.tolist() == [[10, 11, 99, 14, 15, 16, 98, EOS]]
    assert labels.tolist() == [[99, 12, 13, 98, 17, EOS]]


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_the_hf_reference_implementation(config):
    """Same generator state -> same mask as the HF numpy port, and the same inputs/labels as its sentinel filter."""
    _, density, span = config
    tokens_length, _ = compute_input_and_target_lengths(*config)
    for seed in range(10):
        ours = random_spans_noise_mask(tokens_length, density, span, np.random.default_rng(seed))
        assert np.array_equal(ours, hf_noise_mask(tokens_length, density, span, np.random.default_rng(seed)))

    ids = random_ids(np.random.default_rng(9), 4, tokens_length)
    inputs, labels = span_corrupt(ids, np.random.default_rng(11), SENTINELS, EOS, density, span)
    rng = np.random.default_rng(11)  # replay: span_corrupt draws one mask per row, in order
    mask = np.stack([hf_noise_mask(tokens_length, density, span, rng) for _ in ids]).astype(np.int8)
    assert np.array_equal(inputs, hf_filter(ids, mask))
    assert np.array_equal(labels, hf_filter(ids, 1 - mask))


def test_deterministic_for_the_same_seed():
    ids = random_ids(np.random.default_rng(4), 2, 568)
    a = span_corrupt(ids, np.random.default_rng(7), SENTINELS, EOS)
    b = span_corrupt(ids, np.random.default_rng(7), SENTINELS, EOS)
    c = span_corrupt(ids, np.random.default_rng(8), SENTINELS, EOS)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_rows_get_different_masks_and_dtype_is_kept():
    ids = np.tile(np.arange(5, 573, dtype=np.int32), (2, 1))
    inputs, labels = span_corrupt(ids, np.random.default_rng(5), SENTINELS, EOS)
    assert inputs.dtype == np.int32 and labels.dtype == np.int32
    assert not np.array_equal(inputs[0], inputs[1])


def test_too_few_sentinels():
    ids = random_ids(np.random.default_rng(6), 1, 568)  # 28 noise spans
    with pytest.raises(ValueError, match="28 noise spans, but only 10 sentinel ids"):
        span_corrupt(ids, np.random.default_rng(0), SENTINELS[:10], EOS)
    span_corrupt(ids, np.random.default_rng(0), SENTINELS[:28], EOS)  # exactly enough is fine


def test_degenerate_spans_rejected():
    with pytest.raises(ValueError, match="non-empty spans"):
        random_spans_noise_mask(100, 0.5, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch, tokens_length"):
        span_corrupt(np.arange(10), np.random.default_rng(0), SENTINELS, EOS)
