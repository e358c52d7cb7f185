"""Malformed recipes and flags for every training command (clue run, finetune, pretrain, textgen train): each is a
ConfigError (a ValueError) naming the file and line and the field, or the flag, and nothing is left behind; odd
but legal recipes resolve to the values they say.

The cases are generated from the config dataclasses themselves (each field's type and `option(...)` bounds), plus
a fixed list the project requires whatever the metadata says, plus broken files (folder, missing, not UTF-8,
nesting, duplicate keys, ...)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
from mengzi.clue.run import ClueRunConfig

from mengzi.cli import build_parser, main
from mengzi.config import ConfigError, load_yaml, resolve
from mengzi.finetune.userdata import UserFinetuneConfig
from mengzi.pretrain.config import PretrainConfig
from mengzi.textgen.config import TextGenConfig

# command -> (argv before the flags, config class, positional fields)
COMMANDS = {
    "clue run": (["clue", "run", "afqmc"], ClueRunConfig, ("task",)),
    "finetune": (["finetune"], UserFinetuneConfig, ()),
    "pretrain": (["pretrain"], PretrainConfig, ()),
    "textgen train": (["textgen", "train"], TextGenConfig, ()),
}
PARSER = build_parser()


def resolve_command(command: str, flags: list[str]):
    argv, cls, positional = COMMANDS[command]
    args = PARSER.parse_args([*argv, *flags])
    return resolve(cls, args, **{k: getattr(args, f"_pos_{k}") or None for k in positional})


# ----------------------------------------------------------------------------------------------- the generator


def leaves(cls: type, prefix: str = ""):
    """(dotted path, annotated type, metadata) of every field that holds a value, nested configs walked."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from leaves(tp, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", tp, f.metadata


