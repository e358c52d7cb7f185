"""Synthetic temporal-order clips: two visual events one after the other, captioned "先出现X，然后出现Y".

Each pair of clips holds exactly the same frames: event A's frames then event B's, and B's then A's. Each event
fills whole chunks, so every chunk looks the same in both clips and only the order of chunks differs: a model
can tell the two captions apart only if time flows from the chunk timeline through the aggregator into the LM.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...config import option
from .chunking import Clip, chunk_video

# event name -> (RGB colour, shape); one line an event
EVENTS: dict[str, tuple[tuple[int, int, int], str]] = {
    "红色方块": ((220, 40, 40), "square"),
    "蓝色圆形": ((40, 70, 220), "circle"),
    "绿色三角形": ((40, 180, 60), "triangle"),
    "黄色圆环": ((230, 200, 40), "ring"),
}
PROMPT = "视频里先后出现了什么？"


def caption(first: str, second: str) -> str:
    return f"先出现{first}，然后出现{second}"


@dataclass
class TemporalOrderConfig:
    events: list[str] = option(["红色方块", "蓝色圆形"], "events a clip's two halves are drawn from (see EVENTS)")
    train_pairs: int = option(64, "training pairs (each pair: the same frames in both orders)")
    eval_pairs: int = option(32, "held-out pairs, drawn with another seed")
    chunks_per_event: list[int] = option([1, 2], "inclusive range of chunks each event lasts")
    seed: int = option(0, "data seed (held-out data uses seed + 1)")


def draw_event(name: str, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """[frames, size, size, 3] uint8: one shape drifting across a noisy grey background."""
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}; known: {sorted(EVENTS)}")
    colour, shape = EVENTS[name]
    radius = rng.uniform(0.18, 0.3) * size
    start, velocity = rng.uniform(radius, size - radius, 2), rng.normal(0, 0.03 * size, 2)
    yy, xx = np.mgrid[:size, :size] + 0.5
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for f in range(frames):
        cy, cx = np.clip(start + f * velocity, radius, size - radius)
        dy, dx = yy - cy, xx - cx
        if shape == "square":
            inside = (np.abs(dy) < radius * 0.85) & (np.abs(dx) < radius * 0.85)
        elif shape == "circle":
            inside = dy**2 + dx**2 < radius**2
        elif shape == "triangle":
            inside = (dy < radius * 0.8) & (np.abs(dx) < (dy + radius) * 0.6)
        else:  # ring
            inside = np.abs(np.sqrt(dy**2 + dx**2) - radius * 0.75) < radius * 0.3
        frame = rng.normal(128, 12, (size, size, 3))
        frame[inside] = np.asarray(colour) + rng.normal(0, 10, (int(inside.sum()), 3))
        out[f] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def temporal_pair(first: str, second: str, size: int, fps: float, chunk_frames: int,
                  rng: np.random.Generator, chunks_per_event: tuple[int, int] = (1, 2)) -> tuple[Clip, Clip]:
    """(first then second, second then first): the same frames, each event filling whole chunks."""
    lo, hi = chunks_per_event
    a = draw_event(first, int(rng.integers(lo, hi + 1)) * chunk_frames, size, rng)
    b = draw_event(second, int(rng.integers(lo, hi + 1)) * chunk_frames, size, rng)
    forward = chunk_video(np.concatenate([a, b]), None, fps, chunk_frames, size)
    backward = chunk_video(np.concatenate([b, a]), None, fps, chunk_frames, size)
    return forward, backward


def temporal_order_examples(cfg: TemporalOrderConfig, pairs: int, seed: int, size: int, fps: float,
                            chunk_frames: int) -> list[tuple[Clip, str, str]]:
    """(clip, its caption, the reversed caption) for `pairs` pairs, both clips of every pair included."""
    if len(cfg.events) < 2:
        raise ValueError(f"TemporalOrderConfig.events needs two or more events, got {cfg.events}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(pairs):
        i, j = rng.choice(len(cfg.events), size=2, replace=False)
        first, second = cfg.events[i], cfg.events[j]
        forward, backward = temporal_pair(first, second, size, fps, chunk_frames, rng, tuple(cfg.chunks_per_event))
        out.append((forward, caption(first, second), caption(second, first)))
        out.append((backward, caption(second, first), caption(first, second)))
    return out
