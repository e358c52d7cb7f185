"""Staged training (Mavors' recipe): first only the aggregator + projector learn (vision tower and LM frozen),
then everything but the LM, then all of it. The 2D patch kernel the 3D one was inflated from never trains: only the
image reference path reads it, and the chunk path has its own (inflated) copy."""

from __future__ import annotations

from torch import nn

STAGES: dict[str, tuple[str, ...]] = {
    "aggregator": ("aggregator", "projector"),
    "all-but-lm": ("encoder", "aggregator", "projector"),
    "all": ("encoder", "aggregator", "projector", "lm"),
}


def set_stage(model: nn.Module, stage: str) -> dict[str, int]:
    """Freeze `model` (a MavorsVideoLM) for `stage`; returns the trainable parameter count of each part."""
    if stage not in STAGES:
        raise ValueError(f"unknown training stage {stage!r}; known: {list(STAGES)}")
    model.requires_grad_(False)
    for part in STAGES[stage]:
        getattr(model, part).requires_grad_(True)
    for p in model.encoder.source_kernel_parameters():
        p.requires_grad_(False)
    return {part: sum(p.numel() for p in getattr(model, part).parameters() if p.requires_grad)
            for part in ("encoder", "aggregator", "projector", "lm")}
