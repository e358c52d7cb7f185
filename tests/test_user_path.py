"""The path a user walks: the wheel, installed without extras into a fresh virtualenv, used from a folder outside the
repository, with the README's own commands.

    python -m venv venv && venv/bin/pip install torch==2.13.0 && venv/bin/pip install mengzi-*.whl
    mengzi init ...; mengzi clue run ... --recipe NAME; mengzi clue submit/validate; mengzi finetune (CSV);
    mengzi export --optimize --quantize int8; mengzi predict (--text, --input, --clue); mengzi serve + README's curl

Nothing here may see the checkout or the development environment: the venv has no system site-packages, the
commands run from a temporary folder, and every `mengzi` is the venv's console script. The README's commands run as
written; only the tiny-size flags that README itself shows (`--train.max-train-examples`, `--train.epochs`, ...)
are appended. Installs read constraints.txt, as `make test` does. About 3 minutes on 2 cores, most of it pip.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, need_data

pytestmark = pytest.mark.slow
README = (REPO / "README.md").read_text(encoding="utf-8")
TINY = ["--train.max-train-examples", "300", "--train.max-eval-examples", "200", "--train.epochs", "1",
        "--train.threads", "1"]


def readme_command(prefix: str) -> list[str]:
    """The README command starting with `prefix` (backslash continuations joined, a trailing `# comment` dropped),
    as argv."""
    lines = README.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(prefix):
            text = line.strip()
            while text.endswith("\\"):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            return shlex.split(text, comments=True)
    raise AssertionError(f"README has no command starting with {prefix!r}")


def _run(argv: list[str], cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{shlex.join(argv)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-6000:]}"
    return out


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtualenv with torch (CPU build) and the wheel built from this checkout, no extras."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for pkg in ("mengzi", "clue", "export", "recipes"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)], root,
         dict(os.environ))
    (wheel,) = (root / "dist").glob("mengzi-*.whl")
    with zipfile.ZipFile(wheel) as z:
        shipped = {n for n in z.namelist() if n.startswith("mengzi/recipes/")}
    assert {f"mengzi/recipes/{p.relative_to(REPO / 'recipes').as_posix()}" for p in (REPO / "recipes").glob("*/*.yaml")
            } <= shipped, "recipes missing from the wheel"
    env = venv_env(root / "venv")
    _run([sys.executable, "-m", "venv", str(root / "venv")], root, env)
    vpip = [str(root / "venv/bin/python"), "-m", "pip", "install", "-q", "--no-compile", "-c", str(REPO / "constraints.txt")]
    _run([*vpip, "torch==2.13.0"], root, env)
    _run([*vpip, str(wheel)], root, env)  # no extras: only what pyproject.toml requires
    return root / "venv"


def venv_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", HF_HUB_OFFLINE="1", VIRTUAL_ENV=str(venv))
    return env


@pytest.fixture(scope="module")
def user(venv, tmp_path_factory):
    """(folder outside the repository, environment) with the tiny starting model the tiny recipes name."""
    data = need_data("clue/afqmc/test.json", "clue/tnews/train.json", "vocab/google_zh_vocab.txt")
    home = tmp_path_factory.mktemp("user")
    env = venv_env(venv) | {"DATA": str(data.resolve())}  # make exports DATA relative to the checkout
    old = os.umask(0o022)  # a usual umask: outputs must come out readable by others (0644 / 0755)
    try:
        _run(["mengzi", "init", "mengzi-bert-tiny", "runs/pretrain/mengzi-bert-tiny/model"], home, env)
        yield home, env
    finally:
        os.umask(old)


def test_without_extras_nothing_from_dev(venv):
    out = subprocess.run([str(venv / "bin/python"), "-c", "import importlib.util as u; "
                          "print([m for m in ('pytest', 'ruff') if u.find_spec(m)])"], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out  # the environment really lacks the dev extra


def test_recipes_command_and_clue_run_by_recipe_name(user):
    home, env = user
    listed = _run(["mengzi", "recipes", "list", "--section", "clue"], home, env).stdout.split()
    assert "clue/afqmc-tiny" in listed and "clue/tnews-tiny" in listed
    shown = _run(["mengzi", "recipes", "show", "clue/afqmc-tiny"], home, env).stdout
    assert shown == (REPO / "recipes/clue/afqmc-tiny.yaml").read_text(encoding="utf-8")
    _run(["mengzi", "recipes", "copy", "clue/afqmc-tiny", "--out", "my-afqmc.yaml"], home, env)
    assert (home / "my-afqmc.yaml").read_text(encoding="utf-8") == shown
    # the README's command as written (its recipes/... path works outside a clone too), tiny sizes appended
    _run(readme_command("mengzi clue run tnews --recipe") + TINY, home, env)
    assert json.loads((home / "runs/clue/tnews-tiny/metrics.json").read_text(encoding="utf-8"))["dev"]
    # a recipe by its bare name; AFQMC has a test file, so predictions must be written (the run used to crash on
    # a missing matplotlib before writing them)
    _run(["mengzi", "clue", "run", "afqmc", "--recipe", "afqmc-tiny", "--out", "runs/clue/afqmc", *TINY], home, env)
    run = home / "runs/clue/afqmc"
    predictions = (run / "predictions/afqmc_predict.json").read_text(encoding="utf-8").splitlines()
    assert len(predictions) == sum(1 for line in (Path(env["DATA"]) / "clue/afqmc/test.json").open(encoding="utf-8")
                                   if line.strip())
    assert (run / "curves.png").stat().st_size > 0
    for path in [run, run / "model", run / "metrics.json", run / "model/model.safetensors", run / "predictions"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
    submit = README.splitlines()[[i for i, line in enumerate(README.splitlines()) if line.startswith(
        "mengzi clue submit")][0]]
    _run(["bash", "-c", submit], home, env)  # as written, the shell expanding runs/clue/* (tnews has no test file)
    assert stat.S_IMODE((home / "clue_submission.zip").stat().st_mode) == 0o644
    _run(readme_command("mengzi clue validate"), home, env)


REVIEWS = [("这家店的菜很好吃，服务也周到", "pos"), ("太难吃了，再也不来", "neg"), ('"好评"，物流很快', "pos"),
           ("质量差，\n用了一天就坏了", "neg"), ("包装精美, 推荐购买", "pos"), ("客服态度恶劣\u2028不推荐", "neg")]


def _reviews(path: Path, rows: int, labelled: bool = True) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:  # Excel's CSV: BOM, CRLF, quoted cells
        writer = csv.writer(f)
        writer.writerow(["id", "review", "sentiment"] if labelled else ["id", "review"])
        for i in range(rows):
            text, label = REVIEWS[i % len(REVIEWS)]
            writer.writerow([f"r{i}", text, label] if labelled else [f"r{i}", text])


def test_finetune_csv_export_predict_serve(user):
    home, env = user
    _reviews(home / "train.csv", 48)
    _reviews(home / "dev.csv", 12)
    _reviews(home / "test.csv", 7, labelled=False)
    _run(readme_command("mengzi finetune --model") + ["--train.epochs", "1", "--dataset.id", "id"], home, env)
    rows = [json.loads(line) for line in (home / "runs/reviews/test_predictions.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(7)]  # every row, the quoted newline and U+2028 kept
    assert {r["prediction"] for r in rows} <= {"pos", "neg"}
    # export --optimize --quantize int8 and predict from the user's own file, read by the columns trained on
    _run(["mengzi", "export", "runs/reviews", "--out", "exports/reviews", "--optimize", "--quantize", "int8"], home, env)
    out = _run(["mengzi", "predict", "exports/reviews", "--input", "test.csv"], home, env).stdout.splitlines()
    predicted = [json.loads(line) for line in out if line.startswith("{")]
    assert [p["id"] for p in predicted] == [f"r{i}" for i in range(7)]
    assert all(set(p["probabilities"]) == {"pos", "neg"} for p in predicted)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_export_predict_serve_readme_commands(user):
    home, env = user
    if not (home / "runs/clue/afqmc/model").is_dir():  # this test reads the AFQMC run; make it when run alone
        _run(["mengzi", "clue", "run", "afqmc", "--recipe", "afqmc-tiny", "--out", "runs/clue/afqmc", *TINY], home, env)
    _run(readme_command("mengzi export runs/clue/afqmc") + ["--check-examples", "200"], home, env)
    single = _run(readme_command("mengzi predict exports/afqmc --text"), home, env).stdout
    assert json.loads(single.strip().splitlines()[-1])["label"] in ("0", "1")
    _run(readme_command("mengzi predict exports/afqmc --clue"), home, env)
    assert (home / "predictions/afqmc_predict.json").is_file()
    port = _free_port()
    serve = readme_command("mengzi serve exports/afqmc")
    serve[serve.index("--port") + 1] = str(port)
    server = subprocess.Popen(serve, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        curl = readme_command("curl -s localhost:8000/predict")
        curl = [a.replace("localhost:8000", f"127.0.0.1:{port}") for a in curl]
        health = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/health"]
        deadline = time.monotonic() + 120
        while subprocess.run(health, capture_output=True, text=True).stdout != "200":
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        answer = subprocess.run(curl + ["-w", "\n%{http_code}"], capture_output=True, text=True, timeout=60)
        body, code = answer.stdout.rsplit("\n", 1)
        assert code == "200", answer.stdout  # curl -d sends a form content type: the README's request must work
        (output,) = json.loads(body)["outputs"]
        assert output["label"] in ("0", "1")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
