"""All ten CLUE tasks end to end through `mengzi clue run` (tiny recipes, a small slice of each real training and
dev set, every real test file predicted whole), then `mengzi clue submit` and `mengzi clue validate` on the zip.

CMNLI and the official ChID layout are not in the shared data: they run on the hand-written official-format
fixtures in tests/fixtures/clue; ChID also runs on FewCLUE's real text (its recipe's stand-in).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import need_data

from mengzi.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "clue"
REAL = ("afqmc", "tnews", "iflytek", "ocnli", "cluewsc2020", "csl", "cmrc2018", "c3")


@pytest.fixture(scope="module")
def clue_root(tmp_path_factory) -> Path:
    """A CLUE root: the real task folders, plus the fixtures for what the shared data lacks."""
    data = need_data(*(f"clue/{t}" for t in REAL), "fewclue/chid", "fewclue/iflytek")
    root = tmp_path_factory.mktemp("clue-root")
    for task in REAL:
        (root / task).symlink_to((data / "clue" / task).resolve())  # DATA may be relative (make exports ../shared/data)
    for task in ("cmnli", "chid"):
        (root / task).symlink_to(FIXTURES / task)
    return root


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, data) -> Path:
    from mengzi.models.load import init_model, save_pretrained

    model, tok = init_model("mengzi-bert-tiny", seed=0)
    return save_pretrained(model, tok, tmp_path_factory.mktemp("model") / "bert-tiny")


@pytest.fixture(scope="module")
def runs(clue_root, model_folder, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    small = ["--train.max-train-examples", "32", "--train.max-eval-examples", "32", "--train.epochs", "1",
             "--train.mixed-precision", "no", "--model", str(model_folder), "--data-dir", str(clue_root)]
    done = {}
    for task in ("afqmc", "tnews", "iflytek", "ocnli", "cmnli", "cluewsc2020", "csl", "cmrc2018", "c3"):
        done[task] = out / task
        assert main(["clue", "run", task, "--recipe", str(REPO / f"recipes/clue/{task}-tiny.yaml"),
                     "--out", str(done[task]), *small]) == 0, task
    # ChID twice: the recipe on FewCLUE's real text, and the official layout (fixture) without the recipe's files
    done["chid-fewclue"] = out / "chid-fewclue"
    assert main(["clue", "run", "chid", "--recipe", str(REPO / "recipes/clue/chid-tiny.yaml"),
                 "--out", str(done["chid-fewclue"]), *small]) == 0
    done["chid"] = out / "chid"
    assert main(["clue", "run", "chid", "--out", str(done["chid"]), "--train.max-seq-len", "96", *small]) == 0
    return done


def test_every_task_trains_evaluates_and_writes_its_run_folder(runs):
    for task, run in runs.items():
        metrics = json.loads((run / "metrics.json").read_text())
        main_metric = metrics["main_metric"]
        assert 0 <= metrics["dev"][main_metric] <= 100, task
        for name in ("config.yaml", "train.log", "metrics.jsonl", "curves.png", "dev_predictions.jsonl",
                     "model/config.json", "model/model.safetensors"):
            assert (run / name).is_file(), f"{task}: {name}"
    assert json.loads((runs["cmrc2018"] / "metrics.json").read_text())["main_metric"] == "average"


def test_predictions_use_official_names_and_cover_every_test_id(runs):
    names = {task: sorted(p.name for p in (run / "predictions").glob("*.json")) for task, run in runs.items()
             if (run / "predictions").is_dir()}
    assert names["afqmc"] == ["afqmc_predict.json"]
    assert names["cluewsc2020"] == ["cluewsc10_predict.json", "cluewsc11_predict.json"]
    assert names["c3"] == ["c310_predict.json", "c311_predict.json"]
    assert names["ocnli"] == ["ocnli_50k_predict.json"]
    assert names["cmnli"] == ["cmnli_predict.json"]
    assert names["iflytek"] == ["iflytek_predict.json"]
    assert names["csl"] == ["csl_predict.json"]
    assert names["cmrc2018"] == ["cmrc2018_predict.json"]
    assert names["chid-fewclue"] == ["chidf_predict.json"]
    assert "tnews" not in names or names["tnews"] == []  # no TNEWS test file in the shared data
    afqmc = [json.loads(line) for line in (runs["afqmc"] / "predictions/afqmc_predict.json").read_text().splitlines()]
    assert [r["id"] for r in afqmc] == list(range(3861)) and {r["label"] for r in afqmc} <= {"0", "1"}
    cmrc = json.loads((runs["cmrc2018"] / "predictions/cmrc2018_predict.json").read_text())
    assert len(cmrc) == 2000 and all(isinstance(v, str) for v in cmrc.values())


def test_submit_writes_a_zip_that_validates_and_validate_catches_tampering(runs, clue_root, tmp_path, capsys):
    official = [str(run) for task, run in runs.items() if task != "chid-fewclue"]
    zip_path = tmp_path / "clue_submission.zip"
    assert main(["clue", "submit", *official, "--out", str(zip_path), "--data-dir", str(clue_root)]) == 0
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
    assert {"afqmc_predict.json", "iflytek_predict.json", "ocnli_50k_predict.json", "cmnli_predict.json",
            "cluewsc11_predict.json", "csl_predict.json", "cmrc2018_predict.json", "c311_predict.json"} <= names
    assert any(n.startswith("chid1") for n in names)
    assert main(["clue", "validate", str(zip_path), "--data-dir", str(clue_root)]) == 0

    # drop one AFQMC line and swap two ids of CSL: validate fails and says where
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            lines = src.read(name).decode().splitlines()
            if name == "afqmc_predict.json":
                lines = lines[1:]
            if name == "csl_predict.json":
                lines[0], lines[1] = lines[1], lines[0]
            dst.writestr(name, "\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["clue", "validate", str(bad), "--data-dir", str(clue_root)]) == 2
    printed = capsys.readouterr().err  # the error lists every problem
    assert "afqmc_predict.json" in printed and "csl_predict.json" in printed

    # a FewCLUE stand-in's file is refused by submit: it is not a CLUE file
    assert main(["clue", "submit", str(runs["chid-fewclue"]), "--out", str(tmp_path / "few.zip"),
                 "--data-dir", str(clue_root)]) == 2
    assert not (tmp_path / "few.zip").exists()


@pytest.mark.parametrize("task", ["afqmc", "cluewsc2020", "c3", "chid", "cmrc2018"])
def test_an_exported_run_writes_the_same_official_predictions_as_pytorch(runs, clue_root, tmp_path, task):
    """`mengzi export RUN --check-data dev` then `mengzi predict EXPORT --clue`: ONNX Runtime (fp32) writes the
    test predictions PyTorch wrote, file for file; the task gate compared the dev metrics on the way."""
    from mengzi.export.session import read_manifest

    export = tmp_path / "export"
    assert main(["export", str(runs[task]), "--out", str(export), "--optimize", "--check-data", "dev",
                 "--check-examples", "200"]) == 0
    gate = read_manifest(export)["gates"]["task"]["fp32"]
    assert gate["passed"] and 0 < gate["examples"] <= 200
    # the fused graph may flip at most one dev example, and only on a float tie (see `_only_float_ties`: a random
    # tiny model scores some C3 choices identically); any real divergence moves the metric by more
    for metric, value in gate["pytorch"].items():
        assert abs(gate["onnx"][metric] - value) <= 100 / gate["examples"] + 1e-6, (metric, gate)
    assert main(["predict", str(export), "--clue", "--data-dir", str(clue_root), "--out", str(tmp_path / "p")]) == 0
    ours = sorted((tmp_path / "p").glob("*.json"))
    theirs = sorted((runs[task] / "predictions").glob("*.json"))
    assert [p.name for p in ours] == [p.name for p in theirs] and ours
    for a, b in zip(ours, theirs):
        if a.read_text(encoding="utf-8") != b.read_text(encoding="utf-8"):
            _only_float_ties(task, export, clue_root, a, b)


def _only_float_ties(task: str, export: Path, clue_root: Path, ours: Path, theirs: Path) -> None:
    """Rows may differ only where two answers score the same to float32 noise (a random tiny model gives C3 choices
    whose texts coincide after truncation identical logits): ONNX's logits of both answers within 1e-5."""
    from mengzi.clue.tasks import get_task, load_task
    from mengzi.export import Predictor

    a = [json.loads(line)["label"] for line in ours.read_text(encoding="utf-8").splitlines()]
    b = [json.loads(line)["label"] for line in theirs.read_text(encoding="utf-8").splitlines()]
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    assert len(a) == len(b) and len(differ) <= max(2, len(a) // 1000), f"{ours.name}: {len(differ)} rows differ"
    spec = get_task(task)
    name = next(test for test, predict_name in spec.test_files.items() if predict_name == ours.name)
    _, logits = Predictor(export, providers="cpu").predict_dataset(load_task(task, name, clue_root))
    index = (lambda label: spec.labels.index(label)) if spec.kind == "classification" else int
    for i in differ:
        assert abs(logits[i][index(a[i])] - logits[i][index(b[i])]) < 1e-5, (ours.name, i, logits[i])
