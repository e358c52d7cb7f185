"""The data of the generative tasks, as `datasets.Dataset`s:

* `csl_keywords`: CLUE CSL abstracts -> their keywords. A CSL row is {id, abst, keyword (a list), label}; rows
  with label "1" list true keywords of the paper (label "0" rows mix in fake ones). An abstract appears in several
  rows, each label-"1" row with a subset of its keywords, so one example is made per abstract: source = prefix +
  abstract, target = the union of its label-"1" keywords (first-seen order) joined by the separator ("；").
* `user_pairs`: your JSONL / CSV / TSV with a source and a target field (names configurable); a bad row stops with
  file, line and field.
* `corpus_documents`: paragraphs of text files (e.g. the classic novels, CRLF line endings, blank lines between
  paragraphs), split into train / held-out by a hash of (file name, paragraph number): stable across runs and
  machines, and whole paragraphs, so no held-out text leaks into training through a shared block.

Pair datasets have the columns `id, source, target` (the contract of `train_textgen(cfg, splits=...)`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..tabular import DataError, cell, read_records
from .config import TextGenData

PAIR_COLUMNS = ("id", "source", "target")


def _pairs_dataset(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_dict({c: [r[c] for r in rows] for c in PAIR_COLUMNS})


def csl_keywords(spec: TextGenData, split: str, data: str | os.PathLike | None = None, limit: int = 0):
    """CSL `split` ("train" or "dev") as source/target pairs (label-"1" rows only), the first `limit` if set."""
    from ..data import resolve
    from .metrics import KEYWORD_SEPARATORS

    if spec.separator not in KEYWORD_SEPARATORS:  # keyword F1 splits predictions and references on these
        raise ValueError(f"dataset.separator {spec.separator!r}: keyword F1 splits on {list(KEYWORD_SEPARATORS)}; "
                         "use one of them")
    path = Path(resolve(spec.csl_dir, data)) / f"{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no CSL {split} file (CLUE csl_public.zip unpacked into {path.parent})")
    keywords: dict[str, list[str]] = {}  # abstract -> its true keywords, in order of first appearance
    ids: dict[str, str] = {}
    for number, row in read_records(path, "jsonl"):
        if str(row.get("label")) != "1":
            continue
        abstract, words = row.get("abst"), row.get("keyword")
        if not isinstance(abstract, str) or not abstract.strip():
            raise DataError(f"{path}:{number}: field 'abst': expected the abstract text, got {abstract!r:.40}")
        if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
            raise DataError(f"{path}:{number}: field 'keyword': expected a list of keywords, got {words!r:.60}")
        abstract = abstract.strip()
        if abstract not in keywords:
            if limit and len(keywords) >= limit:
                continue
            keywords[abstract], ids[abstract] = [], str(row.get("id", number))
        for word in (w.strip() for w in words):
            if word and word not in keywords[abstract]:  # once, even when a row repeats it
                keywords[abstract].append(word)
    rows = [{"id": ids[a], "source": spec.prefix + a, "target": spec.separator.join(k)} for a, k in keywords.items()]
    return _pairs_dataset(rows)


def user_pairs(spec: TextGenData, path: str | os.PathLike, limit: int = 0):
    """Source/target pairs of one user file; missing or non-text fields name file, line and field."""
    path = Path(path)
    rows, seen = [], {}
    for index, (number, row) in enumerate(read_records(path, spec.format, spec.encoding)):
        example = {"id": cell(path, number, row, spec.id, empty_ok=False, what="an id") if spec.id else str(index)}
        if example["id"] in seen:
            raise DataError(f"{path}:{number}: field {spec.id!r}: id {example['id']!r} repeats line {seen[example['id']]}")
        seen[example["id"]] = number
        for name, column in (("source", spec.source), ("target", spec.target)):
            value = cell(path, number, row, column, empty_ok=False)
            example[name] = (spec.prefix if name == "source" else "") + value
        rows.append(example)
        if limit and len(rows) >= limit:
            break
    return _pairs_dataset(rows)


def held_out(name: str, index: int, fraction: float) -> bool:
    """Whether paragraph `index` of file `name` is held out: a hash, so the split never depends on the order
    files are listed in or on the other files."""
    digest = hashlib.blake2b(f"{name}\0{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def corpus_documents(paths: list[str], eval_fraction: float, data: str | os.PathLike | None = None,
                     limit: int = 0) -> dict[str, list[str]]:
    """{"train": paragraphs, "dev": paragraphs} of the text files named by `paths` (data:REL, globs, folders).
    Lines are paragraphs (CR/LF stripped, blank lines skipped); `limit` caps the training paragraphs."""
    from ..data import resolve
    from ..textfiles import ReadStats, Source, expand, iter_file

    if not 0 < eval_fraction < 1:
        raise ValueError(f"dataset.eval_fraction must be in (0, 1) (held-out perplexity needs held-out text), "
                         f"got {eval_fraction}")
    out: dict[str, list[str]] = {"train": [], "dev": []}
    files = expand([resolve(p, data) for p in paths])
    if not files:
        raise FileNotFoundError(f"no text file under {paths}")
    stats = ReadStats()
    for path in files:
        for index, text in enumerate(iter_file(path, Source(format="text"), stats)):
            out["dev" if held_out(path.name, index, eval_fraction) else "train"].append(text.strip())
    if limit:
        out["train"] = out["train"][:limit]
    if not out["train"]:
        raise ValueError(f"{paths}: no training text")
    if not out["dev"]:
        raise ValueError(f"{[str(f) for f in files]}: none of the {len(out['train'])} paragraphs fell in the held-out "
                         f"{eval_fraction:.1%}; raise dataset.eval_fraction or add text")
    return out


def token_blocks(tokenizer, texts: list[str], block_size: int) -> list[list[int]]:
    """Documents tokenized, each followed by EOS, concatenated and cut into `block_size`-token blocks (the last
    partial block kept, so a short held-out set is scored whole)."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    # verbose=False: a paragraph longer than the model's positions is expected here (it is cut into blocks)
    for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]:
        stream.extend(ids + [eos])
    return [stream[i : i + block_size] for i in range(0, len(stream), block_size)]


def load_pairs(cfg, split: str, limit: int = 0):
    """The `split` of a pair task named by a `TextGenConfig` (csl-keywords or pairs)."""
    from ..config import ConfigError
    from ..data import resolve

    if cfg.task == "csl-keywords":
        return csl_keywords(cfg.dataset, split, cfg.data or None, limit)
    path = getattr(cfg.dataset, split)
    if not path:
        raise ConfigError(f"task pairs needs --dataset.{split} FILE")
    return user_pairs(cfg.dataset, resolve(path, cfg.data or None), limit)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    from .. import atomic

    return atomic.write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
