"""The pre-training corpus: sources -> clean documents -> packed examples, on `datasets`.

Two modes, each deterministic for a seed:

* cached (default): documents are read once into Arrow, packed with `num_proc` workers and saved under
  `cache_dir/<key>` (key = sources + file sizes/mtimes + tokenizer + packing settings), so a second run, a resumed
  run or another process starts at once. Shuffling is a seeded permutation per epoch.
* streaming (`stream: true`): a `datasets.IterableDataset` read and packed lazily, files in a seeded order per
  epoch, examples through a bounded seeded shuffle buffer (our own: datasets' `.shuffle()` made peak memory grow
  with the corpus, see benchmarks/stream_memory.py). A single-file corpus packs into the same examples in both
  modes; with several files the packer's batches, and so its random A/B cuts, differ.

Every document passes the shared normaliser, then length checks: empty and too-short documents are dropped and
counted, oversized ones are cut into `max_chars` pieces and counted, and a slice chosen by a hash of the text is
held out for evaluation unless `eval_sources` names held-out files. `CorpusStats` reports all of it in the run log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import option
from ..textfiles import ReadStats, Source, expand, iter_file
from ..tokenizer.normalize import Normalizer, NormalizerConfig

log = logging.getLogger(__name__)


@dataclass
class CorpusConfig:
    """Where the text comes from and how it is cleaned, split and cached."""

    sources: list[Source] = option([], "training text: a list of {path, format, field, column, documents}")
    eval_sources: list[Source] = option([], "held-out text for evaluation; empty: hold out `eval_fraction`")
    eval_fraction: float = option(0.002, "share of documents held out (by a hash of the text) if no eval_sources",
                                  min=0, max=1)
    normalize: NormalizerConfig = option(NormalizerConfig(), "the shared corpus normaliser")
    min_chars: int = option(2, "documents shorter than this (after cleaning) are dropped and counted", min=0)
    max_chars: int = option(200_000, "documents longer than this are cut into pieces of this size and counted",
                            min=1)
    dedup_adjacent: bool = option(True, "drop a document identical to the one before it (counted)")
    stream: bool = option(False, "stream the files (corpora larger than memory/disk cache) instead of caching")
    shuffle_buffer: int = option(10_000, "streaming: examples held in the shuffle buffer", min=1)
    num_proc: int = option(1, "cached mode: processes that tokenize and pack", min=1)
    cache_dir: str = option("", "cached mode: where packed corpora live (default ~/.cache/mengzi/corpus)")


@dataclass
class CorpusStats(ReadStats):
    """Counts a run log reports: nothing is dropped silently. Reading fills the `ReadStats` part (files, raw
    documents as `lines`, empty, undecodable, bad records) as it goes, so a stream's counts are live."""

    documents: int = 0
    chars: int = 0
    too_short: int = 0
    oversized: int = 0
    duplicates: int = 0
    held_out: int = 0

    def summary(self) -> str:
        return (f"{self.documents:,} documents ({self.chars:,} chars) from {self.files} files; dropped: "
                f"{self.empty:,} empty, {self.too_short:,} too short, {self.duplicates:,} adjacent duplicates, "
                f"{self.bad_records:,} bad records; {self.oversized:,} oversized cut; {self.undecodable_lines:,} "
                f"lines with undecodable bytes (replaced); {self.held_out:,} held out for evaluation")


def held_out(text: str, fraction: float) -> bool:
    """A stable pseudo-random slice: the same document is held out in every run, mode and process."""
    return fraction > 0 and zlib.crc32(text.encode("utf-8")) % 100_000 < fraction * 100_000


class Documents:
    """Callable generator of clean documents of one split; `stats` fills as it runs.

    A class (not a closure) so that `datasets` shuffling its shards keeps the same object and its stats.
    """

    def __init__(self, cfg: CorpusConfig, split: str, data: str | None = None):
        self.cfg, self.split, self.data = cfg, split, data
        self.normalizer = Normalizer(cfg.normalize)
        self.stats = CorpusStats()

    def files(self) -> list[tuple[int, str]]:
        """(source index, path) of every file of this split: the shards of a streaming dataset."""
        from ..data import resolve

        sources = self.sources()
        return [(i, str(p)) for i, s in enumerate(sources) for p in expand([resolve(s.path, self.data)])]

    def sources(self) -> list[Source]:
        own_eval = self.split == "eval" and self.cfg.eval_sources
        return self.cfg.eval_sources if own_eval else self.cfg.sources

    def __call__(self, shards: list[tuple[int, str]]) -> Iterator[dict]:
        for text in self.iter(shards):
            yield {"text": text}

    def iter(self, shards: list[tuple[int, str]] | None = None) -> Iterator[str]:
        cfg, stats = self.cfg, self.stats
        sources = self.sources()
        hashed_split = not cfg.eval_sources
        previous = None
        for index, path in shards if shards is not None else self.files():
            for text in iter_file(Path(path), sources[index], stats):
                if self.normalizer.active:
                    text = self.normalizer(text)
                text = text.strip()
                if not text:
                    stats.empty += 1
                    continue
                if len(text) < cfg.min_chars:
                    stats.too_short += 1
                    continue
                if cfg.dedup_adjacent and text == previous:
                    stats.duplicates += 1
                    continue
                previous = text
                if hashed_split and held_out(text, cfg.eval_fraction) != (self.split == "eval"):
                    stats.held_out += self.split == "train"
                    continue
                pieces = [text[i : i + cfg.max_chars] for i in range(0, len(text), cfg.max_chars)]
                stats.oversized += len(pieces) > 1
                for piece in pieces:
                    stats.documents += 1
                    stats.chars += len(piece)
                    yield piece


