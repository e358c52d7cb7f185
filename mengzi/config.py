"""Configs are dataclasses with help text; YAML is their serialisation; CLI flags override fields.

    @dataclass
    class TrainConfig:
        lr: float = option(5e-5, "peak learning rate")

`add_arguments(parser, TrainConfig)` adds `--lr` (nested dataclass fields become `--section.field`);
`resolve(TrainConfig, args)` starts from the defaults, applies `--config FILE.yaml`, then the flags the user typed.
Every value is checked where it is read: its type, the bounds its `option(...)` gives (`min`, `max`, `above`,
`below`), finiteness for floats (NaN and infinities are refused unless `finite=False`), and a dataclass's own
`check_fields()` for rules that span fields. Errors name the file, the line and the field, or the flag; a recipe
that is missing, a folder, not UTF-8, nested too deeply, not a mapping or has a key twice is a ConfigError too.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import operator
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import atomic

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag has a bad field; the message names the file, line and field (or the flag)."""


class FieldError(ConfigError):
    """One field's bad value; `field` is its dotted path from the config's root (`train.batch_size`, `betas[1]`).
    A config dataclass may define `check_fields(self)` raising it for rules that span fields; `from_dict`,
    `load_yaml` and `resolve` call it and turn the path into the file and line, or the flag, that set the value."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field, self.problem = field, problem


BOUNDS = (("min", operator.ge, "at least"), ("max", operator.le, "at most"), ("above", operator.gt, "above"),
          ("below", operator.lt, "below"))
MAX_DEPTH = 32  # YAML nesting at most (recipes use 3); deeper is refused before PyYAML's recursive composer runs
MAX_NODES = 100_000  # YAML nodes after expanding aliases (a "billion laughs" file is refused, not walked)
NOT_TEXT = re.compile("[\0\ud800-\udfff]")  # NUL and lone UTF-16 surrogates (a "\\ud800" escape): in no path or text


def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,
           above: float | None = None, below: float | None = None, finite: bool = True, **kwargs: Any) -> Any:
    """A dataclass field with help text (shown by `--help` and written as a YAML comment). Numbers (and each item of
    a list of numbers) must lie in `min`..`max` (inclusive) and `above`..`below` (exclusive) where given; float
    fields refuse NaN and infinities unless `finite=False`."""
    limits = {"min": min, "max": max, "above": above, "below": below}
    metadata = {"help": help, "finite": finite, **{k: v for k, v in limits.items() if v is not None}}
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _copy(value: Any) -> Any:
    """A fresh default for every instance, nested lists and dicts included (a shallow copy would let one config's
    edit of `model.lm_overrides` change every later default)."""
    return copy.deepcopy(value)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else Any), True
    return tp, False


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_number(value: Any, meta: Any, path: str) -> None:
    """`value` inside the field's bounds, and finite unless the field says otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value) and meta.get("finite", True):
        raise FieldError(path, f"{value} is not a finite number")
    for key, within, words in BOUNDS:
        if key in meta and not within(value, meta[key]):
            raise FieldError(path, f"must be {words} {meta[key]}, got {value}")


