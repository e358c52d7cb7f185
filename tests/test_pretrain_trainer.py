"""The trainer end to end: run folder contents, stock-class loading, continued pre-training, and the same result
from 2 accelerate processes as from 1 (kill and resume: tests/test_resume.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mengzi.config import dump_yaml, load_yaml
from mengzi.pretrain.config import PretrainConfig

REPO = Path(__file__).resolve().parents[1]
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, data) -> Path:
    """400 real documents (CLUECorpusSmall sample) in a file of their own."""
    src = data / "corpus/uer_samples/CLUECorpusSmall_sampled.txt"
    out = tmp_path_factory.mktemp("corpus") / "small.txt"
    with open(src, encoding="utf-8") as f:
        out.write_text("".join(next(f) for _ in range(400)), encoding="utf-8")
    return out


def _config(tmp_path: Path, corpus: Path, name: str, **train) -> Path:
    cfg = PretrainConfig()
    cfg.out = str(tmp_path / name)
    cfg.model.overrides = dict(NO_DROPOUT)
    cfg.objectives = {"mlm": {}, "sop": {}, "pos": {"weight": 0.5}}
    cfg.corpus = load_yaml_sources(corpus, tmp_path)
    cfg.packing.max_seq_len = 64
    t = cfg.train
    t.max_steps, t.batch_size, t.micro_batch_size, t.lr, t.warmup_steps = 6, 8, 4, 1e-3, 2
    t.log_every, t.eval_every, t.eval_batches, t.save_every, t.threads = 1, 3, 2, 3, 1
    for k, v in train.items():
        setattr(t, k, v)
    path = tmp_path / f"{name}.yaml"
    path.write_text(dump_yaml(cfg), encoding="utf-8")
    return path


def load_yaml_sources(corpus: Path, tmp_path: Path):
    from mengzi.pretrain.corpus import CorpusConfig
    from mengzi.textfiles import Source

    return CorpusConfig(sources=[Source(path=str(corpus))], eval_fraction=0.05, cache_dir=str(tmp_path / "cache"))


def _run(*args, env=None, check=True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    proc = subprocess.run([*args], cwd=REPO, env=env, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "model.safetensors"))


def test_a_run_leaves_everything_and_the_model_loads_in_stock_classes(tmp_path, corpus_file):
    from transformers import BertForMaskedLM

    from mengzi.models.heads import PretrainingHeads
    from mengzi.pretrain.trainer import pretrain

    cfg = load_yaml(PretrainConfig, _config(tmp_path, corpus_file, "run"))
    out = pretrain(cfg)
    for name in ("config.yaml", "train.log", "corpus_stats.json", "metrics.jsonl", "metrics.json", "curves.png",
                 "run.json", "trainer_state.json", "model/config.json", "model/model.safetensors", "model/vocab.txt",
                 "model/mengzi_heads.json", "model/README.md"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()  # a finished run keeps model/, not the optimizer state
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    assert {"mlm_loss", "mlm_acc", "sop_loss", "sop_acc", "pos_loss", "pos_acc", "lr", "tokens_per_s"} <= set(train[0])
    assert [r["step"] for r in rows if r["split"] == "eval"] == [0, 3, 6]
    assert train[-1]["loss"] < train[0]["loss"]  # six steps at lr 1e-3 already lower the loss
    model = BertForMaskedLM.from_pretrained(out / "model")  # the stock class, no mengzi code
    assert torch.equal(model.bert.embeddings.word_embeddings.weight,
                       _weights(out)["bert.embeddings.word_embeddings.weight"])
    heads = PretrainingHeads.load(out / "model")
    assert list(heads) == ["pos"] and heads.specs["pos"]["type"] == "token-tagging"
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["steps"] == 6 and summary["corpus"]["documents"] > 300 and 0 < summary["eval"]["mlm_acc"] < 1

    # continued pre-training (the -fin recipe's path) starts from these weights and keeps the POS head
    cont = load_yaml(PretrainConfig, _config(tmp_path, corpus_file, "continued", max_steps=2, eval_every=0))
    cont.model.init_from = str(out / "model")
    cont_out = pretrain(cont)
    before, after = _weights(out), _weights(cont_out)
    assert before.keys() == after.keys()
    drift = max((before[k] - after[k]).abs().max().item() for k in before)
    assert 0 < drift < 0.05  # moved a little from the trained weights, not re-initialised
    assert "head pos: continued from" in (cont_out / "train.log").read_text()


def test_existing_run_needs_resume_or_overwrite(tmp_path, corpus_file):
    from mengzi.pretrain.trainer import pretrain

    cfg = load_yaml(PretrainConfig, _config(tmp_path, corpus_file, "again", max_steps=1, save_every=1))
    pretrain(cfg)
    with pytest.raises(FileExistsError, match="--resume to continue or --overwrite"):
        pretrain(cfg)


def test_two_accelerate_processes_match_one(tmp_path, corpus_file):
    one = _config(tmp_path, corpus_file, "one", max_steps=4, save_every=100, eval_every=0)
    two = _config(tmp_path, corpus_file, "two", max_steps=4, save_every=100, eval_every=0)
    _run(sys.executable, "-m", "mengzi", "pretrain", "--config", str(one))
    # on CPU, accelerate's torchrun launcher + Accelerator(cpu=True) joins the processes over gloo
    launched = _run(sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                    "--main_process_port", "29533", "-m", "mengzi", "pretrain", "--config", str(two))
    assert "4 steps of 8 examples (4 per micro-batch, 2 process(es), MULTI_CPU" in launched.stderr
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    losses = [[json.loads(x)["loss"] for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
               if '"train"' in x] for run in ("one", "two")]
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], abs=1e-4)


def test_streaming_corpus_with_lamb_and_gradient_checkpointing_trains(tmp_path, corpus_file):
    from mengzi.pretrain.trainer import pretrain

    cfg = load_yaml(PretrainConfig, _config(tmp_path, corpus_file, "stream", max_steps=3, eval_every=0,
                                            optimizer="lamb", gradient_checkpointing=True))
    cfg.corpus.stream, cfg.corpus.shuffle_buffer = True, 100
    out = pretrain(cfg)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == [1, 2, 3] and rows[-1]["split"] == "eval"
    assert json.loads((out / "corpus_stats.json").read_text())["files"] == 1
    train = [r for r in rows if r["split"] == "train"]
    assert train[-1]["loss"] < train[0]["loss"]
