"""Users' record files read by a real parser: CSV and TSV (a header row names the columns), JSON lines, or one JSON
array of objects. Nothing legal is changed and nothing is dropped; anything malformed is a `DataError` naming the
file, the line and, where there is one, the field.

* CSV goes through the `csv` module: quoted separators and quoted newlines stay in their cell; a record's line is the
  physical line it starts on. TSV is read without CSV quoting (a text that begins with `"` is kept as it is and never
  swallows the rows after it); `tsv-quoted` reads TSV with CSV's quoting rules.
* Lines end only at `\\n` or `\\r\\n` (in CSV and TSV also a lone `\\r`): U+2028, U+2029 and NEL are text and
  stay inside their record.
* A UTF-8 BOM and CRLF line ends are accepted; cells of any size are read; any `encoding` Python knows (gbk,
  gb18030, ...) may be named, and a byte it cannot decode is reported at its line and column.
* JSON is read strictly: NaN, Infinity and numbers too large for a float, a key twice in one object, lone UTF-16
  surrogates and nesting too deep to read are errors, never a crash or a silent change.

Pure Python (csv, json, codecs): the torch-free deployment runtime reads `predict --input` through here too.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

FORMATS = ("auto", "csv", "tsv", "tsv-quoted", "jsonl", "json")
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json"}
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # the default 128 KiB refuses long documents


class DataError(ValueError):
    """A user's file that cannot be read as it should; the message names file, line and field."""


def where(path, line: int | None = None, field: str | None = None) -> str:
    """`path:line: field 'name'`, the prefix of every complaint."""
    text = f"{path}:{line}" if line else f"{path}"
    return f"{text}: field {field!r}" if field else text


# ---------------------------------------------------------------------------------------------------- the file
def read_records(path, format: str = "auto", encoding: str = "utf-8", *, fields: Iterable[str] | None = None,
                 error: type[Exception] = DataError) -> list[tuple[int, dict]]:
    """(line number where the record starts, record) for every record of a CSV (header row), TSV (header row),
    JSON-lines or JSON-array file. `format` auto: by suffix (.csv, .tsv, .jsonl, .json; a .json file may hold one
    JSON array of objects or JSON lines). `fields`: names every record must have. Blank lines are not records;
    a file without records is an error."""
    path = Path(path)
    fmt = format_of(path, format, error)
    text = read_text(path, encoding, error)
    if fmt in ("jsonl", "json"):
        records = json_array(text, path, error) if text.lstrip().startswith("[") else json_lines(text, path, error)
    else:
        records = table(text, path, fmt, error)
    if not records:
        raise error(f"{path}: no rows (the file has no records{'' if fmt in ('jsonl', 'json') else ' under its header'})")
    for line, record in records:
        missing = [name for name in fields or () if name not in record]
        if missing:
            raise error(f"{where(path, line, missing[0])} is missing (fields here: {', '.join(map(str, record))})")
    log.info("%s: %d rows read", path, len(records))
    return records


def format_of(path: Path, format: str = "auto", error: type[Exception] = DataError) -> str:
    if format not in FORMATS:
        raise error(f"{path}: unknown format {format!r} (known: {', '.join(FORMATS)})")
    if format != "auto":
        return format
    suffixes = [s.lower() for s in path.suffixes]
    fmt = SUFFIXES.get(suffixes[-1] if suffixes else "")
    if not fmt:
        raise error(f"{path}: cannot tell the format from the name; give the format ({', '.join(FORMATS[1:])})")
    return fmt


def read_text(path: Path, encoding: str = "utf-8", error: type[Exception] = DataError) -> str:
    """The whole file decoded, without its BOM. A folder, a missing file, an unknown encoding or an undecodable byte
    is an `error` naming the file (and the line and column of the byte)."""
    try:
        codec = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise error(f"{path}: unknown text encoding {encoding!r} (e.g. utf-8, gbk, gb18030, utf-16)") from None
    if path.is_dir():
        raise error(f"{path}: is a folder, not a file")
    if not path.exists():
        raise error(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror or e})") from None
    codec = "utf-8-sig" if codec == "utf-8" else codec
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        before = data[: e.start].decode(codec, errors="replace")
        line = before.count("\n") + 1
        column = len(before) - before.rfind("\n")
        name = "UTF-8" if codec == "utf-8-sig" else encoding
        raise error(f"{path}:{line}: not {name} (column {column}: bytes {data[e.start:e.start + 4]!r}, {e.reason}); "
                    "is the file in another encoding?") from None
    text = text[1:] if text.startswith("\ufeff") else text
    nul = text.find("\x00")
    if nul >= 0:  # UTF-16 read as UTF-8 decodes "fine" with a NUL in every other character
        line, column = text.count("\n", 0, nul) + 1, nul - text.rfind("\n", 0, nul)
        raise error(f"{path}:{line}: column {column}: a NUL character: not a {encoding} text file (UTF-16? a binary "
                    "file? name the encoding)")
    return text