def _check_free_form(value: Any, path: str, depth: int = 0) -> None:
    """A dict/Any field's contents (objective or technique options, model overrides): finite numbers, no NUL."""
    if depth > MAX_DEPTH:
        raise FieldError(path, f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise FieldError(path, f"{value} is not a finite number")
    if isinstance(value, str) and NOT_TEXT.search(value):
        raise FieldError(path, "contains a NUL character or a lone UTF-16 surrogate")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        _check_free_form(child, f"{path}[{key}]" if isinstance(value, list) else _join(path, key), depth + 1)


def _coerce(value: Any, tp: Any, path: str, meta: Any = types.MappingProxyType({}), check: bool = True) -> Any:
    """Check/convert a YAML or flag value to the annotated type; a FieldError names the field's path."""
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise FieldError(path, f"null is not allowed here (expected {getattr(tp, '__name__', tp)})")
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        first = dataclasses.fields(tp)[0]
        if isinstance(value, str) and _hints(tp)[first.name] is str:  # `--corpus.sources a.txt`: the first field
            value = {first.name: value}
        if not isinstance(value, dict):
            raise FieldError(path, f"expected a mapping of {tp.__name__} fields, got {value!r}")
        return _build(tp, value, path, check)
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise FieldError(path, f"expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{path}[{i}]", meta, check) for i, v in enumerate(value)]
    if origin is dict or tp is dict or tp is Any:
        if isinstance(value, str) and tp is not Any:  # a flag: `--objectives '{mlm: {}, sop: {}}'`
            try:
                value = parse_yaml(value, "the value")[0]
            except ConfigError as e:
                raise FieldError(path, f"not a YAML mapping: {e}") from None
        if tp is not Any and not isinstance(value, dict):
            raise FieldError(path, f"expected a mapping, got {value!r}")
        _check_free_form(value, path)
        return dict(value) if isinstance(value, dict) else value
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise FieldError(path, f"{value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise FieldError(path, f"expected true/false, got {value!r}")
    if tp in (int, float, str):
        value = _scalar(value, tp, path)
        if isinstance(value, str) and NOT_TEXT.search(value):
            raise FieldError(path, "contains a NUL character or a lone UTF-16 surrogate")
        _check_number(value, meta, path)
    return value


def _scalar(value: Any, tp: type, path: str) -> Any:
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if isinstance(value, str) and tp is not str:
        try:
            return tp(value)
        except ValueError:
            pass
    raise FieldError(path, f"expected {tp.__name__}, got {value!r}")


def _build(cls: type[T], data: dict[Any, Any], path: str = "", check: bool = True) -> T:
    """`cls` from a mapping (unknown fields refused), then its `check_fields` hook when `check`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in data if k not in fields), key=str)
    if unknown:
        raise FieldError(_join(path, unknown[0]), f"unknown field(s) {unknown}; {cls.__name__} has {sorted(fields)}")
    hints = _hints(cls)
    cfg = cls(**{k: _coerce(v, hints[k], _join(path, k), fields[k].metadata, check) for k, v in data.items()})
    hook = getattr(cfg, "check_fields", None)
    if check and callable(hook):
        try:
            hook()
        except FieldError as e:
            raise FieldError(_join(path, e.field), e.problem) from None
    return cfg


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build `cls` from a mapping, refusing unknown fields and values outside their bounds."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {data!r}")
    try:
        return _build(cls, data)
    except FieldError as e:
        raise ConfigError(f"{where}.{e.field}: {e.problem}" if e.field else f"{where}: {e.problem}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


# ------------------------------------------------------------------------------------------------------ YAML


def read_text(path: str | Path) -> str:
    """A config file's text; a missing file, a folder or bytes that are not UTF-8 are ConfigErrors."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {data[e.start:e.start + 1]!r})") from None


def parse_yaml(text: str, name: str) -> tuple[Any, dict[str, int]]:
    """(data, line of each dotted key). Nesting deeper than MAX_DEPTH, duplicate keys and alias bombs are refused
    with `name:line`; the depth is checked on PyYAML's event stream, which does not recurse."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(f"{name}:{event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[str, int] = {}
        _walk(node, "", lines, name, [0])
        data = yaml.SafeLoader("").construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{name}: invalid YAML: {e}") from None
    return data, lines


def _walk(node: Any, prefix: str, lines: dict[str, int], name: str, seen: list[int]) -> None:
    """Record dotted key lines; refuse a key given twice in one mapping, and more than MAX_NODES nodes."""
    seen[0] += 1
    if seen[0] > MAX_NODES:
        raise ConfigError(f"{name}: more than {MAX_NODES:,} values once aliases are expanded")
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _walk(child, prefix, lines, name, seen)
    if not isinstance(node, yaml.MappingNode):
        return
    first: dict[str, int] = {}
    for key, value in node.value:
        line = key.start_mark.line + 1
        if isinstance(key, yaml.ScalarNode) and key.value != "<<":
            if key.value in first:
                raise ConfigError(f"{name}:{line}: duplicate key {_join(prefix, key.value)!r} (first at line "
                                  f"{first[key.value]})")
            first[key.value] = line
            lines[_join(prefix, key.value)] = line
        _walk(value, _join(prefix, getattr(key, "value", "?")), lines, name, seen)


def read_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML file whose top level is a mapping (empty file: {}), and the line of each dotted key."""
    data, lines = parse_yaml(read_text(path), str(path))
    if data is None:
        return {}, lines
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the top level must be a mapping of fields, got a {type(data).__name__}")
    return data, lines


def load_yaml(cls: type[T], path: str | Path, base: T | None = None) -> T:
    """Read a YAML file into `cls` (on top of `base` if given). Errors name file, line and field."""
    data, lines = read_yaml(path)
    merged = to_dict(base) if base is not None else {}
    try:
        return _build(cls, _deep_merge(merged, data))
    except FieldError as e:
        raise ConfigError(_in_file(e, str(path), lines)) from None


def _in_file(e: FieldError, path: str, lines: dict[str, int]) -> str:
    """`file:line: field 'a.b': problem`, the line of the deepest key of the field's path that the file has."""
    key = e.field.split("[", 1)[0]
    while key and key not in lines:
        key = key.rpartition(".")[0]
    where = f"{path}:{lines[key]}" if key else path
    return f"{where}: field {e.field!r}: {e.problem}" if e.field else f"{where}: {e.problem}"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def dump_yaml(cfg: Any, header: str = "") -> str:
    """YAML text of a config, each field preceded by its help text as a comment."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    _dump_fields(cfg, lines, indent="")
    return "\n".join(lines) + "\n"


def _dump_fields(cfg: Any, lines: list[str], indent: str) -> None:
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("help"):
            lines.append(f"{indent}# {f.metadata['help']}")
        if dataclasses.is_dataclass(value):
            lines.append(f"{indent}{f.name}:")
            _dump_fields(value, lines, indent + "  ")
        else:
            value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value] if isinstance(
                value, list) else value
            dumped = yaml.safe_dump({f.name: value}, allow_unicode=True, default_flow_style=True, width=10_000)
            lines.append(indent + dumped.strip().removeprefix("{").removesuffix("}"))


def save_yaml(cfg: Any, path: str | Path, header: str = "") -> Path:
    return atomic.write_text(path, dump_yaml(cfg, header))


# ----------------------------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """One `--flag` per field (`--section.field` for nested dataclasses); unset flags stay out of the namespace."""
    if not prefix:
        parser.add_argument("--config", "--recipe", dest="config", metavar="YAML", default=argparse.SUPPRESS,
                            help="read fields from this YAML file (a recipe) first; flags override it")
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        name = f"{prefix}{f.name}"
        tp, _ = _unwrap_optional(hints[f.name])
        if dataclasses.is_dataclass(tp):
            add_arguments(parser, tp, prefix=f"{name}.")
            continue
        flag = "--" + name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = f"{f.metadata.get('help', '')} (default: {default!r})"
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) is list:
            # extend: `--text A --text B` and `--text A B` both give [A, B] (a plain store would keep only B)
            parser.add_argument(flag, nargs="+", action="extend", metavar=f.name.upper(), **kwargs)
        elif typing.get_origin(tp) is typing.Literal:
            parser.add_argument(flag, choices=list(typing.get_args(tp)), **kwargs)
        else:
            parser.add_argument(flag, metavar=f.name.upper(), **kwargs)


def resolve(cls: type[T], args: argparse.Namespace, **fixed: Any) -> T:
    """Defaults, then `--config` YAML, then explicit flags, then `fixed` (positional arguments). A bad value is
    reported where it was set: the recipe's file and line, `argument --train.batch-size`, or `argument TASK`."""
    recipe = getattr(args, "config", None)
    data, lines = read_yaml(recipe) if recipe else ({}, {})
    try:
        cfg = _build(cls, data, check=False)  # rules spanning fields wait for the flags
    except FieldError as e:
        raise ConfigError(_in_file(e, str(recipe), lines)) from None
    overrides: dict[str, Any] = {}
    flags = {}  # dotted field -> how the user wrote it
    for key, value in vars(args).items():
        if key in ("config", "command", "subcommand", "func") or key.startswith("_"):
            continue
        node = overrides
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
        flags[key] = "argument --" + key.replace("_", "-")
    given = {k: v for k, v in fixed.items() if v is not None}
    overrides.update(given)
    flags.update({k: f"argument {k.upper()}" for k in given})
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in overrides.items() if k in names}
    try:
        return _build(cls, _deep_merge(to_dict(cfg), overrides))
    except FieldError as e:
        key = next((k for k in sorted(flags, key=len, reverse=True)
                    if e.field == k or e.field.startswith((k + ".", k + "["))), None)
        if key is not None:
            raise ConfigError(f"{flags[key]}: {e.problem}" if e.field == key else
                              f"{flags[key]}: field {e.field!r}: {e.problem}") from None
        raise ConfigError(_in_file(e, str(recipe), lines) if recipe else f"field {e.field!r}: {e.problem}") from None
