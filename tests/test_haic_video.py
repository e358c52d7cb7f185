"""`haic_bench` with a saved video model: it captions every synthetic clip with the model, answers from those
captions and directly from the model's option scores, and writes both metrics (tiny untrained model, torch)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")


def test_haic_bench_runs_a_saved_video_model(tmp_path):
    from mengzi.multimodal.haic.benchmark import BenchmarkSizes, HaicConfig, haic_bench, load_benchmark
    from mengzi.multimodal.haic.qa import CATEGORIES
    from mengzi.multimodal.video.config import VideoLMConfig
    from mengzi.multimodal.video.model import MavorsVideoLM

    torch.manual_seed(0)
    MavorsVideoLM(VideoLMConfig.tiny()).save(tmp_path / "model")
    out = haic_bench(HaicConfig(sizes=BenchmarkSizes(3, 10), model=str(tmp_path / "model"), out=str(tmp_path / "run")))
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["direct_qa"]["categories"]) == set(CATEGORIES) and metrics["direct_qa"]["overall"]["n"] == 10
    captions = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert sorted(c["clip_id"] for c in captions) == sorted(load_benchmark(out / "benchmark").captions)
    assert metrics["captions"] == str(tmp_path / "model")