# ---------------------------------------------------------------------------------------------------- CSV / TSV
def table(text: str, path, fmt: str = "csv", error: type[Exception] = DataError) -> list[tuple[int, dict]]:
    """Rows of a CSV/TSV text under its header row, each with the physical line it starts on."""
    if fmt == "tsv":
        options = {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    else:
        options = {"delimiter": "," if fmt == "csv" else "\t", "strict": True}
    reader = csv.reader(io.StringIO(text, newline=""), **options)
    header: list[str] | None = None
    rows = []
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            if "end of data" in str(e):
                raise error(f"{path}:{start}: not valid {fmt.upper()} (a quote opened in this record is never "
                            "closed)") from None
            raise error(f"{path}:{max(start, reader.line_num)}: not valid {fmt.upper()} ({e})") from None
        if not cells or (len(cells) == 1 and not cells[0].strip() and (header is None or len(header) > 1)):
            continue  # a blank line (in a one-column file, a blank cell is a record: an empty value)
        if header is None:
            header = cells
            seen: set[str] = set()
            twice = [name for name in cells if name in seen or seen.add(name)]
            if twice:
                raise error(f"{path}:{start}: the header names column {twice[0]!r} twice")
            continue
        if len(cells) != len(header):
            raise error(f"{path}:{start}: {len(cells)} cells, but the header has {len(header)} columns"
                        + (" (a tab inside a text? a quote in TSV is kept as it is)" if fmt == "tsv" else ""))
        rows.append((start, dict(zip(header, cells))))
    if header is None:
        raise error(f"{path}: no rows (the file is empty)")
    return rows


# ---------------------------------------------------------------------------------------------------- JSON
class _Problem(ValueError):
    """A departure from strict JSON that `json` lets through, and the field it is in."""

    def __init__(self, problem: str, field: str | None = None):
        super().__init__(problem)
        self.problem, self.field = problem, field


def _unique_keys(pairs: list) -> dict:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        raise _Problem("appears twice in one object", next(k for k, _ in pairs if k in seen or seen.add(k)))
    return record


def _constant(name: str):
    raise _Problem(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Problem(f"{text} is too large for a number")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_constant, parse_float=_float)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value, path: str = "") -> str | None:
    """Field path of the first string (or key) in `value` holding half of a UTF-16 pair; None when none does."""
    if isinstance(value, str):
        return path if _LONE_SURROGATE.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        name = f"{path}.{key}" if path and isinstance(key, str) else f"{path}[{key}]" if path or isinstance(
            key, int) else key
        if isinstance(key, str) and _LONE_SURROGATE.search(key):
            return name
        found = _lone_surrogate(child, name)
        if found is not None:
            return found
    return None


def _non_finite(text: str, start: int) -> str | None:
    """Field path of the first NaN or infinite number in the JSON value at `text[start:]` (read leniently)."""
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    stack = [("", value)]
    while stack:
        path, value = stack.pop(0)
        if isinstance(value, float) and not math.isfinite(value):
            return path or None
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack += [(f"{path}.{k}" if path and isinstance(k, str) else f"{path}[{k}]" if isinstance(k, int) else k, v)
                  for k, v in items]
    return None


class JsonProblem(ValueError):
    """What strict reading found wrong in a JSON text: the `problem`, the `field` path it is in (None: the text
    itself), `lines`: how many lines after the value's start it is (None: not known), and `syntax`: the parser's
    words for a syntax error."""

    def __init__(self, problem: str, field: str | None = None, lines: int | None = None, syntax: str = ""):
        super().__init__(problem)
        self.problem, self.field, self.lines, self.syntax = problem, field, lines, syntax


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
MAX_DEPTH = 100  # nesting shown as deeper than this when the parser runs out of stack


def deep_line(text: str, start: int = 0) -> int:
    """Lines after `start` to where `text` first nests deeper than MAX_DEPTH (strings skipped)."""
    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text[start:]):
        token = match.group()
        depth += 1 if token in "[{" else -1 if token in "]}" else 0
        if depth > MAX_DEPTH:
            return text.count("\n", start, start + match.start())
    return 0


def strict_json(text: str, start: int = 0):
    """(value, index after it) for the JSON value at `text[start:]`, read strictly: a key twice in one object,
    NaN/Infinity or a number too large for a float, a lone UTF-16 surrogate escape, nesting too deep to read and
    every syntax error are a `JsonProblem` (never a crash, never a silent change)."""
    origin, start = start, _JSON_SPACE.match(text, start).end()
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as e:
        raise JsonProblem(f"not valid JSON ({e.msg} at column {e.pos - text.rfind(chr(10), 0, e.pos)})",
                          lines=text.count("\n", origin, e.pos),
                          syntax=f"{e.msg} at column {e.pos - text.rfind(chr(10), 0, e.pos)}") from None
    except _Problem as e:
        raise JsonProblem(e.problem, e.field or _non_finite(text, start)) from None
    except RecursionError:
        raise JsonProblem("JSON nested too deeply to read",
                          lines=text.count("\n", origin, start) + deep_line(text, start)) from None
    except ValueError as e:  # an integer of more than 4,300 digits
        raise JsonProblem(f"not valid JSON ({e})") from None
    if _SURROGATE_ESCAPE.search(text, start, end):
        field = _lone_surrogate(value)
        if field is not None:
            raise JsonProblem("a lone UTF-16 surrogate escape (\\ud800-\\udfff): not text", field or None)
    return value, end


