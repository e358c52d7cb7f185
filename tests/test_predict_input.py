"""`mengzi predict --input`: users' CSV / TSV / JSONL files read with the column names the model was fine-tuned on,
ids passed through, every label's probability written, a pair model never fed one text, bad rows named before any
output exists. One tiny `mengzi finetune` run (review + title -> sentiment) is exported and predicted on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mengzi.export.run import PredictConfig, _record_fields, predict
from mengzi.export.session import read_manifest

from mengzi.cli import main
from mengzi.config import ConfigError

LABELS = ["neg", "pos"]
REVIEWS = [("这个很好", "好评", "pos"), ("太差了", "差评", "neg"), ("非常好用", "推荐", "pos"), ("质量很差", "退货", "neg")]


@pytest.fixture(scope="module")
def pair_export(tmp_path_factory, data) -> Path:
    """A run of `mengzi finetune --dataset.text review --dataset.text-pair title`, exported."""
    from mengzi.models.load import init_model, save_pretrained

    tmp = tmp_path_factory.mktemp("predict-input")
    model, tok = init_model("mengzi-bert-tiny", seed=0)
    folder = save_pretrained(model, tok, tmp / "model")
    rows = "review,title,sentiment\n" + "".join(f"{r},{t},{s}\n" for r, t, s in REVIEWS * 4)
    (tmp / "train.csv").write_text(rows, encoding="utf-8")
    run = tmp / "run"
    assert main(["finetune", "--model", str(folder), "--out", str(run), "--dataset.train", str(tmp / "train.csv"),
                 "--dataset.dev", str(tmp / "train.csv"), "--dataset.text", "review", "--dataset.text-pair", "title",
                 "--dataset.label", "sentiment", "--train.epochs", "1", "--train.max-seq-len", "32",
                 "--train.batch-size", "16", "--train.micro-batch-size", "16", "--train.mixed-precision", "no"]) == 0
    out = tmp / "export"
    assert main(["export", str(run), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def predictor(pair_export):
    from mengzi.export import Predictor

    return Predictor(pair_export, providers="cpu")


def reference(predictor, pairs) -> list[dict]:
    """What the Predictor answers for (review, title) pairs given in its own record fields."""
    return predictor.predict([{"text": r, "text_pair": t} for r, t in pairs])


def run_predict(export: Path, path: Path, *flags: str) -> list[dict]:
    out = path.with_suffix(".predictions.jsonl")
    assert main(["predict", str(export), "--input", str(path), "--out", str(out), *flags]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_the_export_manifest_keeps_the_runs_field_names(pair_export, predictor):
    task = read_manifest(pair_export)["task"]
    assert task["fields"] == {"text": "review", "text_pair": "title"} and task["pair"] is True
    assert predictor.fields == {"text": "review", "text_pair": "title"} and predictor.info()["pair"] is True
    # CLUE runs read the shared schema; whether the task is a pair task comes from the task
    assert _record_fields({"task": "afqmc"}, "classification") == {"pair": True}
    assert _record_fields({"task": "csl"}, "classification") == {"pair": True}
    assert _record_fields({"task": "tnews"}, "classification") == {"pair": False}
    assert _record_fields({"task": "cluewsc2020"}, "classification") == {"pair": False}
    assert _record_fields({"task": "cmrc2018"}, "span") == {}
    assert _record_fields({}, "classification") == {}  # a bare model folder: nothing known, nothing enforced
    span = _record_fields({"dataset": {"kind": "span", "context": "passage", "question": "q", "id": "qid"}}, "span")
    assert span == {"fields": {"context": "passage", "question": "q"}, "id_field": "qid", "pair": None}


@pytest.mark.parametrize("name, content", [
    ("in.csv", "id,title,review\na1,好评,这个很好\na2,\"差评, 真的\",\"太差了\n第二行\"\n"),
    ("in.tsv", "review\ttitle\tid\n这个很好\t好评\ta1\n太差了\n第二行\t差评, 真的\ta2\n"),
    ("in.jsonl", '{"id": "a1", "review": "这个很好", "title": "好评"}\n\n'
                 '{"review": "太差了\\n第二行", "title": "差评, 真的", "id": "a2"}\n'),
])
def test_csv_tsv_jsonl_read_with_the_finetuned_names_ids_and_all_probabilities(pair_export, predictor, tmp_path,
                                                                                name, content):
    path = tmp_path / name
    if name.endswith(".tsv"):  # TSV has no quoting: a newline cannot live in a cell, so this row keeps one line
        content = content.replace("太差了\n第二行", "太差了 第二行")
    path.write_text(content, encoding="utf-8")
    rows = run_predict(pair_export, path)
    second = "太差了 第二行" if name.endswith(".tsv") else "太差了\n第二行"
    expected = reference(predictor, [("这个很好", "好评"), (second, "差评, 真的")])
    assert [r["id"] for r in rows] == ["a1", "a2"]
    assert [{k: v for k, v in r.items() if k != "id"} for r in rows] == expected
    for r in rows:
        assert set(r["probabilities"]) == set(LABELS) and abs(sum(r["probabilities"].values()) - 1) < 1e-5
        assert r["label"] in LABELS and r["score"] == max(r["probabilities"].values())


def test_bom_crlf_gbk_and_ids_by_flag_or_row_index(pair_export, predictor, tmp_path):
    pairs = [("这个\u2028很好", "好评"), ("太差了", "差评")]  # U+2028 is text, not a line end
    crlf = tmp_path / "bom.csv"
    crlf.write_bytes("\ufeffreview,title\r\n这个\u2028很好,好评\r\n太差了,差评\r\n".encode())
    rows = run_predict(pair_export, crlf)
    assert [r["id"] for r in rows] == [0, 1]  # no id column: the 0-based row index, as `mengzi finetune` numbers rows
    assert [{k: v for k, v in r.items() if k != "id"} for r in rows] == reference(predictor, pairs)
    gbk = tmp_path / "gbk.tsv"
    gbk.write_bytes("编号\treview\ttitle\nx-9\t这个很好\t好评\nx-7\t太差了\t差评\n".encode("gbk"))
    pairs[0] = ("这个很好", "好评")
    rows = run_predict(pair_export, gbk, "--encoding", "gbk", "--id", "编号")
    assert [r["id"] for r in rows] == ["x-9", "x-7"]
    assert [r["label"] for r in rows] == [r["label"] for r in reference(predictor, pairs)]
    jsonl = tmp_path / "records.txt"  # any name: --format says what it is
    jsonl.write_text('{"review": "这个很好", "title": "好评", "id": 17}\n', encoding="utf-8")
    assert run_predict(pair_export, jsonl, "--format", "jsonl")[0]["id"] == 17


def test_a_pair_model_refuses_a_single_text(pair_export, predictor, tmp_path):
    single = tmp_path / "single.csv"
    single.write_text("review\n这个很好\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"single.csv:2: field 'title' is missing"):
        predict(PredictConfig(model=str(pair_export), input=str(single)))
    empty = tmp_path / "empty.csv"
    empty.write_text("review,title\n这个很好,好评\n太差了,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty.csv:3: field 'title': expected a non-empty string, got str ''"):
        predict(PredictConfig(model=str(pair_export), input=str(empty)))
    with pytest.raises(ConfigError, match="give a --text-pair for each --text"):
        predict(PredictConfig(model=str(pair_export), text=["这个很好"]))
    with pytest.raises(ValueError, match="field 'text_pair' is missing: this model was fine-tuned on pairs"):
        predictor.validate({"text": "这个很好"})  # what `mengzi serve` answers 400 with
    predictor.pair = False  # a single-text model refuses a pair the same way
    try:
        with pytest.raises(ValueError, match="fine-tuned on single texts"):
            predictor.validate({"text": "这个很好", "text_pair": "好评"})
    finally:
        predictor.pair = True


@pytest.mark.parametrize("content, where", [
    ('{"review": "好", "title": "好评"}\n{"review": 3, "title": "差评"}\n', r"bad.jsonl:2: field 'review': expected a "
                                                                             r"non-empty string, got int 3"),
    ('{"review": "好", "title": "好评"}\n\n{"review": ["好"], "title": "差评"}\n', r"bad.jsonl:3: field 'review'"),
    ('{"review": "好", "title": "好评"}\n{"text": "好", "title": "差评"}\n', r"bad.jsonl:2: field 'review' is missing"),
    ('{"review": "好", "title": "好评", "id": 1}\n{"review": "差", "title": "差评"}\n',
     r"bad.jsonl:2: field 'id' \(the id\) is missing"),
])
def test_bad_records_are_named_before_anything_is_written(pair_export, tmp_path, content, where, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "never.jsonl"
    with pytest.raises(ValueError, match=where):
        predict(PredictConfig(model=str(pair_export), input=str(bad), out=str(out)))
    assert not out.exists() and capsys.readouterr().out == ""
    assert main(["predict", str(pair_export), "--input", str(bad), "--out", str(out)]) == 2  # one line, no traceback
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("mengzi predict: error: ") and "bad.jsonl:" in error[0]
    assert not out.exists()


@pytest.mark.parametrize("name, raw, where", [
    ("gbk.csv", "review,title\n好,好评\n差,差评\n".encode("gbk"), r"gbk.csv:2: not UTF-8"),
    ("empty.csv", b"review,title\n", r"empty.csv: no rows"),
    ("noname", b"review,title\n", r"noname: cannot tell the format"),
])
def test_unreadable_files_are_named(pair_export, tmp_path, name, raw, where):
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=where):
        predict(PredictConfig(model=str(pair_export), input=str(path), out=str(tmp_path / "never.jsonl")))
    assert not (tmp_path / "never.jsonl").exists()


def test_bad_csv_row_is_named_by_its_line(pair_export, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('review,title\n"第一行\n第二行",好评\n太差了,\n', encoding="utf-8")  # row 2 spans lines 2-3
    with pytest.raises(ValueError, match=r"bad.csv:4: field 'title'"):
        predict(PredictConfig(model=str(pair_export), input=str(bad)))
