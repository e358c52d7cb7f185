"""Every recipe under recipes/ loads into its config, and its data inputs exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from mengzi.cli import TokenizerTrainConfig
from mengzi.config import load_yaml
from mengzi.data import resolve

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CONFIG_OF_FOLDER = {"tokenizer": TokenizerTrainConfig}  # one line per recipe family


def all_recipes() -> list[Path]:
    return sorted(RECIPES.rglob("*.yaml"))


def test_recipes_exist_for_every_family():
    folders = {p.relative_to(RECIPES).parts[0] for p in all_recipes()}
    assert folders == set(CONFIG_OF_FOLDER)


@pytest.mark.parametrize("path", all_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_loads_and_inputs_exist(path, data):
    cfg = load_yaml(CONFIG_OF_FOLDER[path.relative_to(RECIPES).parts[0]], path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and "mengzi " in text.split("\n\n")[0], "a recipe opens with what it does and how"
    for spec in cfg.input:
        assert resolve(spec).exists(), spec
