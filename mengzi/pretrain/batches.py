"""The order examples are seen in, and how a list of examples becomes tensors.

One global order for every process count: epoch e of a cached corpus is the permutation seeded by (seed, e); a
streamed corpus is the seeded shuffle of epoch e. Optimizer step s takes the next `batch_size` examples of that
order; process r of R takes its 1/R share and splits it into micro-batches. So a 2-process run sees the same
examples per step as a 1-process run, and a resumed run continues at example `examples_seen` exactly (a stream
is replayed up to there).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch

PAD_VALUES = {"token_type_ids": 0, "word_start": 1}  # input_ids pad with the tokenizer's pad id, tags with -100


def example_order(dataset, streaming: bool, seed: int, start: int = 0) -> Iterator[dict]:
    """Examples forever (epoch after epoch) from global position `start`."""
    if streaming:
        skipped = 0
        for epoch in itertools.count():
            dataset.set_epoch(epoch)
            empty = True
            for example in dataset:
                empty = False
                if skipped < start:
                    skipped += 1
                    continue
                yield example
            if empty:
                raise ValueError("the training corpus yields no examples (see the corpus statistics above)")
        return
    n = len(dataset)
    if n == 0:
        raise ValueError("the training corpus has no examples (see the corpus statistics above)")
    epoch, offset = divmod(start, n)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        for begin in range(offset, n, 256):
            rows = dataset[order[begin : begin + 256]]
            keys = list(rows)
            for values in zip(*(rows[k] for k in keys)):
                yield dict(zip(keys, values))
        epoch, offset = epoch + 1, 0


def epoch_of(dataset, streaming: bool, examples_seen: int) -> float | None:
    return None if streaming or len(dataset) == 0 else examples_seen / len(dataset)


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad sequence columns to the longest example (right padding), add `attention_mask`."""
    batch: dict[str, torch.Tensor] = {}
    lengths = [len(e["input_ids"]) for e in examples]
    width = max(lengths)
    for key in examples[0]:
        values = [e[key] for e in examples]
        if isinstance(values[0], list | np.ndarray):
            pad = pad_id if key == "input_ids" else PAD_VALUES.get(key, -100)
            out = np.full((len(values), width), pad, dtype=np.int64)
            for i, v in enumerate(values):
                out[i, : len(v)] = v
            batch[key] = torch.from_numpy(out)
        else:
            batch[key] = torch.tensor(values, dtype=torch.long)
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    batch["attention_mask"] = torch.from_numpy(mask.astype(np.int64))
    return batch


class StepBatches:
    """Per optimizer step: this process's micro-batches (lists of examples)."""

    def __init__(self, examples: Iterator[dict], batch_size: int, micro_batch_size: int, rank: int, world: int):
        if batch_size % (micro_batch_size * world):
            raise ValueError(f"train.batch_size ({batch_size}) must be a multiple of micro_batch_size x processes "
                             f"({micro_batch_size} x {world})")
        self.examples, self.batch_size, self.micro = examples, batch_size, micro_batch_size
        self.rank, self.world = rank, world

    @property
    def accumulation(self) -> int:
        return self.batch_size // (self.micro * self.world)

    def next_step(self) -> list[list[dict]]:
        step = list(itertools.islice(self.examples, self.batch_size))
        share = self.batch_size // self.world
        mine = step[self.rank * share : (self.rank + 1) * share]
        return [mine[i : i + self.micro] for i in range(0, share, self.micro)]