def json_value(text: str, path, line: int, error: type[Exception] = DataError, start: int = 0,
               expected: str = "valid JSON"):
    """One strict JSON value at `text[start:]` and the index after it; problems are `error`s at their line."""
    try:
        return strict_json(text, start)
    except JsonProblem as e:
        problem = f"not {expected} ({e.syntax})" if e.syntax else e.problem
        raise error(f"{where(path, line + (e.lines or 0), e.field)}: {problem}") from None


def json_lines(lines: str | Iterable[str], path, error: type[Exception] = DataError) -> list[tuple[int, dict]]:
    """(line, object) for each non-blank line; a line that is not one JSON object is an `error`. Lines end at
    `\\n` only (U+2028 and friends are legal inside JSON strings)."""
    if isinstance(lines, str):
        lines = lines.split("\n")
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        value, end = json_value(line, path, number, error, len(line) - len(line.lstrip()), "a JSON object")
        if line[end:].strip():
            raise error(f"{path}:{number}: not valid JSON (more after the value at column {end + 1}; "
                        f"one JSON object a line)")
        if not isinstance(value, dict):
            raise error(f"{path}:{number}: expected a JSON object, got {kind_name(value)}")
        out.append((number, value))
    return out


def json_array(text: str, path, error: type[Exception] = DataError) -> list[tuple[int, dict]]:
    """(line where it starts, object) for each item of a whole-file JSON array of objects."""
    out = []
    index, line = text.index("[") + 1, text[: text.index("[")].count("\n") + 1
    expect_item = None  # None: an item or `]`; True: an item; False: `,` or `]`
    while True:
        step = len(text) - index - len(text[index:].lstrip())
        line += text.count("\n", index, index + step)
        index += step
        if index >= len(text):
            raise error(f"{path}:{line}: not valid JSON (the array is never closed)")
        char = text[index]
        if char == "]" and expect_item is not True:
            break
        if expect_item is False:
            if char != ",":
                raise error(f"{path}:{line}: not valid JSON (expected ',' or ']' after item {len(out)})")
            index, expect_item = index + 1, True
            continue
        value, end = json_value(text, path, line, error, index)
        if not isinstance(value, dict):
            raise error(f"{path}:{line}: item {len(out)}: expected a JSON object, got {kind_name(value)}")
        out.append((line, value))
        line += text.count("\n", index, end)
        index, expect_item = end, False
    if text[index + 1:].strip():
        raise error(f"{path}:{line + text.count(chr(10), index, len(text) - len(text.lstrip()))}: not valid JSON "
                    "(more after the array)")
    return out


# ---------------------------------------------------------------------------------------------------- fields
KIND_NAMES = {dict: "an object", list: "a list", str: "text", int: "an integer", bool: "a boolean",
              float: "a number", type(None): "null"}


def kind_name(value) -> str:
    return KIND_NAMES.get(type(value), type(value).__name__)


def short(value, width: int = 40) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = "(deeply nested)"
    return text if len(text) <= width else text[: width - 3] + "..."


def present(path, line: int, record: dict, name: str, error: type[Exception] = DataError):
    """`record[name]`; a missing field is an `error` naming file, line and field."""
    if name not in record:
        raise error(f"{where(path, line, name)} is missing (fields here: {', '.join(map(str, record))})")
    return record[name]


def cell(path, line: int, record: dict, name: str, *, empty_ok: bool = True, what: str = "text",
         error: type[Exception] = DataError) -> str:
    """The value of field `name` as text. `what` says what it holds: "text" (a string only: a list or a number where
    text belongs is an error, never stringified), or anything else ("a label", "an id", "a choice": text or an
    integer, given back as a string). A missing field, another type, or (unless `empty_ok`) an empty value is an
    `error` naming file, line and field."""
    value = present(path, line, record, name, error)
    scalar = what != "text" and isinstance(value, int) and not isinstance(value, bool)
    if not isinstance(value, str) and not scalar:
        raise error(f"{where(path, line, name)}: expected {what if what == 'text' else what + ' (text or an integer)'}"
                    f", got {kind_name(value)} {short(value)}")
    value = str(value)
    if not empty_ok and not value.strip():
        raise error(f"{where(path, line, name)}: expected non-empty text" if what == "text" else
                    f"{where(path, line, name)}: expected {what}, got an empty value")
    return value
