"""Mavors-style video and images for Mengzi: F-frame chunks on a fixed-FPS timeline (`chunk_video`), images as
single-frame videos (`image_to_clip`), an intra-chunk encoder (inflated Conv3d + SigLIP ViT + 2x2 pooling), a causal
inter-chunk aggregator with chunk-index RoPE, and an MLP projector into a small causal LM (`MavorsVideoLM`).

Chunking and configs are numpy-only; the torch parts load on first use, so `import mengzi.multimodal.video` stays
light.
"""

from __future__ import annotations

from .chunking import Clip, chunk_video
from .config import VideoLMConfig, VideoTrainConfig
from .images import best_grid, image_to_clip

__all__ = ["Clip", "chunk_video", "image_to_clip", "best_grid", "VideoLMConfig", "MavorsVideoLM", "set_stage",
           "STAGES", "VideoTrainConfig", "video_train"]

_LAZY = {"MavorsVideoLM": "model", "set_stage": "stages", "STAGES": "stages",
         "video_train": "train"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(name)
