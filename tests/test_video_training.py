"""Time flows end to end: a tiny MavorsVideoLM learns to tell "先出现X，然后出现Y" from its reverse on clips made of
exactly the same frames in the two orders; with the chunk order hidden from the LM, only the chunk-RoPE causal
aggregator can carry time, and its order-blind ablation stays at chance. Plus the recipe and a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mengzi.config import load_yaml
from mengzi.multimodal.video import VideoLMConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "video"
STEPS = 50


def examples(cfg: VideoLMConfig):
    from mengzi.multimodal.video.synthetic import TemporalOrderConfig, temporal_order_examples

    data = TemporalOrderConfig()
    train = temporal_order_examples(data, 48, seed=0, size=cfg.image_size, fps=cfg.fps, chunk_frames=cfg.chunk_frames)
    held_out = temporal_order_examples(data, 32, seed=1, size=cfg.image_size, fps=cfg.fps,
                                       chunk_frames=cfg.chunk_frames)
    return train, held_out


def trained_accuracy(cfg: VideoLMConfig) -> tuple[float, float, list[float]]:
    from mengzi.multimodal.video import MavorsVideoLM
    from mengzi.multimodal.video.train import temporal_order_accuracy, train_examples

    train, held_out = examples(cfg)
    model = MavorsVideoLM(cfg)
    before = temporal_order_accuracy(model, held_out)
    losses = train_examples(model, train, {"all": STEPS}, batch_size=16, lr=3e-3, progress=False)
    return before, temporal_order_accuracy(model, held_out), losses


def test_pairs_hold_the_same_frames_in_the_two_orders():
    from mengzi.multimodal.video.synthetic import TemporalOrderConfig, temporal_order_examples

    pairs = temporal_order_examples(TemporalOrderConfig(), 3, seed=0, size=32, fps=2.0, chunk_frames=2)
    for (forward, caption, reverse), (backward, caption_b, reverse_b) in zip(pairs[::2], pairs[1::2], strict=True):
        assert caption == reverse_b and reverse == caption_b and caption.startswith("先出现") and "然后出现" in caption
        frames = np.sort(forward.pixels.reshape(-1, 3 * 32 * 32), axis=0)
        np.testing.assert_array_equal(frames, np.sort(backward.pixels.reshape(-1, 3 * 32 * 32), axis=0))
        assert not np.array_equal(forward.pixels, backward.pixels)


def test_tiny_model_learns_temporal_order(data):
    before, after, losses = trained_accuracy(VideoLMConfig.tiny())
    assert before == pytest.approx(0.5, abs=0.15)  # an untrained model prefers the same caption for both orders
    assert after >= 0.9, f"held-out temporal-order accuracy {after:.2f} after {STEPS} steps (chance 0.5)"
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) / 5


def test_only_the_chunk_timeline_carries_order_when_the_lm_cannot_see_it(data):
    # the LM reads the chunks in a random order: time can only reach it through the aggregator's outputs
    _, with_timeline, _ = trained_accuracy(VideoLMConfig.tiny(lm_chunk_order="shuffled"))
    _, blind, blind_losses = trained_accuracy(VideoLMConfig.tiny(lm_chunk_order="shuffled", aggregator_positions="none",
                                                                 aggregator_mask="full"))
    assert with_timeline >= 0.9
    assert blind <= 0.6, f"an order-blind aggregator cannot know the order, yet scored {blind:.2f}"
    assert np.mean(blind_losses[-5:]) < 0.5  # not under-trained: it learnt everything but the order


# ------------------------------------------------------------------------------------------ recipe and run folder
def test_recipes_load_and_open_with_their_command():
    from mengzi.multimodal.video import VideoTrainConfig

    recipes = sorted(RECIPES.glob("*.yaml"))
    assert recipes
    for path in recipes:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("#") and "mengzi video " in text.split("\n\n")[0]
        cfg = load_yaml(VideoTrainConfig, path)
        assert cfg.stages and cfg.model.chunk_frames >= 1


def test_video_train_writes_a_run_folder(data, tmp_path):
    from mengzi.multimodal.video import MavorsVideoLM, VideoTrainConfig, video_train
    from mengzi.multimodal.video.config import VideoTrain
    from mengzi.multimodal.video.synthetic import TemporalOrderConfig

    cfg = VideoTrainConfig(out=str(tmp_path / "run"), data=TemporalOrderConfig(train_pairs=8, eval_pairs=4),
                           stages={"aggregator": 2, "all": 3}, train=VideoTrain(batch_size=4, micro_batch_size=2,
                                                                                eval_every=0, save_every=2))
    first = video_train(cfg)
    assert (first / "model" / "model.safetensors").is_file() and not (first / "checkpoints").exists()
    rows = [json.loads(line) for line in (first / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == [5]  # log_every 20: the last step
    assert [r["step"] for r in rows if r["split"] == "eval"] == [0, 5]
    results = json.loads((first / "metrics.json").read_text(encoding="utf-8"))
    assert results["steps"] == 5 and results["samples_seen"] == 20 and 0 <= results["held_out_temporal_order_acc"] <= 1
    assert "stage aggregator" in (first / "train.log").read_text() and "stage all" in (first / "train.log").read_text()
    model = MavorsVideoLM.load(first / "model")
    assert model.config.chunk_frames == cfg.model.chunk_frames
    with pytest.raises(ValueError, match="stages"):
        video_train(VideoTrainConfig(out=str(tmp_path / "bad"), stages={"lm-only": 3}))
    # a finished run is not silently trained again: --resume says it is finished, no flag is refused
    with pytest.raises(FileExistsError, match="--resume"):
        video_train(cfg)
    cfg.resume = True
    video_train(cfg)
    assert [json.loads(x)["step"] for x in (first / "metrics.jsonl").read_text().splitlines()] == [0, 5, 5]
