"""Configs of `mengzi oscar train` and `mengzi oscar caption`, and the input layout they fix. Torch-free, so the
command line builds its parser without importing torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mengzi.config import option
from mengzi.engine.args import PRECISION_HELP, TrainArgs


@dataclass(frozen=True)
class Layout:
    caption_tokens: int = option(20, "caption word pieces, [CLS]/[SEP] excluded")
    tag_tokens: int = option(10, "tag word pieces, the closing [SEP] excluded")
    max_regions: int = option(50, "region features at most (Oscar: 50 of 2054 dims)")

    @property
    def caption_len(self) -> int:
        return self.caption_tokens + 2


@dataclass
class OscarTrain(TrainArgs):
    """The engine's `TrainArgs` with Oscar's defaults."""

    max_steps: int = option(300, "optimizer steps", min=1)
    lr: float = option(5e-4, "peak learning rate (linear warm-up then linear decay)", min=0)
    seed: int = option(0, "seed for weights, data and masking", min=0)
    save_every: int = option(100, "optimizer steps between resumable checkpoints (0: at the end only)", min=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = option("no", PRECISION_HELP)


@dataclass
class OscarTrainConfig:
    model: str = option("mengzi-oscar-tiny", "preset name (fresh weights) or a saved Oscar folder to start from")
    task: Literal["captioning", "retrieval"] = option("captioning", "captioning (MLM head) or retrieval (matching)")
    data: str = option("synthetic", "'synthetic' (rendered shape scenes), 'fixtures' (scikit-image photos) or a "
                                    "JSONL file of {image|features, caption, tags}")
    eval_data: str = option("", "held-out JSONL file (default: fresh synthetic scenes for 'synthetic')")
    train_size: int = option(800, "synthetic training scenes")
    eval_size: int = option(100, "held-out scenes for evaluation (distinct captions for retrieval)")
    boxes: str = option("grid", "region box proposer: grid | superpixel (not a detector)")
    encoder: str = option("stats", "region appearance encoder: stats | cnn (seeded random, not a detector)")
    grid: int = option(4, "boxes per side for grid (about grid**2 superpixels)")
    max_regions: int = option(50, "at most this many regions per image (Oscar: 50)")
    caption_tokens: int = option(20, "caption word pieces (excluding [CLS]/[SEP])")
    tag_tokens: int = option(10, "tag word pieces (excluding the closing [SEP])")
    mask_prob: float = option(0.15, "captioning: share of caption tokens masked (Oscar: 0.15)")
    max_masked: int = option(3, "captioning: at most this many masked tokens per caption (Oscar: 3)")
    num_labels: int = option(2, "retrieval: 2 (match / not) or 3 (match / caption replaced / tags polluted)")
    pollute_prob: float = option(0.5, "retrieval: share of negatives made by polluting the tags")
    beams: int = option(1, "captioning evaluation: beam size (1 = greedy)")
    overrides: dict = option({}, "config fields to change on a preset, e.g. {num_hidden_layers: 1}")
    train: OscarTrain = option(OscarTrain(), "the optimisation (train.seed also draws the synthetic scenes, the region "
                                             "encoder and the masks)")
    out: str = option("runs/oscar", "run folder")
    resume: bool = option(False, "continue from the run folder's last complete checkpoint")
    overwrite: bool = option(False, "start afresh in a run folder that already has results")

    @property
    def layout(self) -> Layout:
        return Layout(self.caption_tokens, self.tag_tokens, self.max_regions)


@dataclass
class OscarCaptionConfig:
    model: str = option("", "a trained Oscar captioning folder (run/model)")
    images: list[str] = option([], "image files to caption")
    features: list[str] = option([], "precomputed (n, 2054) region-feature files (.npy/.npz/.safetensors)")
    tags: list[str] = option([], "one comma-separated tag string per image/feature file (English or Chinese)")
    synthetic: int = option(0, "also caption this many fresh synthetic scenes (their tags come with them)")
    fixtures: bool = option(False, "also caption the scikit-image photos (hand-written tags)")
    seed: int = option(12345, "seed of the synthetic scenes")
    beams: int = option(1, "beam size (1 = greedy)")
    max_tokens: int = option(0, "caption length limit in word pieces (0: the model's caption_tokens)")
    length_penalty: float = option(1.0, "beam search: final score = log p / length ** this")
    out: str = option("", "write the captions here as JSONL (optional)")