def bad_values(tp, meta) -> list[tuple[str, str | None, str]]:
    """(YAML text of a bad value, the same as a flag or None, the problem the message must name) for a field."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        out = [("7", None, "expected a list")]
        if item in (int, float):  # a list flag takes its items as they are: `--seeds 1 -1`
            out += [(f"[{text}]", flag, problem) for text, flag, problem in bad_values(item, meta)]
        return out
    if origin is typing.Literal:  # argparse refuses a bad choice itself
        return [("nonsense", None, "is not one of"), ("[a]", None, "is not one of")]
    if tp is dict:
        return [(text, text, problem) for text, problem in (
            ("[1, 2]", "expected a mapping"), ("{a: {b: .nan}}", "not a finite number"),
            ("{a: [1, .inf]}", "not a finite number"), ('{a: "x\\0y"}', "NUL character"),
            ('{a: ["x\\ud800"]}', "lone UTF-16 surrogate"))] + [
            ("7", None, "expected a mapping")]
    if tp is bool:
        return [("maybe", None, "expected true/false"), ("[true]", None, "expected true/false")]
    if tp is str:
        return [("[a, b]", None, "expected str"), ("{a: 1}", None, "expected str"), ('"a\\0b"', None, "NUL character"),
                ('"a\\udc00b"', None, "lone UTF-16 surrogate")]
    name = tp.__name__
    out = [("[1]", None, f"expected {name}"), ("{a: 1}", None, f"expected {name}"), ("many", "many", f"expected {name}")]
    if tp is float:
        out += [(".nan", "nan", "not a finite number"), (".inf", "inf", "not a finite number"),
                ("-.inf", "-inf", "not a finite number"), ("1.0e+999", "1e999", "not a finite number")]
    else:
        out += [("1.5", "1.5", "expected int"), ('"0x10"', "0x10", "expected int")]
    for key, step in (("min", -1), ("above", 0), ("max", 1), ("below", 0)):
        if key in meta:
            value = tp(meta[key] + step)
            out.append((repr(value), repr(value), "must be"))
    if tp is float and "min" in meta:
        out.append((repr(meta["min"] - 0.5), repr(meta["min"] - 0.5), "must be at least"))
    return out


def as_yaml(path: str, value: str) -> tuple[str, int]:
    """A recipe setting `path` to `value` after a comment line, and the line the key is on."""
    *parents, leaf = path.split(".")
    lines = ["# a recipe with one bad value"]
    for depth, parent in enumerate(parents):
        lines.append("  " * depth + f"{parent}:")
    lines.append("  " * len(parents) + f"{leaf}: {value}")
    return "\n".join(lines) + "\n", len(lines)


def generated_cases():
    for command, (_, cls, _) in COMMANDS.items():
        for path, tp, meta in leaves(cls):
            for text, flag, problem in bad_values(tp, meta):
                yield pytest.param(command, path, text, problem, "yaml", id=f"{command}-{path}-yaml-{text}")
                if flag is not None:
                    yield pytest.param(command, path, flag, problem, "flag", id=f"{command}-{path}-flag-{flag}")


CASES = list(generated_cases())

# What the project refuses whatever the field metadata says (a removed bound makes these fail).
REQUIRED = [
    (command, path, value) for command in COMMANDS for path, value in (
        ("train.batch_size", "-8"), ("train.micro_batch_size", "0"), ("train.lr", ".nan"), ("train.lr", ".inf"),
        ("train.lr", "-1.0"), ("train.weight_decay", "-0.1"), ("train.clip_norm", "-1.0"))
] + [(c, "train.epochs", v) for c in ("clue run", "finetune", "textgen train") for v in ("-1.0", ".nan")] + [
    (c, "train.warmup_ratio", v) for c in ("clue run", "finetune", "textgen train") for v in ("-0.5", "1.5")] + [
    (c, f"train.{f}", "-1") for c in ("clue run", "finetune") for f in (
        "max_seq_len", "doc_stride", "max_answer_len", "eval_every", "eval_batch_size", "max_train_examples",
        "max_eval_examples", "log_every", "seed", "threads")] + [
    ("pretrain", f"train.{f}", "-1") for f in ("max_steps", "warmup_steps", "eval_every", "save_every",
                                               "log_every", "seed", "keep_last")] + [
    ("pretrain", "packing.max_seq_len", "-1"), ("pretrain", "packing.short_seq_prob", "1.5"),
    ("pretrain", "corpus.eval_fraction", "-0.5"), ("pretrain", "corpus.eval_fraction", "2.0"),
    ("pretrain", "train.betas", "[0.9, 1.5]"), ("pretrain", "train.betas", "[0.9]"), ("pretrain", "train.eps", "0.0"),
    ("pretrain", "objectives", "{mlm: {mask_prob: .nan}}"),
    ("clue run", "techniques", "{fgm: {epsilon: .inf}}"), ("clue run", "seeds", "[1, -1]"),
    ("clue run", "files", "{trian: x.json}"), ("clue run", "files", "{train: 5}"), ("clue run", "files", "{dev: ''}"),
] + [("textgen train", f"train.{f}", "-1") for f in (
    "max_steps", "max_source_len", "max_target_len", "block_size", "eval_every", "save_every", "keep_last",
    "log_every", "max_train_examples", "max_eval_examples")] + [
    ("textgen train", "dataset.eval_fraction", "-0.5"), ("textgen train", "dataset.eval_fraction", "1.5"),
    ("textgen train", "generation.num_beams", "0"), ("textgen train", "generation.top_p", "0.0"),
    ("textgen train", "generation.temperature", "0.0"), ("textgen train", "generation.max_new_tokens", "0"),
]


def check_yaml_error(tmp_path, command, path, value, problem=""):
    text, line = as_yaml(path, value)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        resolve_command(command, ["--config", str(recipe)])
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert f"{recipe}:{line}: field '{path}" in message, message
    assert problem in message, message


@pytest.mark.parametrize("command,path,value,problem,form", CASES)
def test_generated_bad_value_is_refused_where_it_was_set(tmp_path, command, path, value, problem, form):
    if form == "yaml":
        check_yaml_error(tmp_path, command, path, value, problem)
        return
    flag = "--" + path.replace("_", "-")
    with pytest.raises(ConfigError) as err:
        resolve_command(command, [f"{flag}={value}"])
    message = str(err.value)
    assert message.startswith(f"argument {flag}") and problem in message, message


@pytest.mark.parametrize("command,path,value", REQUIRED, ids=[f"{c}-{p}-{v}" for c, p, v in REQUIRED])
def test_required_refusals(tmp_path, command, path, value):
    check_yaml_error(tmp_path, command, path, value)


def test_the_generator_covers_every_command_and_the_issue_examples():
    assert len(CASES) + len(REQUIRED) >= 150
    for command in COMMANDS:
        fields = {c.values[1] for c in CASES if c.values[0] == command}
        assert {"train.batch_size", "train.micro_batch_size", "train.lr"} <= fields, command
    examples = {(c.values[1], c.values[2]) for c in CASES}
    assert {("train.batch_size", "0"), ("train.lr", ".nan"), ("dataset.eval_fraction", "-0.5")} <= examples


# ------------------------------------------------------------------------------------------------ broken files


BROKEN_FILES = {  # name -> (file bytes or None for a folder, what the message must hold besides the file name)
    "folder": (None, "is a folder"),
    "not-utf8": (b"train:\n  epochs: 1\n  lr: \xff\xfe\n", ":3: not UTF-8"),
    "gbk": ("model: 模型\n".encode("gbk"), ":1: not UTF-8"),
    "deep-flow": (b"train: " + b"[" * 100_000, ":1: nested more than"),
    "deep-block": ("".join("  " * i + f"k{i}:\n" for i in range(60)).encode() + b"  " * 60 + b"v: 1\n",
                   "nested more than"),
    "top-list": (b"- train\n- dev\n", ":1: the top level must be a mapping"),
    "top-scalar": (b"just a string\n", ":1: the top level must be a mapping"),
    "duplicate-top": (b"overwrite: true\nresume: false\noverwrite: false\n", ":3: duplicate key 'overwrite' "
                                                                             "(first at line 1)"),
    "duplicate-nested": (b"train:\n  lr: 0.1\n  lr: 0.2\n", ":3: duplicate key 'train.lr' (first at line 2)"),
    "duplicate-section": (b"train:\n  lr: 0.1\ntrain:\n  seed: 2\n", ":3: duplicate key 'train'"),
    "bad-syntax": (b'train:\n  lr: "0.1\n', "invalid YAML"),
    "tab-indent": (b"train:\n\tlr: 0.1\n", "invalid YAML"),
    "python-tag": (b"train: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
    "two-documents": (b"train: {}\n---\ntrain: {}\n", "invalid YAML"),
    "unhashable-key": (b"? [a, b]\n: 1\n", "invalid YAML"),
    "alias-bomb": (b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode() for i in range(8)),
        "aliases are expanded"),
    "unknown-top": (b"# typo\ntrian:\n  lr: 0.1\n", ":2: field 'trian': unknown field(s) ['trian']"),
    "unknown-nested": (b"train:\n  lr: 0.1\n  learning_rate: 0.1\n", ":3: field 'train.learning_rate': unknown"),
    "int-key": (b"train:\n  1: 2\n", ":2: field 'train.1': unknown field(s) [1]"),
    "null-key": (b"~: 1\nseed: 2\n", "unknown field(s) [None"),
    "section-not-mapping": (b"train: 5\n", ":1: field 'train': expected a mapping"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", BROKEN_FILES)
def test_broken_recipe_file_is_a_config_error(tmp_path, command, name):
    content, expected = BROKEN_FILES[name]
    recipe = tmp_path / "recipe.yaml"
    if content is None:
        recipe.mkdir()
    else:
        recipe.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        resolve_command(command, ["--config", str(recipe)])
    assert str(recipe) in str(err.value) and expected in str(err.value), str(err.value)


def test_missing_recipe_and_load_yaml_of_a_folder(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_yaml(TextGenConfig, tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        load_yaml(TextGenConfig, tmp_path)


def test_rules_spanning_fields_see_the_flags_and_name_where_the_value_came_from(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  max_steps: 0\n  epochs: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"r.yaml:3: field 'train.epochs': must be above 0 when max_steps is 0"):
        resolve_command("textgen train", ["--config", str(recipe)])
    assert resolve_command("textgen train", ["--config", str(recipe), "--train.epochs", "2"]).train.epochs == 2.0
    recipe.write_text("train:\n  betas: [0.9, 0.99, 0.999]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"r.yaml:2: field 'train.betas': expected two numbers"):
        resolve_command("pretrain", ["--config", str(recipe)])
    with pytest.raises(ConfigError, match=r"argument --train.betas: expected two numbers"):
        resolve_command("pretrain", ["--train.betas", "0.9"])
    with pytest.raises(ConfigError, match=r"argument TASK: unknown CLUE task 'afqmcc'"):
        resolve(ClueRunConfig, PARSER.parse_args(["clue", "run", "afqmcc"]), task="afqmcc")
    with pytest.raises(ConfigError, match=r"argument --files: field 'files.test1.0.json': not a split of afqmc"):
        resolve_command("clue run", ["--files", "{test1.0.json: x.json}"])


# ------------------------------------------------------------------------------------------ odd but legal files


LEGAL = {  # name -> (recipe bytes, command, {dotted field: value it must resolve to})
    "bom": ("\ufefftrain:\n  lr: 0.5\n".encode(), "clue run", {"train.lr": 0.5}),
    "crlf": (b"train:\r\n  lr: 0.25\r\n  seed: 3\r\n", "finetune", {"train.lr": 0.25, "train.seed": 3}),
    "empty": (b"", "pretrain", {"train.max_steps": 1000}),
    "comments-only": (b"# nothing set\n\n# still nothing\n", "textgen train", {"train.max_steps": 300}),
    "exponent-as-string": (b"train:\n  lr: 1e-4\n", "pretrain", {"train.lr": 1e-4}),
    "int-for-float": (b"train:\n  epochs: 2\n", "clue run", {"train.epochs": 2.0}),
    "quoted-int": (b'train:\n  batch_size: "16"\n', "finetune", {"train.batch_size": 16}),
    "yes-for-bool": (b"overwrite: yes\n", "clue run", {"overwrite": True}),
    "boundaries": (b"dataset:\n  eval_fraction: 1\ntrain:\n  warmup_ratio: 0\n  lr: 0\n", "textgen train",
                   {"dataset.eval_fraction": 1.0, "train.warmup_ratio": 0.0, "train.lr": 0.0}),
    "zero-means-off": (b"train:\n  max_steps: 0\n  epochs: 0.5\n  save_every: 0\n", "textgen train",
                       {"train.max_steps": 0, "train.epochs": 0.5, "train.save_every": 0}),
    "small-alias": (b"train:\n  lr: &peak 0.125\ntechniques: {fgm: {epsilon: *peak}}\n", "clue run",
                    {"train.lr": 0.125, "techniques": {"fgm": {"epsilon": 0.125}}}),
    "unicode-and-u2028": ('data: "数据/语料\u2028库"\ntrain:\n  seed: 5\n'.encode(), "finetune",
                          {"data": "数据/语料\u2028库", "train.seed": 5}),
    "deep-but-allowed": (b"overrides: " + b"{a: " * 20 + b"1" + b"}" * 20 + b"\n", "textgen train",
                         {"overrides": eval("{'a': " * 20 + "1" + "}" * 20)}),
    "files-test-key": (b"files:\n  test.json: a.json\n  validation: b.json\n", "clue run",
                       {"files": {"test.json": "a.json", "validation": "b.json"}}),
}


@pytest.mark.parametrize("name", LEGAL)
def test_odd_but_legal_recipe_resolves_to_what_it_says(tmp_path, name):
    content, command, expected = LEGAL[name]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(content)
    cfg = resolve_command(command, ["--config", str(recipe)])
    for path, value in expected.items():
        got = cfg
        for part in path.split("."):
            got = getattr(got, part)
        assert got == value and type(got) is type(value), (path, got)


def test_legal_flag_values(tmp_path):
    cfg = resolve_command("clue run", ["--train.lr", "1e-3", "--train.epochs", "0.5", "--seeds", "1", "2",
                                       "--techniques", "{ema: {decay: 0.99}}", "--train.batch-size", " 8"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.seeds, cfg.train.batch_size) == (1e-3, 0.5, [1, 2], 8)
    assert cfg.techniques == {"ema": {"decay": 0.99}}


# -------------------------------------------------------------------------------------- through the command line


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flags", [["--train.batch-size=-8"], ["--train.lr", "nan"], ["--train.micro-batch-size", "0"],
                                   ["--config", "RECIPE"]], ids=["batch", "nan", "micro", "recipe"])
def test_cli_refuses_before_any_run_folder_exists(tmp_path, capsys, command, flags):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  lr: 0.1\n  lr: 0.2\n", encoding="utf-8")
    out = tmp_path / "run"
    argv = [*COMMANDS[command][0], *[str(recipe) if f == "RECIPE" else f for f in flags], "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err and ("argument --train" in err or f"{recipe}:3" in err), err
    assert not out.exists()


def test_a_bad_technique_option_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    fixtures = Path(__file__).parent / "fixtures" / "clue"
    assert main(["clue", "run", "cmnli", "--data-dir", str(fixtures), "--model", "none", "--out", str(out),
                 "--techniques", "{ema: {decay: 2.0}}"]) == 2
    assert "techniques.ema: decay must be in (0, 1)" in capsys.readouterr().err
    assert not out.exists()


def test_option_bounds_live_in_field_metadata():
    """The bounds are data on each field (one generic check), not code in each command."""
    meta = {f.name: f.metadata for f in dataclasses.fields(typing.get_type_hints(ClueRunConfig)["train"])}
    assert meta["batch_size"]["min"] == 1 and meta["warmup_ratio"]["max"] == 1 and meta["lr"]["finite"]
