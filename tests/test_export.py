"""ONNX export of every encoder head, its gates, and the torch-free Predictor (tiny random models, real vocab)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mengzi.export.heads import HEADS, detect_head
from mengzi.export.run import ExportConfig, export_model
from mengzi.export.session import ExportError, read_manifest

from mengzi.models.load import init_model, save_pretrained

REPO = Path(__file__).resolve().parents[1]
LABELS = {"sequence-classification": ["负面", "中性", "正面"], "token-classification": ["O", "B-PER", "I-PER"]}


def _model(tmp: Path, head: str, seed: int = 0) -> Path:
    labels = LABELS.get(head)
    overrides = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                 "label2id": {x: i for i, x in enumerate(labels)}} if labels else None
    model, tok = init_model("mengzi-bert-tiny", task=HEADS[head].model_task, seed=seed, overrides=overrides)
    return save_pretrained(model, tok, tmp / f"{head}-model", overwrite=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("export-models")
    return {head: _model(tmp, head) for head in LABELS | dict.fromkeys(
        ["multiple-choice", "question-answering", "fill-mask"])}


def _export(models, tmp_path, head, **kw) -> Path:
    out = tmp_path / f"{head}-export"
    export_model(ExportConfig(model=str(models[head]), out=str(out), overwrite=True, **kw))
    return out


def test_heads_are_detected_from_checkpoints():
    assert detect_head({"architectures": ["BertForSequenceClassification"]}) == "sequence-classification"
    assert detect_head({"architectures": ["BertForMaskedLM"], "mengzi_task_kind": "span"}) == "question-answering"
    assert detect_head({"architectures": ["T5ForConditionalGeneration"]}) == "seq2seq-lm"
    assert detect_head({"model_type": "gpt_neo"}) == "causal-lm"
    with pytest.raises(ValueError, match="pass --task"):
        detect_head({"model_type": "llama"})


@pytest.mark.parametrize("head", ["sequence-classification", "multiple-choice", "question-answering", "fill-mask",
                                  "token-classification"])
def test_every_encoder_head_exports_fused_and_int8_and_predicts(models, tmp_path, head):
    out = _export(models, tmp_path, head, optimize=True, quantize="int8")
    manifest = read_manifest(out)
    numeric = manifest["gates"]["numeric"]
    assert numeric["fp32"]["max_abs_diff"] < 1e-4 and numeric["fp32-fused"]["max_abs_diff"] < 1e-4
    assert 0 < numeric["int8"]["max_abs_diff"] < 1.0  # quantised: close, but not equal
    assert manifest["fusion"]["Attention"] == 2 and manifest["precision"] == "int8"
    assert {"model.onnx", "model.unfused.onnx", "tokenizer.json"} <= {p.name for p in out.iterdir()}

    from mengzi.export import Predictor

    p = Predictor(out, providers="cpu")
    record = {"sequence-classification": {"text": "这部电影真好看", "text_pair": "我很喜欢"},
              "multiple-choice": {"context": "他每天早上跑步。", "question": "他做什么运动？", "choices": ["跑步", "游泳", "篮球"]},
              "question-answering": {"question": "谁发布了孟子模型？", "context": "孟子模型由澜舟科技发布。"},
              "fill-mask": {"text": "今天天气很[MASK]。"},
              "token-classification": {"text": "张三在北京工作"}}[head]
    result = p.predict([record, record])[0]
    if head == "sequence-classification":  # a single text batched with pairs is encoded as it is alone
        seen = []
        logits = p.logits
        p.logits = lambda encoded: seen.extend(f["input_ids"] for f in encoded.features) or logits(encoded)
        p.predict([record, {"text": "这部电影真好看"}, record])
        sep = p.tokenizer.sep_token_id
        assert sorted(ids.count(sep) for ids in seen) == [1, 2, 2]
    if head == "sequence-classification":
        assert result["label"] in LABELS[head] and abs(sum(result["probabilities"].values()) - 1) < 1e-5
    elif head == "multiple-choice":
        assert result["text"] == record["choices"][result["choice"]] and len(result["scores"]) == 3
    elif head == "question-answering":
        assert result["answer"] == record["context"][result["start"] : result["end"]] and result["answer"]
    elif head == "fill-mask":
        assert len(result["masks"]) == 1 and len(result["masks"][0]) == 5 and "[MASK]" not in result["filled"]
    else:
        assert [t["text"] for t in result["tokens"]] == list("张三在北京工作")
        assert all(t["label"] in LABELS[head] for t in result["tokens"])


def test_fp32_predictor_matches_pytorch_logits_on_a_padded_batch(models, tmp_path):
    from mengzi.export import Predictor

    from mengzi.finetune import encoding
    from mengzi.models.load import load

    out = _export(models, tmp_path, "multiple-choice")
    p = Predictor(out, providers="cpu", batch_size=4)
    ds = encoding.Columns(context=["天很蓝，云很白。" * k for k in range(1, 6)], question=["天是什么颜色？"] * 5,
                          choices=[["蓝色", "白色"], ["红", "绿", "黄"], ["一", "二"], ["甲", "乙", "丙"], ["是", "否"]])
    predictions, logits = p.predict_dataset(ds)
    model, tok = load(models["multiple-choice"], task="multiple-choice")
    for i in range(5):
        enc = encoding.encode_multiple_choice(encoding.Columns({k: v[i : i + 1] for k, v in ds.items()}), tok, 512)
        choices = enc.features[0]["choices"]
        ids = torch.tensor([[c[0] for c in choices]])
        with torch.no_grad():
            ref = model(input_ids=ids, token_type_ids=torch.tensor([[c[1] for c in choices]])).logits[0].numpy()
        assert logits[i].shape == ref.shape and np.abs(logits[i] - ref).max() < 1e-4
        assert predictions[i] == int(ref.argmax())


def test_numeric_gate_failure_stops_the_export_with_the_measured_difference(models, tmp_path):
    out = tmp_path / "strict"
    with pytest.raises(ExportError, match=r"numeric gate failed for the int8 graph: max \|onnx - pytorch\| = [0-9.e-]+"):
        export_model(ExportConfig(model=str(models["sequence-classification"]), out=str(out), quantize="int8",
                                  tolerance=1e-9))
    assert not out.exists() and not list(tmp_path.glob(".strict*"))  # nothing half-written is left


def test_numeric_tolerance_is_relative_to_the_logit_scale():
    from mengzi.export.gates import enforce_tolerance, logit_scale

    assert logit_scale([np.array([0.2, -0.5])]) == 1.0  # small logits keep the absolute tolerance
    assert logit_scale([np.array([[3.0, -130.0]]), np.zeros(0)]) == 130.0
    # a random T5-base: logits near 130, fp32 rounding differences near 2e-4 (1.6e-6 relative) pass
    assert enforce_tolerance({"max_abs_diff": 2e-4, "scale": 130.0}, "fp32")["passed"]
    with pytest.raises(ExportError, match=r"= 0.0002 > tolerance 0.0001 x logit scale 1"):
        enforce_tolerance({"max_abs_diff": 2e-4}, "fp32")
    with pytest.raises(ExportError, match=r"x logit scale 130"):
        enforce_tolerance({"max_abs_diff": 2e-2, "scale": 130.0}, "fp32")
    # quantised graphs keep absolute bounds: their error is what the gate guards, whatever the logits' size
    with pytest.raises(ExportError, match=r"int8 graph: .* = 2 > tolerance 1 x logit scale 1$"):
        enforce_tolerance({"max_abs_diff": 2.0, "scale": 20.0}, "int8")
    with pytest.raises(ExportError, match=r"fp16 graph"):
        enforce_tolerance({"max_abs_diff": 0.2, "scale": 20.0}, "fp16")


def test_dynamo_export_is_exact_but_does_not_fuse(models, tmp_path):
    out = _export(models, tmp_path, "sequence-classification", dynamo=True)
    assert read_manifest(out)["gates"]["numeric"]["fp32"]["max_abs_diff"] < 1e-4
    with pytest.raises(RuntimeError, match="fusion found 0 of 2 attention blocks"):
        _export(models, tmp_path, "sequence-classification", dynamo=True, optimize=True)


def test_refuses_contradictory_or_impossible_options(models, tmp_path):
    from mengzi.config import ConfigError

    with pytest.raises(ConfigError, match="choose one"):
        _export(models, tmp_path, "fill-mask", fp16=True, quantize="int8")
    with pytest.raises(ConfigError, match="calibrates on real text"):
        _export(models, tmp_path, "sequence-classification", quantize="int8", int8_mode="static")
    with pytest.raises(ConfigError, match="needs a run folder"):
        _export(models, tmp_path, "sequence-classification", check_data="dev")


def test_fp16_graph_keeps_float32_inputs_and_outputs(models, tmp_path):
    import onnx

    out = _export(models, tmp_path, "question-answering", optimize=True, fp16=True)
    graph = onnx.load(out / "model.onnx").graph
    assert {o.type.tensor_type.elem_type for o in graph.output} == {onnx.TensorProto.FLOAT}
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    assert read_manifest(out)["gates"]["numeric"]["fp16"]["max_abs_diff"] < 5e-2


def test_predict_cli_reads_jsonl_and_names_the_bad_line(models, tmp_path):
    from mengzi.cli import main

    out = _export(models, tmp_path, "sequence-classification")
    good = tmp_path / "in.jsonl"
    good.write_text('{"text": "好"}\n\n{"text": "不好", "text_pair": "一般"}\n', encoding="utf-8")
    assert main(["predict", str(out), "--input", str(good), "--out", str(tmp_path / "p.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(r["label"] in LABELS["sequence-classification"] for r in rows)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "好"}\n{"text": 3}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: field 'text': expected a non-empty string"):
        from mengzi.export.run import PredictConfig, predict

        predict(PredictConfig(model=str(out), input=str(bad)))


def test_predictor_runs_where_torch_is_not_installed(models, tmp_path):
    """A fresh interpreter that can import only mengzi's sources, numpy, onnxruntime and tokenizers."""
    import shutil
    import sysconfig

    out = _export(models, tmp_path, "question-answering", optimize=True, quantize="int8")
    site = tmp_path / "site"
    shutil.copytree(REPO / "mengzi", site / "mengzi", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "mengzi" / "clue").symlink_to(REPO / "clue")
    (site / "mengzi" / "export").symlink_to(REPO / "export")
    deps = Path(sysconfig.get_paths()["purelib"])
    for name in ("numpy", "numpy.libs", "onnxruntime", "tokenizers"):
        if (deps / name).exists():
            (site / name).symlink_to(deps / name)
    code = f"""
import sys
sys.path.insert(0, {str(site)!r})
for banned in ("torch", "transformers"):
    try:
        __import__(banned)
        raise SystemExit(banned + " is importable: not a torch-free environment")
    except ImportError:
        pass
from mengzi.export import Predictor
r = Predictor({str(out)!r}, providers="cpu").predict([{{"question": "谁发布了孟子？", "context": "孟子由澜舟科技发布。"}}])
assert r[0]["answer"], r
print("ok", sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "datasets")))
"""
    run = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["ok", "[]"]


