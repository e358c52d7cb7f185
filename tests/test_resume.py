"""Every stage trains on the one engine, so one test covers their kill and resume: a run is SIGKILLed after a
checkpoint, resumed with --resume, and must end with the weights, metrics.jsonl rows and metrics.json figures of a
run that never stopped (dropout on, so the RNG state must come back too). Only wall-clock figures may differ."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mengzi.config import dump_yaml

REPO = Path(__file__).resolve().parents[1]
TIMING = {"train_seconds", "train_samples_per_s", "samples_per_s", "tokens_per_s", "seconds"}
GOOD = ["这个很好", "非常好用", "好极了真棒", "质量很好", "服务好", "好评满分"]
BAD = ["太差了", "质量很差", "非常失望", "差评退货", "不值这个价", "糟糕透顶"]


def _pretrain(tmp: Path, data: Path):
    from mengzi.pretrain.config import PretrainConfig
    from mengzi.pretrain.corpus import CorpusConfig
    from mengzi.textfiles import Source

    corpus = tmp / "corpus.txt"
    with open(data / "corpus/uer_samples/CLUECorpusSmall_sampled.txt", encoding="utf-8") as f:
        corpus.write_text("".join(next(f) for _ in range(300)), encoding="utf-8")
    cfg = PretrainConfig(objectives={"mlm": {}, "sop": {}})
    cfg.corpus = CorpusConfig(sources=[Source(path=str(corpus))], eval_fraction=0.05, cache_dir=str(tmp / "cache"))
    cfg.packing.max_seq_len = 64
    t = cfg.train
    t.max_steps, t.batch_size, t.micro_batch_size, t.lr, t.warmup_steps = 40, 8, 4, 1e-3, 2
    t.log_every, t.eval_every, t.eval_batches, t.save_every, t.threads = 3, 20, 2, 5, 1
    return ["pretrain"], cfg


def _finetune(tmp: Path, data: Path, **overrides):
    import csv

    from mengzi.finetune.userdata import UserFinetuneConfig
    from mengzi.models.load import init_model, save_pretrained

    model, tok = init_model("mengzi-bert-tiny", seed=0, overrides=overrides)
    save_pretrained(model, tok, tmp / "base")
    for name, n in (("train", 96), ("dev", 24)):
        with open(tmp / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "sentiment"])
            for i in range(n):
                words = GOOD if i % 2 else BAD
                writer.writerow([words[(i * 7 + n) % 6] + words[i % 6], "good" if i % 2 else "bad"])
    cfg = UserFinetuneConfig(model=str(tmp / "base"))
    cfg.dataset.train, cfg.dataset.dev = str(tmp / "train.csv"), str(tmp / "dev.csv")
    cfg.dataset.text, cfg.dataset.label = "review", "sentiment"
    t = cfg.train
    t.epochs, t.batch_size, t.micro_batch_size, t.lr, t.max_seq_len = 5, 8, 4, 5e-4, 16
    t.log_every, t.eval_every, t.save_every, t.threads, t.mixed_precision = 3, 12, 5, 1, "no"
    return ["finetune"], cfg


def _textgen(tmp: Path, data: Path):
    from mengzi.textfiles import iter_texts
    from mengzi.textgen.config import TextGenConfig
    from mengzi.tokenizer.sentencepiece import train_sentencepiece

    train_sentencepiece(iter_texts([data / "corpus/uer_samples/CLUECorpusSmall_sampled.txt"]), tmp / "tok",
                        kind="t5", vocab_size=8128)
    rows = [{"source": f"关键词：{GOOD[i % 6]}{BAD[i % 5]}", "target": GOOD[i % 6]} for i in range(24)]
    (tmp / "pairs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    cfg = TextGenConfig(model="mengzi-t5-tiny", from_scratch=True, tokenizer=str(tmp / "tok"), task="pairs",
                        overrides={"d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4})
    cfg.dataset.train = cfg.dataset.dev = str(tmp / "pairs.jsonl")
    t = cfg.train
    t.max_steps, t.batch_size, t.micro_batch_size, t.log_every, t.save_every = 40, 4, 2, 3, 5
    t.max_eval_examples, t.eval_at_start, t.threads = 4, True, 1
    cfg.generation.max_new_tokens = 4
    return ["textgen", "train"], cfg


def _oscar(tmp: Path, data: Path):
    from mengzi.multimodal.oscar.config import OscarTrainConfig

    cfg = OscarTrainConfig(train_size=16, eval_size=4)
    t = cfg.train
    t.max_steps, t.batch_size, t.micro_batch_size, t.log_every, t.save_every, t.threads = 40, 4, 2, 3, 5, 1
    return ["oscar", "train"], cfg


def _video(tmp: Path, data: Path):
    from mengzi.multimodal.video import VideoTrainConfig
    from mengzi.multimodal.video.synthetic import TemporalOrderConfig

    cfg = VideoTrainConfig(data=TemporalOrderConfig(train_pairs=8, eval_pairs=4), stages={"aggregator": 10, "all": 30})
    t = cfg.train
    t.batch_size, t.micro_batch_size, t.log_every, t.eval_every, t.save_every = 4, 2, 3, 20, 5
    return ["video", "train"], cfg


STAGES = {"pretrain": _pretrain, "finetune": _finetune, "textgen": _textgen, "oscar": _oscar, "video": _video}


def _launch(command: list[str], config: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mengzi", *command, "--config", str(config), *flags], cwd=REPO,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    return err


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def _rows(run: Path) -> list[dict]:
    return [_without_timing(json.loads(x)) for x in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_killed_run_resumes_to_the_figures_of_an_unkilled_one(stage, tmp_path, data):
    command, cfg = STAGES[stage](tmp_path, data)
    runs = {}
    for name in ("whole", "killed"):
        cfg.out = str(tmp_path / name)
        runs[name] = tmp_path / f"{name}.yaml"
        runs[name].write_text(dump_yaml(cfg), encoding="utf-8")
    _finish(_launch(command, runs["whole"]))
    proc = _launch(command, runs["killed"])
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if any(int(p.name[5:]) >= 10 for p in checkpoints.glob("step-*") if (p / "trainer_state.json").is_file()):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "metrics.json").exists()
    with pytest.raises(AssertionError, match="--resume"):  # a run folder in use is not silently restarted
        _finish(_launch(command, runs["killed"]))
    assert "resumed from" in _finish(_launch(command, runs["killed"], "--resume"))

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    a, b = load_file(str(whole / "model" / "model.safetensors")), load_file(str(killed / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    assert _rows(killed) == _rows(whole)  # each step once, same losses, samples and tokens seen
    figures = [_without_timing(json.loads((run / "metrics.json").read_text(encoding="utf-8"))) for run in (whole, killed)]
    for f in figures:
        f.pop("task", None)  # a user task is named after its run folder
    assert figures[1] == figures[0]
    assert json.loads((killed / "run.json").read_text())["status"] == "finished" and not checkpoints.exists()
    # resuming a finished run changes nothing
    assert "already finished" in _finish(_launch(command, runs["killed"], "--resume"))


def test_finetune_on_two_processes_matches_one_and_fsdp_on_cpu_is_refused(tmp_path, data):
    """accelerate launch --multi_gpu on a CPU machine joins 2 processes over gloo; without dropout the weights and
    the logged figures equal a 1-process run's. FSDP through accelerate is GPU-only: on CPU it is refused, not
    silently run as plain data parallelism."""
    command, cfg = _finetune(tmp_path, data, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    cfg.train.epochs = 1
    for name in ("one", "two"):
        cfg.out = str(tmp_path / name)
        (tmp_path / f"{name}.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    _finish(_launch(command, tmp_path / "one.yaml"))
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--main_process_port", "29537", "-m", "mengzi", *command, "--config", str(tmp_path / "two.yaml")]
    run = subprocess.run(launch, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "2 process(es), MULTI_CPU" in run.stderr
    a, b = (load_file(str(tmp_path / n / "model" / "model.safetensors")) for n in ("one", "two"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-5, msg=key)
    rows = [[{k: v for k, v in r.items() if k in ("step", "loss", "samples_seen", "accuracy")} for r in _rows(tmp_path / n)]
            for n in ("one", "two")]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]]
    for x, y in zip(*rows):
        assert x["step"] == y["step"] and x.get("samples_seen") == y.get("samples_seen")
        assert x.get("loss", 0) == pytest.approx(y.get("loss", 0), abs=1e-4) and x.get("accuracy") == y.get("accuracy")
    fsdp = (REPO / "recipes/accelerate/fsdp.yaml").read_text().replace("num_processes: 8", "num_processes: 2").replace(
        "use_cpu: false", "use_cpu: true").replace("mixed_precision: bf16", "mixed_precision: 'no'")
    (tmp_path / "fsdp.yaml").write_text(fsdp, encoding="utf-8")
    launch[3:8] = ["--config_file", str(tmp_path / "fsdp.yaml"), "--main_process_port", "29538"]
    run = subprocess.run(launch, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    assert run.returncode != 0 and "FSDP through accelerate needs GPUs" in run.stderr
