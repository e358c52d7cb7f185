"""Which examples go into which step: shuffled per epoch, optionally grouped by length so a batch pads little.

Length grouping (as HF's LengthGroupedSampler): shuffle, cut into mega-batches of `MEGA` batches, sort each by
length, cut into batches, shuffle the batches. Batches stay random across the epoch, but each holds similar
lengths, so dynamic padding wastes little. The plan depends only on (seed, epoch), not on the process count: a
global batch is split into one contiguous slice per process, then into micro-batches.
"""

from __future__ import annotations

import numpy as np

MEGA = 50  # batches per mega-batch


def feature_length(feature: dict) -> int:
    if "choices" in feature:
        return sum(len(ids) for ids, _ in feature["choices"])
    return len(feature["input_ids"])


def epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """Global batches (lists of feature indices) of one epoch; the last may be smaller."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths)).tolist()
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    span = batch_size * MEGA
    for start in range(0, len(order), span):
        mega = sorted(order[start : start + span], key=lambda i: -lengths[i])
        batches += [mega[i : i + batch_size] for i in range(0, len(mega), batch_size)]
    # the last batch (shortest of the last mega-batch, maybe partial) stays last so that every other batch is full
    head, tail = batches[:-1], batches[-1:]
    return [head[i] for i in rng.permutation(len(head))] + tail


def process_share(batch: list[int], rank: int, world: int) -> list[int]:
    """This process's contiguous slice of a global batch."""
    per = -(-len(batch) // world)
    return batch[rank * per : (rank + 1) * per]


def micro_batches(indices: list[int], micro_batch_size: int) -> list[list[int]]:
    return [indices[i : i + micro_batch_size] for i in range(0, len(indices), micro_batch_size)]


def eval_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Evaluation order: longest first (little padding, the memory peak comes first); results are put back in
    feature order by index."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
