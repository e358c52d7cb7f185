"""The fine-tuning engine: encoding, batching, a run that learns, resume, ensembles, transfer, user data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset

from mengzi.finetune.batches import epoch_batches, process_share
from mengzi.finetune.config import FinetuneConfig, TrainConfig
from mengzi.finetune.kinds import context_window, get_kind, truncate_pair
from mengzi.finetune.metrics import metric_for_kind
from mengzi.finetune.trainer import TaskSpec

GOOD = ["这个很好", "非常好用", "好极了真棒", "质量很好", "服务好", "好评满分"]
BAD = ["太差了", "质量很差", "非常失望", "差评退货", "不值这个价", "糟糕透顶"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, data):
    from mengzi.models.load import init_model, save_pretrained

    model, tok = init_model("mengzi-bert-tiny", seed=0)
    return save_pretrained(model, tok, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tok(tiny_folder):
    from mengzi.tokenizer import load_tokenizer

    return load_tokenizer(tiny_folder)


def sentiment(n: int, seed: int = 0) -> Dataset:
    """A task a 2-layer model learns in seconds: does the review contain 好 or 差."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = int(rng.integers(2))
        text = (GOOD if label else BAD)[int(rng.integers(6))] + "。" + "这是一段评论" * int(rng.integers(1, 4))
        rows.append({"id": i, "text": text, "text_pair": "", "label": label})
    return Dataset.from_list(rows)


def config(folder, out, **train) -> FinetuneConfig:
    defaults = dict(epochs=3, batch_size=16, micro_batch_size=8, lr=2e-3, max_seq_len=32, mixed_precision="no",
                    log_every=5, eval_batch_size=32, threads=2)
    return FinetuneConfig(model=str(folder), out=str(out), train=TrainConfig(**(defaults | train)))


def spec(labels=("bad", "good")) -> TaskSpec:
    metric, main = metric_for_kind("classification")
    return TaskSpec("sentiment", "classification", labels, metric, main)


# --------------------------------------------------------------------------------------------------- encoding
def test_truncate_pair_is_longest_first():
    a, b = truncate_pair(list(range(10)), list(range(4)), 8)
    assert (len(a), len(b)) == (4, 4)
    a, b = truncate_pair(list(range(3)), list(range(10)), 8)
    assert (len(a), len(b)) == (3, 5)


def test_classification_features_match_the_tokenizers_own_pair_encoding(tok):
    data = Dataset.from_list([{"id": 0, "text": "蚂蚁借呗怎么还款", "text_pair": "借呗如何还钱", "label": 1}])
    (feature,) = get_kind("classification").encode(data, tok, TrainConfig(max_seq_len=64)).features
    reference = tok("蚂蚁借呗怎么还款", "借呗如何还钱")
    assert feature["input_ids"] == reference["input_ids"]
    assert feature["token_type_ids"] == reference["token_type_ids"]


def test_multiple_choice_batches_pad_choices_and_mask_them(tok):
    data = Dataset.from_list([
        {"id": 0, "context": "男：你去哪儿？女：去学校。", "question": "女的去哪儿？", "choices": ["学校", "医院"], "label": 0},
        {"id": 1, "context": "今天下雨了。", "question": "天气怎么样？", "choices": ["晴", "雨", "雪", "风"], "label": 1},
    ])
    kind = get_kind("multiple_choice")
    enc = kind.encode(data, tok, TrainConfig(max_seq_len=32))
    batch = kind.collate(enc.features, tok.pad_token_id)
    assert batch["input_ids"].shape[:2] == (2, 4)
    assert batch["choice_mask"].tolist() == [[True, True, False, False], [True, True, True, True]]
    masked = kind.masked(torch.zeros(2, 4), batch)
    assert masked[0, 2] < -1e3 and masked[1, 3] == 0


def test_context_window_keeps_the_blank_in_view():
    ctx = list(range(100))
    ctx[80] = 103  # [MASK]
    window = context_window(ctx, 20, 103)
    assert len(window) == 20 and 103 in window and window.index(103) == 10
    assert context_window(list(range(100)), 20, 103) == list(range(20))