def corpus_key(cfg: CorpusConfig, files: list[tuple[int, str]], packing: dict) -> str:
    """Cache key: everything that changes the packed examples, including each file's size and mtime."""
    described = {k: v for k, v in asdict(cfg).items() if k not in ("stream", "shuffle_buffer", "num_proc", "cache_dir")}
    stamps = [(i, p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for i, p in files]
    from .. import __version__  # a new release may pack differently

    blob = json.dumps([__version__, described, stamps, packing], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_split(cfg: CorpusConfig, split: str, packer, data: str | None = None):
    """(datasets.Dataset of packed examples, CorpusStats), built once and reused from `cache_dir`."""
    import datasets

    docs = Documents(cfg, split, data)
    files = docs.files()
    root = Path(cfg.cache_dir or Path.home() / ".cache" / "mengzi" / "corpus").expanduser()
    final = root / f"{split}-{corpus_key(cfg, files, packer.fingerprint())}"
    if (final / "stats.json").is_file():
        stats = CorpusStats(**json.loads((final / "stats.json").read_text(encoding="utf-8")))
        log.info("corpus %s: cached at %s", split, final)
        return _load(final, packer, stats), stats
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        log.info("corpus %s: reading %d files", split, len(files))
        text_features = datasets.Features({"text": datasets.Value("string")})
        try:
            raw = datasets.Dataset.from_generator(docs, gen_kwargs={"shards": files}, cache_dir=str(tmp / "raw"),
                                                  features=text_features)
            packed = raw.map(packer, batched=True, with_indices=True, remove_columns=["text"], batch_size=256,
                             num_proc=cfg.num_proc if cfg.num_proc > 1 else None, features=packer.features(),
                             desc=f"packing {split}")
        except ValueError:  # datasets refuses a generator that yields nothing (e.g. nothing held out)
            if docs.stats.documents:
                raise
            packed = datasets.Dataset.from_dict({k: [] for k in packer.features()}, features=packer.features())
        log.info("corpus %s: %s", split, docs.stats.summary())
        packed.save_to_disk(str(tmp / "dataset"))
        (tmp / "stats.json").write_text(json.dumps(asdict(docs.stats), ensure_ascii=False), encoding="utf-8")
        shutil.rmtree(tmp / "raw", ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _load(final, packer, docs.stats), docs.stats


def _load(final: Path, packer, stats: CorpusStats):
    import datasets

    if not stats.documents:  # datasets cannot load an empty saved dataset back
        return datasets.Dataset.from_dict({k: [] for k in packer.features()}, features=packer.features())
    return datasets.load_from_disk(str(final / "dataset"))


def streaming_split(cfg: CorpusConfig, split: str, packer, seed: int, data: str | None = None):
    """(ShuffledStream of packed examples, live CorpusStats); call `.set_epoch(e)` per epoch."""
    docs = Documents(cfg, split, data)
    stream = ShuffledStream(docs, packer, seed, cfg.shuffle_buffer if split == "train" else 0)
    return stream, docs.stats


class ShuffledStream:
    """A `datasets.IterableDataset` per epoch (documents -> packed examples, lazily), its files in a seeded order
    and its examples through a seeded buffer of `buffer_size` (0: file order, for held-out text)."""

    def __init__(self, docs: Documents, packer, seed: int, buffer_size: int):
        self.docs, self.packer, self.seed, self.buffer_size = docs, packer, seed, buffer_size
        self.files = docs.files()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _packed(self, files):
        import datasets

        raw = datasets.IterableDataset.from_generator(self.docs, gen_kwargs={"shards": files},
                                                      features=datasets.Features({"text": datasets.Value("string")}))
        return raw.map(self.packer, batched=True, with_indices=True, remove_columns=["text"], batch_size=256,
                       features=self.packer.features())

    def __iter__(self) -> Iterator[dict]:
        import numpy as np

        if not self.buffer_size:
            yield from self._packed(self.files)
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        files = [self.files[i] for i in rng.permutation(len(self.files))]
        buffer: list[dict] = []
        for example in self._packed(files):
            if len(buffer) < self.buffer_size:
                buffer.append(example)
                continue
            i = int(rng.integers(self.buffer_size))
            yield buffer[i]
            buffer[i] = example
        rng.shuffle(buffer)
        yield from buffer
