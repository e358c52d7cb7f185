"""Read raw text from files, folders and globs: `.txt` (one document a line), `.jsonl`/`.json` (a text field;
`.json` may also be one JSON array of records), `.tsv` (a column).

Small on purpose: tokenizer training needs a stream of strings; the pre-training corpus pipeline builds its
documents, packing and statistics on top of it. Undecodable bytes are replaced and counted, never fatal.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

TEXT_SUFFIXES = (".txt", ".jsonl", ".json", ".tsv")


@dataclass
class ReadStats:
    """What reading saw: files, lines yielded, and the problems that did not stop it."""

    files: int = 0
    lines: int = 0
    empty: int = 0
    undecodable_lines: int = 0
    bad_json: list[str] = field(default_factory=list)  # "file:line: reason", first 20 kept

    def problem(self, message: str) -> None:
        if len(self.bad_json) < 20:
            self.bad_json.append(message)


def expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by `paths`: files as given, folders recursively (text suffixes only), globs expanded."""
    out: list[Path] = []
    for spec in paths:
        spec = str(spec)
        matches = sorted(glob.glob(spec, recursive=True)) if any(c in spec for c in "*?[") else [spec]
        if not matches:
            raise FileNotFoundError(f"no file matches {spec!r}")
        for m in matches:
            p = Path(m)
            if p.is_dir():
                out.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix in TEXT_SUFFIXES))
            elif p.is_file():
                out.append(p)
            else:
                raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def iter_texts(paths: Iterable[str | os.PathLike], text_field: str = "text", tsv_column: int = -1,
               stats: ReadStats | None = None) -> Iterator[str]:
    """Yield non-empty texts: a line of .txt, the `text_field` of .jsonl/.json lines, a column of .tsv."""
    stats = stats if stats is not None else ReadStats()
    for path in expand(paths):
        stats.files += 1
        if path.suffix == ".json" and _starts_with(path, b"["):
            yield from _json_array(path, text_field, stats)
            continue
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    stats.undecodable_lines += 1
                    line = raw.decode("utf-8", errors="replace")
                line = line.rstrip("\r\n")
                if path.suffix in (".jsonl", ".json"):
                    if not line.strip():
                        stats.empty += 1
                        continue
                    try:
                        value = json.loads(line)[text_field]
                    except (json.JSONDecodeError, KeyError, TypeError) as e:
                        stats.problem(f"{path}:{lineno}: field {text_field!r}: {type(e).__name__} {e}")
                        continue
                    line = value if isinstance(value, str) else ""
                elif path.suffix == ".tsv":
                    line = line.split("\t")[tsv_column]
                if not line.strip():
                    stats.empty += 1
                    continue
                stats.lines += 1
                yield line


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(prefix)


def _json_array(path: Path, text_field: str, stats: ReadStats) -> Iterator[str]:
    """A whole-file JSON array of records (or of strings)."""
    try:
        records = json.loads(path.read_text(encoding="utf-8-sig", errors="replace"))
    except json.JSONDecodeError as e:
        stats.problem(f"{path}:{e.lineno}: not valid JSON: {e.msg}")
        return
    for i, record in enumerate(records):
        text = record if isinstance(record, str) else record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            stats.problem(f"{path}: record {i}: field {text_field!r} missing or not text")
            continue
        if not text.strip():
            stats.empty += 1
            continue
        stats.lines += 1
        yield text