def test_epoch_plan_covers_every_example_once_and_groups_lengths():
    lengths = list(np.random.default_rng(0).integers(5, 120, size=1000))
    plan = epoch_batches(lengths, 16, seed=3, epoch=0, group_by_length=True)
    assert sorted(i for b in plan for i in b) == list(range(1000))
    assert plan == epoch_batches(lengths, 16, seed=3, epoch=0, group_by_length=True)
    assert plan != epoch_batches(lengths, 16, seed=3, epoch=1, group_by_length=True)
    random_plan = epoch_batches(lengths, 16, seed=3, epoch=0, group_by_length=False)

    def padding(p):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in p)

    assert padding(plan) < padding(random_plan) / 5
    assert process_share(list(range(10)), 0, 2) + process_share(list(range(10)), 1, 2) == list(range(10))


# ---------------------------------------------------------------------------------------------------- a real run
def test_finetune_learns_writes_the_run_folder_and_resumes(tiny_folder, tmp_path):
    from mengzi.finetune.run import finetune

    splits = {"train": sentiment(192), "dev": sentiment(64, seed=1)}
    result = finetune(config(tiny_folder, tmp_path / "run"), spec(), splits, {"test": sentiment(20, seed=2)})
    out = tmp_path / "run"
    assert result.metrics["dev"]["accuracy"] >= 90, result.metrics
    for name in ("metrics.json", "metrics.jsonl", "train.log", "curves.png", "dev_predictions.jsonl", "model/config.json",
                 "model/model.safetensors", "best.json"):
        assert (out / name).is_file(), name
    config_json = json.loads((out / "model" / "config.json").read_text())
    assert config_json["id2label"] == {"0": "bad", "1": "good"}
    assert len(result.test_predictions["test"]) == 20
    dev_rows = [json.loads(line) for line in (out / "dev_predictions.jsonl").read_text().splitlines()]
    assert len(dev_rows) == 64 and {"id", "prediction", "label", "correct"} <= set(dev_rows[0])
    # the saved best model predicts what the run reported
    from mengzi.models.load import load

    model, tok = load(out / "model", task="sequence-classification")
    enc = tok(list(splits["dev"]["text"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        predictions = model(**enc).logits.argmax(-1).tolist()
    assert predictions == [r["prediction"] for r in dev_rows]

    # a killed run (crash after the step-24 checkpoint) resumes there and ends where the unkilled run ended
    with pytest.raises(FileExistsError, match="--resume"):  # a finished run is not silently trained again
        finetune(config(tiny_folder, out), spec(), splits)
    # the finished run keeps model/ and its card, not the optimizer state; kill and resume: tests/test_resume.py
    assert not (out / "checkpoints").exists() and (out / "model" / "README.md").is_file()
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_seed_ensemble_reports_each_seed_mean_spread_and_ensemble(tiny_folder, tmp_path):
    from mengzi.finetune.run import finetune

    cfg = config(tiny_folder, tmp_path / "ens", epochs=1)
    cfg.seeds = [1, 2]
    result = finetune(cfg, spec(), {"train": sentiment(64), "dev": sentiment(32, seed=1)})
    m = result.metrics
    assert set(m["seeds"]) == {1, 2} and "seed_mean" in m and "seed_std" in m and "ensemble" in m
    assert (tmp_path / "ens" / "seed-1" / "model" / "config.json").is_file()
    assert (tmp_path / "ens" / "model" / "config.json").is_file()


def test_transfer_keeps_the_encoder_and_resizes_a_different_head(tiny_folder, tmp_path):
    from mengzi.finetune.run import finetune
    from mengzi.models.load import load

    finetune(config(tiny_folder, tmp_path / "src", epochs=1), spec(("a", "b", "c")),
             {"train": sentiment(32), "dev": sentiment(16, seed=1)})
    source, _ = load(tmp_path / "src" / "model", task="sequence-classification")
    cfg = config(tiny_folder, tmp_path / "dst", epochs=1, lr=1e-12)  # lr ~0: what is loaded is what we see
    cfg.init_from = str(tmp_path / "src")
    finetune(cfg, spec(), {"train": sentiment(32), "dev": sentiment(16, seed=1)})
    target, _ = load(tmp_path / "dst" / "model", task="sequence-classification")
    assert target.config.num_labels == 2
    torch.testing.assert_close(target.bert.encoder.layer[0].output.dense.weight,
                               source.bert.encoder.layer[0].output.dense.weight, rtol=1e-5, atol=1e-6)
    assert target.classifier.weight.shape == (2, 128)


# ------------------------------------------------------------------------------------------------------ user data
def test_user_csv_finetune_end_to_end_and_errors_name_file_line_field(tiny_folder, tmp_path):
    from mengzi.cli import main
    from mengzi.finetune.userdata import DataError, DataFiles, load_user_split

    def write_csv(path, data):
        lines = ["review,sentiment"] + [f"{r['text']},{'pos' if r['label'] else 'neg'}" for r in data]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    write_csv(tmp_path / "train.csv", sentiment(160))
    write_csv(tmp_path / "dev.csv", sentiment(48, seed=1))
    out = tmp_path / "user-run"
    code = main(["finetune", "--model", str(tiny_folder), "--out", str(out), "--dataset.train", str(tmp_path / "train.csv"),
                 "--dataset.dev", str(tmp_path / "dev.csv"), "--dataset.test", str(tmp_path / "dev.csv"),
                 "--dataset.text", "review", "--dataset.label", "sentiment", "--train.epochs", "3",
                 "--train.lr", "2e-3", "--train.max-seq-len", "32", "--train.batch-size", "16",
                 "--train.micro-batch-size", "16", "--train.mixed-precision", "no"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["accuracy"] >= 85
    predictions = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 48 and {p["prediction"] for p in predictions} <= {"pos", "neg"}

    (tmp_path / "bad.csv").write_text("review,sentiment\n好,pos\n差,maybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv:3: field 'sentiment': unknown label 'maybe'"):
        load_user_split(DataFiles(text="review", label="sentiment"), tmp_path / "bad.csv", ["neg", "pos"])
    (tmp_path / "bad.jsonl").write_text('{"text": "好", "label": "pos"}\n{"txt": "差", "label": "neg"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'text' is missing"):
        load_user_split(DataFiles(), tmp_path / "bad.jsonl", ["neg", "pos"])
    (tmp_path / "span.jsonl").write_text('{"context": "北京是首都", "question": "首都是哪", "answer": "上海"}\n')
    with pytest.raises(DataError, match=r"span.jsonl:1: field 'answer': '上海' is not in the context"):
        load_user_split(DataFiles(kind="span"), tmp_path / "span.jsonl", None)
    (tmp_path / "latin1.csv").write_bytes(b"review,sentiment\n" + "caf\xe9,pos\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.csv:2: not UTF-8"):
        load_user_split(DataFiles(text="review", label="sentiment"), tmp_path / "latin1.csv", ["neg", "pos"])


def test_user_multiple_choice_and_span_files_load(tmp_path):
    from mengzi.finetune.userdata import DataFiles, load_user_split

    (tmp_path / "mc.csv").write_text("passage,q,A,B,C,answer\n今天下雨,天气?,晴,雨,雪,雨\n", encoding="utf-8")
    ds = load_user_split(DataFiles(kind="multiple_choice", context="passage", question="q", choices="A,B,C",
                                   label="answer"), tmp_path / "mc.csv", None)
    assert ds[0]["choices"] == ["晴", "雨", "雪"] and ds[0]["label"] == 1
    (tmp_path / "qa.jsonl").write_text('{"context": "北京是中国的首都", "question": "首都?", "answer": "北京"}\n')
    ds = load_user_split(DataFiles(kind="span"), tmp_path / "qa.jsonl", None)
    assert ds[0]["answers"] == {"text": ["北京"], "answer_start": [0]}
