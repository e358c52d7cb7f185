"""Strict reading of CLUE's JSON files: every complaint names the file, the 1-based line (or, in a JSON document,
the item) and the field, e.g. `afqmc/dev.json:17: field 'label': unknown label '7' (known: 0, 1)`.

Two layouts occur in the official releases:
- JSON lines (most tasks): one object a line. Bytes are decoded line by line, so an undecodable byte is reported at
  its line; a UTF-8 BOM at the start of the file is accepted; blank lines are skipped.
- one JSON document (C3's arrays, CMRC2018's SQuAD-style object): a problem names the item path instead of a line.

No torch, no datasets: the submission validator and the deployment runtime read test files through here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from mengzi.tabular import JsonProblem, strict_json

BOM = b"\xef\xbb\xbf"
_REPLACED = re.compile("\ufffd")  # what an undecodable byte becomes when we look for the field that holds it


class ClueDataError(ValueError):
    """A file that does not match the official layout. `file` is shown as `<task folder>/<name>`; `line` is 1-based
    (None inside a JSON document, where `item` says where instead); `field` is None for whole-line problems."""

    def __init__(self, file: str, line: int | None = None, field: str | None = None, problem: str = "",
                 item: str | None = None):
        self.file, self.line, self.field, self.problem, self.item = file, line, field, problem, item
        if not problem:  # ClueDataError("whole message"), as callers outside the readers may raise it
            super().__init__(file)
            return
        where = file if line is None else f"{file}:{line}"
        if item:
            where += f": {item}"
        super().__init__(f"{where}: field {field!r}: {problem}" if field else f"{where}: {problem}")


def display_name(path: str | Path) -> str:
    """`afqmc/dev.json`: the task folder says which task, the name which split."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


KIND_NAMES = {dict: "object", list: "array", str: "string", int: "integer", bool: "boolean", float: "number"}


def type_name(value) -> str:
    return "null" if value is None else KIND_NAMES.get(type(value), type(value).__name__)


def short(value, width: int = 40) -> str:
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except (RecursionError, ValueError):
        text = f"(a deeply nested {type_name(value)})"
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate shown as \ud800
    return text if len(text) <= width else text[: width - 3] + "..."


class Record:
    """One JSON object and where it came from; typed getters raise `ClueDataError` naming file, line and field.
    `prefix` names nested objects (`target.span1_index`)."""

    def __init__(self, data: dict, file: str, line: int | None = None, item: str | None = None, prefix: str = ""):
        self.data, self.file, self.line, self.item, self.prefix = data, file, line, item, prefix

    def __contains__(self, field: str) -> bool:
        return field in self.data

    def error(self, field: str | None, problem: str) -> ClueDataError:
        return ClueDataError(self.file, self.line, f"{self.prefix}{field}" if field else None, problem, self.item)

    def get(self, field: str, *kinds: type, default=KeyError):
        """The value of `field`, checked to be one of `kinds` (bool never passes for int)."""
        if field not in self.data:
            if default is KeyError:
                raise self.error(field, "missing")
            return default
        value = self.data[field]
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            wanted = " or ".join(KIND_NAMES.get(k, k.__name__) for k in kinds)
            raise self.error(field, f"expected {wanted}, got {type_name(value)} {short(value)}")
        return value

    def text(self, field: str) -> str:
        return self.get(field, str)

    def integer(self, field: str, default=KeyError) -> int:
        value = self.get(field, int, default=default)
        if not -(2**63) <= value < 2**63:  # ids and indices are stored as int64
            raise self.error(field, f"{short(value)} is out of range (at most 19 digits)")
        return value

    def strings(self, field: str, allow_empty: bool = False) -> list[str]:
        values = self.get(field, list)
        if not values and not allow_empty:
            raise self.error(field, "empty list")
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise self.error(f"{field}[{i}]", f"expected string, got {type_name(value)} {short(value)}")
        return values

    def nested(self, field: str) -> Record:
        return Record(self.get(field, dict), self.file, self.line, self.item, f"{self.prefix}{field}.")


def _field_holding(value, pattern: re.Pattern, path: str = "") -> str | None:
    """Path (`target.span1_text`, `keyword[2]`) of the first string inside `value` (keys included) that
    `pattern` finds something in; "" for `value` itself."""
    if isinstance(value, str):
        return path if pattern.search(value) else None
    if isinstance(value, dict):
        children = [(f"{path}.{key}" if path else key, key, child) for key, child in value.items()]
    elif isinstance(value, list):
        children = [(f"{path}[{i}]", "", child) for i, child in enumerate(value)]
    else:
        return None
    for child_path, key, child in children:
        found = child_path if pattern.search(key) else _field_holding(child, pattern, child_path)
        if found is not None:
            return found
    return None


def _decode(text: str, name: str, line: int | None, what: str):
    """`text` parsed strictly (`mengzi.tabular.strict_json`: the one strict JSON reader); any problem is a
    ClueDataError at `line` (None: the line is found in `text`)."""
    try:
        value, end = strict_json(text)
    except JsonProblem as e:
        at = line or (None if e.lines is None else 1 + e.lines)
        raise ClueDataError(name, at, e.field, f"{what}{e.problem}" if e.syntax else e.problem) from None
    if text[end:].strip():
        raise ClueDataError(name, (line or 1) + text.count("\n", 0, end), None,
                            f"{what}not valid JSON (Extra data after the value at column {end + 1})")
    return value


def read_bytes(path: str | Path) -> bytes:
    """A data file's bytes without its UTF-8 BOM; a folder or an unreadable file is a ClueDataError."""
    path = Path(path)
    if path.is_dir():
        raise ClueDataError(display_name(path), None, None, f"is a folder, not a file ({path})")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ClueDataError(display_name(path), None, None, f"cannot read {path}: {e.strerror or e}") from None
    return data[len(BOM):] if data.startswith(BOM) else data


def json_lines(path: str | Path) -> Iterator[Record]:
    """The records of a JSON-lines file, in order, each knowing its 1-based line."""
    name = display_name(path)
    for number, raw in enumerate(read_bytes(path).split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            # Decode leniently once more only to say which field holds the bad bytes.
            try:
                field = _field_holding(json.loads(raw.decode("utf-8", errors="replace")), _REPLACED) or None
            except (ValueError, RecursionError):
                field = None
            raise ClueDataError(name, number, field, f"undecodable bytes (not UTF-8) at byte {e.start} of the line: "
                                f"{raw[e.start:e.start + 4]!r}") from None
        if not line.strip():
            continue
        record = _decode(line, name, number, "the line is ")
        if not isinstance(record, dict):
            raise ClueDataError(name, number, None, f"expected a JSON object, got {type_name(record)}")
        yield Record(record, name, number)


def json_document(path: str | Path):
    """A whole-file JSON document (C3, CMRC2018, ChID answer files); a syntax error names its line."""
    name = display_name(path)
    data = read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ClueDataError(name, line, None, f"undecodable bytes (not UTF-8): {data[e.start:e.start + 4]!r}") from None
    if not text.strip():
        raise ClueDataError(name, None, None, "no examples: the file is empty (expected one JSON document)")
    return _decode(text, name, None, "")
