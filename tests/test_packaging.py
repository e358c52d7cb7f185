"""`mengzi.clue` and `mengzi.export` import after a regular `pip install .` and after an editable install.

Each install goes into its own folder from a copy of the sources, and the check runs in a fresh interpreter
that sees only that install (plus the dependencies), never this checkout or the development install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mengzi", "clue", "export", "recipes")

CHECK = """
import sys
sys.path.append(DEPENDENCIES)  # dependencies only: the venv's .pth files (its mengzi install) stay unread
import mengzi, mengzi.clue, mengzi.export, mengzi.tokenizer
from mengzi.clue import TASKS
import mengzi.clue.tasks, mengzi.clue.submission, mengzi.finetune.metrics, mengzi.finetune.spans
assert "torch" not in sys.modules, "importing mengzi, mengzi.clue (tasks, submission), mengzi.export must not import torch"
import mengzi.finetune.techniques.base, mengzi.clue.run  # every subpackage is installed (these import torch)
print(mengzi.__file__); print(mengzi.clue.__file__); print(mengzi.export.__file__)
"""


def _sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def _pip(*args: str) -> None:
    # --ignore-installed: never uninstall the development install of mengzi from this environment
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--ignore-installed", *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def _check(sys_path_entry: Path, cwd: Path) -> list[str]:
    deps = sysconfig.get_paths()["purelib"]
    code = f"import site; site.addsitedir({str(sys_path_entry)!r}); DEPENDENCIES = {deps!r}\n" + CHECK
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.slow
def test_regular_install(tmp_path):
    src = _sources(tmp_path)
    target = tmp_path / "site"
    _pip("--target", str(target), str(src))
    files = _check(target, cwd=tmp_path)
    assert files == [str(target / "mengzi/__init__.py"), str(target / "mengzi/clue/__init__.py"),
                     str(target / "mengzi/export/__init__.py")]


@pytest.mark.slow
def test_editable_install(tmp_path):
    src = _sources(tmp_path)
    prefix = tmp_path / "prefix"
    _pip("--prefix", str(prefix), "-e", str(src))
    site_dir = next(prefix.glob("lib/python*/site-packages"))
    files = _check(site_dir, cwd=tmp_path)
    # editable: the modules are the source files themselves, clue/ and export/ from the top level
    assert files == [str(src / "mengzi/__init__.py"), str(src / "clue/__init__.py"), str(src / "export/__init__.py")]


def test_console_script_installed():
    assert shutil.which("mengzi", path=str(Path(sys.executable).parent)), "console script `mengzi` missing"
