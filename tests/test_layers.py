"""The layer rule of DESIGN.md, checked on the source: a module imports only from its own layer or the layers below
(base < tokenizer < models < training < tasks < multimodal < deployment < face). Imports are read with `ast`, so
lazy imports inside functions count too: a lower layer reaching up, even on one code path, is what this catches."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# installed package -> source folder (pyproject.toml's package-dir)
PACKAGES = {"mengzi": REPO / "mengzi", "mengzi.clue": REPO / "clue", "mengzi.export": REPO / "export"}
LAYERS = [
    ("base", ["mengzi", "mengzi.config", "mengzi.atomic", "mengzi.data", "mengzi.textfiles"]),
    ("tokenizer", ["mengzi.tokenizer"]),
    ("models", ["mengzi.models"]),
    ("training", ["mengzi.pretrain", "mengzi.finetune", "mengzi.textgen"]),
    ("tasks", ["mengzi.clue"]),
    ("multimodal", ["mengzi.multimodal"]),
    ("deployment", ["mengzi.export"]),
    ("face", ["mengzi.cli", "mengzi.__main__"]),
]


def layer_of(module: str) -> int:
    """Index in LAYERS of the longest prefix naming `module` (`mengzi.textgen.x` -> training)."""
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def modules() -> list[tuple[str, Path]]:
    found = []
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            found.append((".".join([package, *parts]), path))
    return found


def imported(module: str, path: Path) -> list[tuple[str, int]]:
    """(absolute module or module.name, line) for every mengzi import in the file, relative ones resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return [(name, line) for name, line in out if name == "mengzi" or name.startswith("mengzi.")]


def test_the_checker_resolves_relative_imports_and_layers():
    assert layer_of("mengzi.textgen.generate") == 3 and layer_of("mengzi.export.session") == 6
    assert layer_of("mengzi.config") == 0 and layer_of("mengzi.cli") == 7
    path = REPO / "mengzi" / "textgen" / "generate.py"
    names = [name for name, _ in imported("mengzi.textgen.generate", path)]
    assert "mengzi.textgen.config.GenerationOptions" in names  # `from .config import GenerationOptions`


@pytest.mark.parametrize("module,path", modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_module_imports_from_a_higher_layer(module, path):
    here = layer_of(module)
    upward = [f"line {line}: {name} ({LAYERS[layer_of(name)][0]})" for name, line in imported(module, path)
              if layer_of(name) > here]
    assert not upward, f"{path.relative_to(REPO)} ({LAYERS[here][0]} layer) imports upward: {upward}"
