"""The video LM's shape: chunking, SigLIP tower, aggregator, projector and the causal LM preset (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from ...config import option
from ...engine.args import PRECISION_HELP, TrainArgs
from .synthetic import TemporalOrderConfig


@dataclass
class VideoLMConfig:
    lm_preset: str = option("mengzi-gpt-neo-tiny", "causal-LM preset the visual tokens are spliced into")
    lm_overrides: dict = option({}, "config fields of the LM preset to change, e.g. {hidden_size: 64}")
    tokenizer: str = option("", "tokenizer folder or file; empty: the LM preset's own")
    placeholder: str = option("<video>", "special token replaced by the projected visual tokens")
    fps: float = option(1.0, "frames per second the video is resampled to before chunking")
    chunk_frames: int = option(16, "frames per chunk (F): the temporal extent of the 3D patch embedding")
    image_size: int = option(224, "frames and image tiles are resized to this square size")
    max_tiles: int = option(6, "most sub-images an image is cut into (plus the thumbnail)")
    patch_size: int = option(16, "SigLIP patch size; image_size / patch_size must be even (2x2 pooling)")
    vision_hidden: int = option(384, "SigLIP hidden size")
    vision_layers: int = option(6, "SigLIP transformer layers")
    vision_heads: int = option(6, "SigLIP attention heads")
    vision_intermediate: int = option(1536, "SigLIP MLP size")
    aggregator_layers: int = option(2, "causal inter-chunk transformer layers")
    aggregator_heads: int = option(6, "inter-chunk attention heads")
    rope_base: float = option(100.0, "rotary base; positions are chunk indices, so a small base still turns "
                              "noticeably between neighbouring chunks")
    aggregator_positions: Literal["chunk", "none"] = option(
        "chunk", "'chunk': rotary position = chunk index; 'none': every chunk at position 0 (ablation)")
    aggregator_mask: Literal["causal", "full"] = option(
        "causal", "'causal': a chunk sees itself and earlier chunks; 'full': all chunks (ablation)")
    lm_chunk_order: Literal["time", "shuffled"] = option(
        "time", "'time': visual tokens enter the LM in chunk order; 'shuffled': in a random chunk order, a probe "
        "that hides order from the LM so only the aggregator can carry time")
    projector_hidden: int = option(0, "projector MLP hidden size; 0: the LM's hidden size")
    seed: int = option(0, "initialisation seed")

    @classmethod
    def tiny(cls, **changes) -> VideoLMConfig:
        """A model that trains in seconds on one CPU thread: 32px frames, 8px patches, 2-frame chunks, 64-d LM."""
        base = cls(lm_overrides={"hidden_size": 64, "num_heads": 4, "max_position_embeddings": 256,
                                 "window_size": 64},
                   fps=2.0, chunk_frames=2, image_size=32, max_tiles=4, patch_size=8, vision_hidden=32,
                   vision_layers=1, vision_heads=2, vision_intermediate=64, aggregator_layers=1, aggregator_heads=2,
                   projector_hidden=64)
        return replace(base, **changes)

    def vision_config(self):
        from transformers import SiglipVisionConfig

        return SiglipVisionConfig(hidden_size=self.vision_hidden, intermediate_size=self.vision_intermediate,
                                  num_hidden_layers=self.vision_layers, num_attention_heads=self.vision_heads,
                                  image_size=self.image_size, patch_size=self.patch_size, num_channels=3,
                                  vision_use_head=False)


@dataclass
class VideoTrain(TrainArgs):
    """The engine's `TrainArgs` with the video LM's defaults; the steps are the stages' (`stages`), not max_steps."""

    max_steps: int = option(0, "set by `stages` (their steps add up); leave 0", min=0, max=0)
    batch_size: int = option(16, "clips per step", min=1)
    micro_batch_size: int = option(16, "clips per forward pass; accumulation makes up batch_size", min=1)
    lr: float = option(3e-3, "AdamW learning rate (constant after a 10-step warm-up)", min=0)
    weight_decay: float = option(0.0, "AdamW weight decay (not on biases and norms)", min=0)
    schedule: Literal["linear", "cosine", "constant"] = option("constant", "decay after warmup")
    warmup_steps: int = option(10, "linear warmup steps", min=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = option("no", PRECISION_HELP)
    seed: int = option(0, "seed of the batch draws and dropout", min=0)
    threads: int = option(1, "torch threads (0: torch's default)", min=0)
    eval_every: int = option(100, "steps between held-out evaluations (0: only at the end)", min=0)
    eval_at_start: bool = option(True, "evaluate the untrained model first (chance is 0.5)")
    save_every: int = option(100, "steps between checkpoints a killed run resumes from (0: at every evaluation)",
                             min=0)


@dataclass
class VideoTrainConfig:
    out: str = option("runs/video/temporal-order-tiny", "run folder (config, metrics, checkpoints, final model)")
    model: VideoLMConfig = option(VideoLMConfig.tiny(), "the video LM to build")
    data: TemporalOrderConfig = option(TemporalOrderConfig(), "synthetic temporal-order clips")
    stages: dict = option({"all": 300}, "training stages in order, name -> steps (aggregator | all-but-lm | all)")
    train: VideoTrain = option(VideoTrain(), "the optimisation")
    resume: bool = option(False, "continue from the run folder's last complete checkpoint")
    overwrite: bool = option(False, "start afresh in a run folder that already has results")