def test_provider_choice_and_tensorrt_settings(models, tmp_path, monkeypatch):
    """CPU here; asking for a GPU provider this build lacks names what is available; TensorRT gets fp16 + an engine
    cache and the unfused graph (ORT's contrib ops are not TensorRT's)."""
    import mengzi.export.predictor as predictor_module
    from mengzi.export.session import choose_providers, provider_options

    assert choose_providers("cpu") == ["CPUExecutionProvider"]
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ExportError, match="not in this onnxruntime build"):
        choose_providers("tensorrt")
    trt = provider_options("TensorrtExecutionProvider", tmp_path / "cache")
    assert trt["trt_fp16_enable"] and trt["trt_engine_cache_enable"] and (tmp_path / "cache").is_dir()

    out = _export(models, tmp_path, "sequence-classification", optimize=True)
    opened = []
    monkeypatch.setattr(predictor_module, "choose_providers",
                        lambda _: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(predictor_module, "make_session",
                        lambda path, providers, threads: opened.append(Path(path).name) or _FakeSession())
    predictor_module.Predictor(out, providers="auto")
    assert opened == ["model.unfused.onnx"]


class _FakeSession:
    def get_inputs(self):
        return []


@pytest.mark.parametrize("head", ["sequence-classification", "fill-mask", "token-classification"])
def test_long_texts_are_cut_by_characters_with_the_same_predictions(models, tmp_path, head):
    """A 900 kB record is cut by characters before tokenising (never tokenised whole), and the prediction equals the
    untruncated one; texts with few tokens per character (spaces, one endless word, English) stay exact too."""
    from mengzi.export import Predictor

    p = Predictor(_export(models, tmp_path, head), providers="cpu")
    unit = {"fill-mask": "今天天气很[MASK]。"}.get(head, "这部电影真好看，")
    cases = [unit * (900_000 // len(unit)),
             " " * 300_000 + unit * 200,  # spaces make no tokens: the cut widens
             "a" * 150 + " " + unit * 3000,  # a word past WordPiece's 100 characters is one [UNK]
             "unbelievably " * 8000 + unit,  # several tokens per English word, the cut lands mid-word
             unit * 3]  # short: untouched
    seen = []
    call = type(p.tokenizer).__call__  # instances cannot override dunders: spy through the class

    def spy(self, text, *args, **kw):
        seen.extend(len(t) for t in ([text] if isinstance(text, str) else text))
        seen.extend(len(t) for t in (args[0] if args and isinstance(args[0], list) else []) if isinstance(t, str))
        return call(self, text, *args, **kw)

    records = [{"text": t} for t in cases]
    if head == "sequence-classification":
        records += [{"text": cases[0], "text_pair": "我很喜欢"}, {"text": cases[2], "text_pair": cases[3]}]
    try:
        type(p.tokenizer).__call__ = spy
        got = p.predict(records)
    finally:
        type(p.tokenizer).__call__ = call
    assert max(seen) < len(cases[1]) + 1 < len(cases[0]), max(seen)  # the 900 kB text never reached it whole
    assert got[0] == p.predict([{"text": cases[0][: 4 * p.max_seq_len]}])[0]
    p.tokenizer.head = lambda text, tokens: text  # the reference: every text tokenised whole
    assert got == p.predict(records)
