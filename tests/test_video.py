"""Design proofs for the Mavors-style video encoder: inflation, chunk-index RoPE, causality over chunks, timestamps
under frame dropping, independent sub-images, staged freezing and save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mengzi.multimodal.video import VideoLMConfig, best_grid, chunk_video, image_to_clip

PROMPT = "视频里先后出现了什么？"


@pytest.fixture(scope="module")
def model(data):
    from mengzi.multimodal.video import MavorsVideoLM

    return MavorsVideoLM(VideoLMConfig.tiny(aggregator_layers=2)).eval()


def random_video(frames: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ intra-chunk encoder
def test_repeated_frame_chunk_equals_2d_image_embedding():
    from mengzi.multimodal.video.encoder import IntraChunkEncoder

    cfg = VideoLMConfig.tiny(chunk_frames=4)
    torch.manual_seed(0)
    encoder = IntraChunkEncoder(cfg.vision_config(), cfg.chunk_frames).eval()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        as_chunk = encoder(images.unsqueeze(1).expand(-1, 4, -1, -1, -1))
        as_image = encoder(images)  # SigLIP's own 2D patch conv
        embeddings = encoder.vision.embeddings
        # the inflated kernel is the 2D one averaged over time: a mixed chunk embeds as the mean of its frames
        frames = torch.rand(1, 4, 3, 32, 32) * 2 - 1
        mixed = embeddings(frames)
        mean_of_frames = torch.stack([embeddings(frames[:, f]) for f in range(4)]).mean(0)
    assert as_chunk.shape == (3, (32 // 8 // 2) ** 2, cfg.vision_hidden)
    torch.testing.assert_close(as_chunk, as_image, atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed, mean_of_frames, atol=1e-5, rtol=0)
    assert (mixed - embeddings(frames[:, 0])).abs().max() > 1e-2  # not just reading the first frame


# ------------------------------------------------------------------------------------------ aggregator RoPE
def test_shifting_chunk_positions_keeps_logits_and_same_chunk_tokens_see_no_rotation():
    from mengzi.multimodal.video.aggregator import InterChunkAggregator

    torch.manual_seed(0)
    aggregator = InterChunkAggregator(hidden=32, heads=2, layers=1, rope_base=100.0)
    layer = aggregator.layers[0]
    x = torch.randn(1, 12, 32)
    chunks = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 3, 3, 3, 3]])
    logits = layer.attention_logits(x, *aggregator.rotary_tables(chunks))
    shifted = layer.attention_logits(x, *aggregator.rotary_tables(chunks + 37))
    unrotated = layer.attention_logits(x, *aggregator.rotary_tables(torch.zeros_like(chunks)))
    torch.testing.assert_close(shifted, logits, atol=1e-4, rtol=1e-5)
    same_chunk = chunks[0].unsqueeze(0) == chunks[0].unsqueeze(1)
    torch.testing.assert_close(logits[..., same_chunk], unrotated[..., same_chunk], atol=1e-5, rtol=1e-5)
    assert (logits[..., ~same_chunk] - unrotated[..., ~same_chunk]).abs().max() > 1e-2  # time does rotate


# ------------------------------------------------------------------------------------------ causality
def test_changing_a_later_chunk_never_changes_earlier_outputs(model):
    clip = model.clip_video(random_video(8))  # 4 chunks of 2 frames
    later = model.clip_video(random_video(8, seed=1))
    changed = clip.select(range(4))
    changed.pixels = changed.pixels.copy()
    changed.pixels[2:] = later.pixels[2:]  # chunks 2 and 3 differ, 0 and 1 are the same
    t = model.encoder.tokens_per_chunk
    with torch.no_grad():
        before, after = model.aggregate([clip, changed])
        torch.testing.assert_close(after[:2], before[:2], atol=1e-6, rtol=0)
        assert (after[2:] - before[2:]).abs().max() > 1e-3
        # and through the projector into the causal LM: logits over the first two chunks' tokens do not move
        inputs, _, _ = model.batch(model.prefixes([clip, changed], [PROMPT, PROMPT]), [[], []])
        logits = model.lm(inputs_embeds=inputs).logits
    torch.testing.assert_close(logits[1][: 1 + 2 * t], logits[0][: 1 + 2 * t], atol=1e-5, rtol=0)
    assert (logits[1][-1] - logits[0][-1]).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------ timestamps
def test_timestamps_and_chunk_positions_survive_frame_dropping():
    frames = random_video(56, size=16)
    times = np.arange(56) / 10.0  # a 10 fps source, resampled to 2 fps, 2 frames a chunk: a chunk per second
    full = chunk_video(frames, times, fps=2.0, chunk_frames=2, size=16)
    assert list(full.chunk_index) == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(full.start, [0, 1, 2, 3, 4, 5])
    np.testing.assert_allclose(full.end, [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    keep = ~((times >= 1.8) & (times < 3.2)) & (times >= 1.0)  # drop the first second and 1.8 s..3.2 s
    dropped = chunk_video(frames[keep], times[keep], fps=2.0, chunk_frames=2, size=16)
    assert list(dropped.chunk_index) == [1, 3, 4, 5]  # chunk 2 vanished, chunk 0 too: positions keep their gaps
    survivors = [1, 3, 4, 5]
    np.testing.assert_allclose(dropped.start, [1.0, 3.2, 4.0, 5.0])  # 3.0 is gone: its slot takes 3.2
    np.testing.assert_allclose(dropped.end, full.end[survivors])
    np.testing.assert_array_equal(dropped.pixels[[0, 2, 3]], full.pixels[[1, 4, 5]])
    # irregular timestamps (a 29.97 fps source with jitter) land on the same grid
    jitter = np.arange(170) / 29.97 + np.random.default_rng(0).uniform(-0.005, 0.005, 170)
    clip = chunk_video(random_video(170, size=16), jitter, fps=2.0, chunk_frames=4, size=16)
    assert list(clip.chunk_index) == [0, 1, 2] and np.isfinite(clip.frame_times).all()
    assert np.all(np.abs(clip.frame_times - (np.arange(12) / 2.0).reshape(3, 4)) < 1 / 29.97)


def test_last_chunk_is_padded_by_repeating_and_bad_input_is_refused():
    clip = chunk_video(random_video(5, size=16), None, fps=1.0, chunk_frames=4, size=16)
    assert clip.pixels.shape == (2, 4, 3, 16, 16)
    np.testing.assert_array_equal(clip.pixels[1, 1:], np.repeat(clip.pixels[1, :1], 3, axis=0))
    assert np.isnan(clip.frame_times[1, 1:]).all() and clip.end[1] == 4.0
    with pytest.raises(ValueError, match="uint8"):
        chunk_video(random_video(4).astype(np.float32), None, 1.0, 2, 16)
    with pytest.raises(ValueError, match="timestamp"):
        chunk_video(random_video(4), np.arange(3.0), 1.0, 2, 16)


# ------------------------------------------------------------------------------------------ images
def test_grid_matches_aspect_ratio():
    assert best_grid(200, 100, 6) == (2, 1)
    assert best_grid(100, 300, 6) == (1, 3)
    assert best_grid(640, 480, 6) == (3, 2)
    assert best_grid(100, 100, 1) == (1, 1)


def test_sub_images_do_not_affect_each_other(model):
    image = np.random.default_rng(1).integers(0, 256, (48, 96, 3), dtype=np.uint8)
    clip = model.clip_image(image)  # thumbnail + a 2x1 grid
    assert clip.num_chunks == 3 and list(clip.groups) == [0, 1, 2] and list(clip.chunk_index) == [0, 0, 0]
    np.testing.assert_array_equal(clip.pixels[1, 0], clip.pixels[1, -1])  # each tile repeated over the chunk
    changed = clip.select(range(3))
    changed.pixels = changed.pixels.copy()
    changed.pixels[2] = -changed.pixels[2]
    with torch.no_grad():
        before, after = model.aggregate([clip, changed])
        alone = model.aggregate([clip.select([1])])[0]
    torch.testing.assert_close(after[:2], before[:2], atol=1e-6, rtol=0)
    assert (after[2] - before[2]).abs().max() > 1e-3
    torch.testing.assert_close(alone[0], before[1], atol=1e-5, rtol=0)  # a tile aggregates as if alone
    image_clip = image_to_clip(image[:, :48], size=32, chunk_frames=2, max_tiles=1)
    assert image_clip.num_chunks == 1  # a one-tile grid is the thumbnail alone


# ------------------------------------------------------------------------------------------ stages, files
def test_stages_freeze_what_they_say(model):
    from mengzi.multimodal.video import set_stage

    def total(module):
        return sum(p.numel() for p in module.parameters())

    source_kernel = sum(p.numel() for p in model.encoder.source_kernel_parameters())
    counts = set_stage(model, "aggregator")
    assert counts == {"encoder": 0, "aggregator": total(model.aggregator), "projector": total(model.projector),
                      "lm": 0}
    counts = set_stage(model, "all-but-lm")
    assert counts["encoder"] == total(model.encoder) - source_kernel > 0 and counts["lm"] == 0
    counts = set_stage(model, "all")
    assert counts["lm"] == total(model.lm) and counts["encoder"] == total(model.encoder) - source_kernel
    with pytest.raises(ValueError, match="unknown training stage"):
        set_stage(model, "lm-only")
    # a step in the first stage moves the aggregator and projector only
    set_stage(model, "aggregator")
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model([model.clip_video(random_video(4))], [PROMPT], ["先出现红色方块，然后出现蓝色圆形"]).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    assert any(not torch.equal(params[n], v) for n, v in trained.items())
    set_stage(model, "all")


def test_save_load_round_trip_gives_the_same_scores(model, tmp_path):
    from mengzi.multimodal.video import MavorsVideoLM

    clips = [model.clip_video(random_video(6, seed=3)), model.clip_image(random_video(1, seed=4)[0])]
    options = [["先出现红色方块，然后出现蓝色圆形", "先出现蓝色圆形，然后出现红色方块"], ["红色", "蓝色", "绿色"]]
    before = model.score(clips, [PROMPT, "图里有什么？"], options)
    model.save(tmp_path / "video-lm")
    loaded = MavorsVideoLM.load(tmp_path / "video-lm")
    assert loaded.placeholder_id == model.placeholder_id
    after = loaded.score(clips, [PROMPT, "图里有什么？"], options)
    assert [len(s) for s in before] == [len(s) for s in after] == [2, 3]
    np.testing.assert_allclose(sum(after, []), sum(before, []), atol=1e-5)
    texts = loaded.generate(clips[:1], [PROMPT], max_new_tokens=4)
    assert isinstance(texts[0], str) and texts == loaded.generate(clips[:1], [PROMPT], max_new_tokens=4, num_beams=1)
    with pytest.raises(FileNotFoundError, match="not a MavorsVideoLM folder"):
        MavorsVideoLM.load(tmp_path)
