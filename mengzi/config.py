"""Configs are dataclasses with help text; YAML is their serialisation; CLI flags override fields.

    @dataclass
    class TrainConfig:
        lr: float = option(5e-5, "peak learning rate")

`add_arguments(parser, TrainConfig)` adds `--lr` (nested dataclass fields become `--section.field`);
`resolve(TrainConfig, args)` starts from the defaults, applies `--config FILE.yaml`, then the flags the user typed.
YAML errors name the file, the line and the field.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from . import atomic

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or flag has a bad field; the message names the file, line and field."""


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with help text (shown by `--help` and written as a YAML comment)."""
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


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


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert a YAML or flag value to the annotated type; errors say where."""
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{where}: null is not allowed here (expected {getattr(tp, '__name__', tp)})")
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        first = dataclasses.fields(tp)[0]
        if isinstance(value, str) and _hints(tp)[first.name] is str:  # `--corpus.sources a.txt`: the first field
            value = {first.name: value}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if isinstance(value, str):  # a flag: `--objectives '{mlm: {}, sop: {}}'`
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise ConfigError(f"{where}: not a YAML mapping: {e}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float, str):
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
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build `cls` from a mapping, refusing unknown fields."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; {cls.__name__} has {sorted(names)}")
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()})


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def load_yaml(cls: type[T], path: str | Path, base: T | None = None) -> T:
    """Read a YAML file into `cls` (on top of `base` if given). Errors name file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e})") from e
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of {cls.__name__} fields")
    lines = _key_lines(node)
    merged = to_dict(base) if base is not None else {}
    try:
        return from_dict(cls, _deep_merge(merged, data), where=str(path))
    except ConfigError as e:
        raise ConfigError(_with_line(str(e), str(path), lines)) from None


def _key_lines(node: Any, prefix: str = "") -> dict[str, int]:
    """Map dotted YAML keys to their 1-based line numbers."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[name] = key.start_mark.line + 1
            out.update(_key_lines(value, name))
    return out


def _with_line(message: str, path: str, lines: dict[str, int]) -> str:
    field_path = message.split(":", 1)[0][len(path) + 1 :] if message.startswith(path + ".") else ""
    key = field_path.split("[", 1)[0]
    if key in lines:
        return f"{path}:{lines[key]}: field {key!r}: {message.split(': ', 1)[1]}"
    return message


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
    """Defaults, then `--config` YAML, then explicit flags, then `fixed` (positional arguments)."""
    cfg = cls()
    if getattr(args, "config", None):
        cfg = load_yaml(cls, args.config)
    overrides: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key in ("config", "command", "func") or key.startswith("_"):
            continue
        node = overrides
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    overrides.update({k: v for k, v in fixed.items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in overrides.items() if k in names}
    return from_dict(cls, _deep_merge(to_dict(cfg), overrides), where="command line")
