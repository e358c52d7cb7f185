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
from collections.abc import Iterator
from pathlib import Path

BOM = b"\xef\xbb\xbf"
REPLACEMENT = "\ufffd"  # what an undecodable byte becomes when we look for the field that holds it


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
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
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
        return self.get(field, int, default=default)

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


def _field_holding(value, needle: str, path: str = "") -> str | None:
    """Path (`target.span1_text`, `keyword[2]`) of the first string inside `value` containing `needle`."""
    if isinstance(value, str):
        return (path or None) if needle in value else None
    if isinstance(value, dict):
        children = [(f"{path}.{key}" if path else key, child) for key, child in value.items()]
    elif isinstance(value, list):
        children = [(f"{path}[{i}]", child) for i, child in enumerate(value)]
    else:
        return None
    for child_path, child in children:
        found = _field_holding(child, needle, child_path)
        if found:
            return found
    return None


def json_lines(path: str | Path) -> Iterator[Record]:
    """The records of a JSON-lines file, in order, each knowing its 1-based line."""
    path, name = Path(path), display_name(path)
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            # Decode leniently once more only to say which field holds the bad bytes.
            try:
                field = _field_holding(json.loads(raw.decode("utf-8", errors="replace")), REPLACEMENT)
            except json.JSONDecodeError:
                field = None
            raise ClueDataError(name, number, field, f"undecodable bytes (not UTF-8) at byte {e.start} of the line: "
                                f"{raw[e.start:e.start + 4]!r}") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            problem = f"the line is not valid JSON ({e.msg} at column {e.colno})"
            raise ClueDataError(name, number, None, problem) from None
        if not isinstance(record, dict):
            raise ClueDataError(name, number, None, f"expected a JSON object, got {type_name(record)}")
        yield Record(record, name, number)


def json_document(path: str | Path):
    """A whole-file JSON document (C3, CMRC2018, ChID answer files); a syntax error names its line."""
    path, name = Path(path), display_name(path)
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ClueDataError(name, line, None, f"undecodable bytes (not UTF-8): {data[e.start:e.start + 4]!r}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ClueDataError(name, e.lineno, None, f"not valid JSON ({e.msg} at column {e.colno})") from None
