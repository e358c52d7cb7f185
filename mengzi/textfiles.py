"""Read raw text from files, folders and globs, one `Source` at a time.

A source says where the text is and how it is laid out:

* `text`  — plain text, one document a line, or (`documents: blank_line`) documents separated by blank lines;
* `jsonl` — one JSON record a line, the text in `field` (`.json` files may instead hold one JSON array);
* `tsv`   — tab-separated columns, the text in `column` (an index, or a name read from the header line).

`auto` picks the format by suffix. Compressed files (`.txt.gz`, `.jsonl.bz2`, `.tsv.xz`, ...) are read through
their decompressor and laid out by the suffix before it. Tokenizer training and the pre-training corpus both read
through here.
Undecodable bytes are replaced and counted; malformed records are skipped and recorded as "file:line: why";
nothing here crashes a long run on one bad line, and nothing is dropped without being counted.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import json
import lzma
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .config import option

TEXT_SUFFIXES = (".txt", ".jsonl", ".json", ".tsv")
COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # suffix -> opener of the bytes inside
MAX_PROBLEMS = 20


@dataclass
class Source:
    """One input of a corpus: a file, folder or glob and its layout."""

    path: str = option("", "file, folder (recursive: .txt/.jsonl/.json/.tsv, also .gz/.bz2/.xz) or glob; data:REL is under $DATA")
    format: Literal["auto", "text", "jsonl", "tsv"] = option(
        "auto", "auto: by suffix (.jsonl/.json records, .tsv columns, anything else plain text)")
    field: str = option("text", "jsonl: the record field holding the text")
    column: str = option("-1", "tsv: the text column, an index (-1: last) or a header name")
    header: bool = option(False, "tsv: the first line names the columns (implied when `column` is a name)")
    documents: Literal["line", "blank_line"] = option(
        "line", "text: one document a line, or documents separated by blank lines")


@dataclass
class ReadStats:
    """What reading saw: files, documents yielded, and the problems that did not stop it."""

    files: int = 0
    lines: int = 0  # documents yielded (a line each unless documents: blank_line)
    empty: int = 0
    undecodable_lines: int = 0
    bad_records: int = 0
    problems: list[str] = field(default_factory=list)  # "file:line: reason", the first MAX_PROBLEMS

    def problem(self, message: str) -> None:
        self.bad_records += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


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
                out.extend(sorted(q for q in p.rglob("*") if q.is_file() and inner_suffix(q) in TEXT_SUFFIXES))
            elif p.is_file():
                out.append(p)
            else:
                raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def inner_suffix(path: Path) -> str:
    """The suffix that says the layout: `.txt` for both `a.txt` and `a.txt.gz`."""
    suffixes = path.suffixes[-2:]
    if suffixes and suffixes[-1].lower() in COMPRESSED:
        return suffixes[0].lower() if len(suffixes) == 2 else ""
    return path.suffix.lower()


def open_bytes(path: Path):
    """`path` opened for reading bytes, decompressed when its suffix says so."""
    return COMPRESSED.get(path.suffix.lower(), open)(path, "rb")


def format_of(source: Source, path: Path) -> str:
    if source.format != "auto":
        return source.format
    return {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv"}.get(inner_suffix(path), "text")


def iter_file(path: Path, source: Source, stats: ReadStats) -> Iterator[str]:
    """The documents of one file laid out as `source` says. A compressed file that turns out damaged is a problem
    counted (with the documents read before it), not a crash."""
    stats.files += 1
    before = stats.lines
    try:
        yield from _iter_file(path, source, stats)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
        if path.suffix.lower() not in COMPRESSED:
            raise
        stats.problem(f"{path}: damaged {path.suffix} file after {stats.lines - before} documents "
                      f"({type(e).__name__}: {e})")


def _iter_file(path: Path, source: Source, stats: ReadStats) -> Iterator[str]:
    kind = format_of(source, path)
    if kind == "jsonl" and _starts_with(path, b"["):
        yield from _json_array(path, source.field, stats)
        return
    column: int | None = None
    blank_line_docs = kind == "text" and source.documents == "blank_line"
    paragraph: list[str] = []
    with open_bytes(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                stats.undecodable_lines += 1
                line = raw.decode("utf-8", errors="replace")
            line = line.rstrip("\r\n")
            if kind == "tsv":
                if not line.strip():
                    stats.empty += 1
                    continue
                if column is None:
                    column = _column_index(source, line, path)
                    if source.header or not _is_int(source.column):
                        continue
                cells = line.split("\t")
                if not -len(cells) <= column < len(cells):
                    stats.problem(f"{path}:{lineno}: column {source.column}: the line has {len(cells)} columns")
                    continue
                line = cells[column]
            elif kind == "jsonl":
                if not line.strip():
                    stats.empty += 1
                    continue
                try:
                    value = json.loads(line)[source.field]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    stats.problem(f"{path}:{lineno}: field {source.field!r}: {type(e).__name__} {e}")
                    continue
                except RecursionError:
                    stats.problem(f"{path}:{lineno}: JSON nested too deeply to read")
                    continue
                except ValueError as e:  # an integer of more than 4,300 digits
                    stats.problem(f"{path}:{lineno}: not valid JSON ({e})")
                    continue
                if not isinstance(value, str):
                    stats.problem(f"{path}:{lineno}: field {source.field!r}: not text ({type(value).__name__})")
                    continue
                line = value
            elif blank_line_docs:
                if line.strip():
                    paragraph.append(line)
                    continue
                if not paragraph:
                    continue
                line, paragraph = "\n".join(paragraph), []
            if not line.strip():
                stats.empty += 1
                continue
            stats.lines += 1
            yield line
    if paragraph:
        stats.lines += 1
        yield "\n".join(paragraph)


def iter_source(source: Source, stats: ReadStats, data: str | os.PathLike | None = None) -> Iterator[str]:
    from .data import resolve

    for path in expand([resolve(source.path, data)]):
        yield from iter_file(path, source, stats)


def iter_texts(paths: Iterable[str | os.PathLike], text_field: str = "text", tsv_column: int = -1,
               stats: ReadStats | None = None) -> Iterator[str]:
    """Non-empty texts of `paths`, each file read with the `auto` layout (one document a line)."""
    stats = stats if stats is not None else ReadStats()
    source = Source(field=text_field, column=str(tsv_column))
    for path in expand(paths):
        yield from iter_file(path, source, stats)


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _column_index(source: Source, first_line: str, path: Path) -> int:
    if _is_int(source.column):
        return int(source.column)
    names = first_line.split("\t")
    if source.column not in names:
        raise ValueError(f"{path}:1: column {source.column!r} is not in the header {names}")
    return names.index(source.column)


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open_bytes(path) as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(prefix)


def _json_array(path: Path, text_field: str, stats: ReadStats) -> Iterator[str]:
    """A whole-file JSON array of records (or of strings)."""
    with open_bytes(path) as f:
        text = f.read().decode("utf-8-sig", errors="replace")
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        stats.problem(f"{path}:{e.lineno}: not valid JSON: {e.msg}")
        return
    except (RecursionError, ValueError) as e:
        stats.problem(f"{path}: not valid JSON ({'nested too deeply to read' if isinstance(e, RecursionError) else e})")
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


def json_objects(name, lines: Iterable[str], error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file. Unlike a corpus `Source`, a line that is
    not one strict JSON object stops here with `error("NAME:LINE: why")`: these are task files, where a bad row is a
    bug to fix rather than noise to count. Users' whole files are better read by `tabular.read_records`."""
    from .tabular import json_lines

    yield from json_lines(lines, name, error)
