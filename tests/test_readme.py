"""README's commands are a contract. Every `mengzi ...` line in its bash blocks parses, finds its recipe and
resolves to a valid config exactly as written (what a user copies must not die on a flag or a recipe path). The ones
that run on 2 cores also run, as written, from an installed wheel in tests/test_user_path.py; the rest (base-size
models, hub ids) stop here, before any work starts. Lines with a `...` placeholder are illustrations: only their
command name is checked."""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import REPO

from mengzi.cli import build_parser, prepare

README = (REPO / "README.md").read_text(encoding="utf-8")


def bash_commands() -> list[str]:
    """Each command line of README's ```bash blocks, continuations joined, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.extend(part.strip() for part in line.split("&&"))
    return out


def mengzi_argv(command: str) -> list[str] | None:
    argv = shlex.split(command, comments=True)
    if "mengzi" not in argv:
        return None
    if argv[0] == "mengzi":
        return argv[1:]
    if argv[:2] == ["accelerate", "launch"] and "-m" in argv:  # accelerate launch ... -m mengzi CMD ...
        return argv[argv.index("-m") + 2:]
    return None


COMMANDS = [c for c in bash_commands() if mengzi_argv(c) is not None]


def test_readme_has_commands():
    assert len(COMMANDS) >= 30, COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=[c[:60] for c in COMMANDS])
def test_readme_command_resolves(command, monkeypatch):
    monkeypatch.chdir(REPO)  # README's recipe paths are relative to a clone (and also found by name elsewhere)
    argv = mengzi_argv(command)
    if "..." in argv or any("..." in a for a in argv):
        words = [a for a in argv[:2] if not a.startswith("-") and a != "..."]
        args = build_parser().parse_known_args(words)[0]  # an illustration: the command itself must exist
        assert getattr(args, "_spec", None), command
        return
    func, cfg = prepare(argv)
    assert callable(func) and cfg is not None


def demo_commands() -> list[str]:
    """The `mengzi` lines of the Makefile's demo target, continuations joined, make variables filled in."""
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    body = re.search(r"^demo:.*?\n((?:\t.*\n|#.*\n|\n)*)", makefile, flags=re.M).group(1)
    values = {"BIN": ".venv/bin", "RUN": "runs/demo", "DATA": "../shared/data", "CSL_ABSTRACT": "摘要"}
    text = re.sub(r"\\\n\s*", " ", body)
    text = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), text)
    return [line.strip() for line in text.splitlines() if line.strip().startswith(".venv/bin/mengzi ")]


DEMO = demo_commands()


@pytest.mark.parametrize("command", DEMO, ids=[c[17:77] for c in DEMO])
def test_make_demo_command_parses(command, monkeypatch):
    """`make demo` is README's first command: each of its `mengzi` lines parses and finds its recipe (a renamed flag
    fails here in seconds, not minutes into the demo). Fields that name the demo's own outputs are not checked."""
    monkeypatch.chdir(REPO)
    argv = shlex.split(command)[1:]
    args = build_parser().parse_args(argv)
    assert getattr(args, "_spec", None), command
