"""The recipes that ship with mengzi, found by name: `--recipe afqmc`, `mengzi recipes list|show|copy`.

Recipes are commented YAML under `recipes/<section>/<name>.yaml` in the repository, installed as the data package
`mengzi.recipes`. A `--recipe` value is, in order: a YAML file that exists; a packaged recipe named in the command's
own section (`mengzi clue run afqmc --recipe afqmc` reads `clue/afqmc.yaml`); a packaged `SECTION/NAME`
(`--recipe clue/afqmc`, also written `recipes/clue/afqmc.yaml` as in a clone). Anything else is a config error
that lists the names the section has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import atomic
from .config import ConfigError, option

# the command (as typed after `mengzi`) -> the recipe section it reads first
SECTIONS = {
    "pretrain": "pretrain", "tokenizer train": "tokenizer", "clue run": "clue", "clue text2text": "clue-text2text",
    "clue prompt": "clue-prompts", "textgen train": "textgen", "oscar train": "oscar", "oscar caption": "oscar",
    "video train": "video", "haic bench": "haic",
}


def root() -> Path:
    """The folder holding the recipes: mengzi/recipes/ in an installed wheel, the repository's recipes/ in a clone
    or an editable install."""
    here = Path(__file__).resolve().parent
    installed = here / "recipes"
    return installed if installed.is_dir() else here.parent / "recipes"


def names(section: str = "") -> list[str]:
    """`SECTION/NAME` of every packaged recipe (of one section if given), sorted."""
    base = root()
    found = sorted(p.relative_to(base).with_suffix("").as_posix() for p in base.glob("*/*.yaml"))
    return [n for n in found if not section or n.split("/", 1)[0] == section]


def find(spec: str, section: str = "") -> Path:
    """The YAML file `spec` names (see the module docstring)."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"--recipe {spec}: is a folder, not a YAML file")
    name = spec.removesuffix(".yaml").removesuffix(".yml")
    name = name.removeprefix("./").removeprefix("recipes/")
    candidates = ([f"{section}/{name}"] if section and "/" not in name else []) + [name]
    known = set(names())
    for candidate in candidates:
        if candidate in known:
            return root() / f"{candidate}.yaml"
    listed = names(section) or names()
    where = f"{section} recipes" if section and names(section) else "recipes"
    raise ConfigError(f"--recipe {spec}: no such file, and no packaged recipe of that name; packaged {where}: "
                      f"{', '.join(n.split('/', 1)[1] if section and n.startswith(section + '/') else n for n in listed)}"
                      " (`mengzi recipes list` shows them all)")


# ------------------------------------------------------------------------------------------------- the command
@dataclass
class RecipesConfig:
    action: Literal["list", "show", "copy"] = option("list", "list the packaged recipes, show one, or copy one to "
                                                     "a file to edit")
    name: str = option("", "show/copy: the recipe, SECTION/NAME (e.g. clue/afqmc-tiny) or a NAME unique to a section")
    out: str = option("", "copy: the file to write (default: NAME.yaml in the current folder)")
    section: str = option("", "list: only this section (clue, pretrain, textgen, ...)")
    overwrite: bool = option(False, "copy: replace an existing file")


def _unique(name: str) -> Path:
    matches = [n for n in names() if n == name.removesuffix(".yaml") or n.split("/", 1)[1] == name.removesuffix(
        ".yaml")]
    if len(matches) > 1:
        raise ConfigError(f"recipe {name!r} is in several sections ({', '.join(matches)}); write SECTION/NAME")
    return find(matches[0] if matches else name)


def recipes(cfg: RecipesConfig):
    if cfg.action == "list":
        rows = names(cfg.section)
        if not rows:
            raise ConfigError(f"no packaged recipes in section {cfg.section!r}; sections: "
                              f"{', '.join(sorted({n.split('/', 1)[0] for n in names()}))}")
        for n in rows:
            print(n)
        print(f"# {len(rows)} recipes in {root()}; `mengzi recipes show NAME`, `mengzi recipes copy NAME`; "
              "use one with --recipe NAME", flush=True)
        return rows
    if not cfg.name:
        raise ConfigError(f"mengzi recipes {cfg.action} NAME (see `mengzi recipes list`)")
    path = _unique(cfg.name)
    text = path.read_text(encoding="utf-8")
    if cfg.action == "show":
        print(text, end="")
        return path
    out = Path(cfg.out or f"{path.stem}.yaml")
    if out.exists() and not cfg.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite or choose --out")
    atomic.write_text(out, text)
    print(f"{path.parent.name}/{path.name} -> {os.fspath(out)}; edit it, then --recipe {os.fspath(out)}")
    return out
