"""Cut a video into F-frame chunks on a fixed-FPS timeline, keeping where each chunk sits in the original video.

The timeline is absolute: grid slot k is time k / fps and belongs to chunk k // F. A source frame fills the slot
nearest to its timestamp (within half a slot or half the source's frame spacing, whichever is larger), so frames
that were dropped leave empty slots, empty chunks disappear, and the surviving chunks keep their timestamps and
their chunk index: the aggregator's rotary positions are those indices, so a gap in the video is a gap in
positions. Slots left empty inside a kept chunk (and the tail of the last chunk) repeat the chunk's nearest real
frame. Pixels are scaled to [-1, 1] as SigLIP expects (mean 0.5, std 0.5). numpy only: no torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Clip:
    """What the model reads: N chunks of F frames, each with its chunk index on the original timeline.

    `groups` separates sequences the aggregator must keep apart (an image's thumbnail and its sub-images); all
    chunks of a video are group 0.
    """

    pixels: np.ndarray  # [N, F, 3, size, size] float32 in [-1, 1]
    chunk_index: np.ndarray  # [N] int64: slot // F on the original timeline (the rotary position)
    start: np.ndarray  # [N] float64 seconds: timestamp of the chunk's first real frame
    end: np.ndarray  # [N] float64 seconds: timestamp of the chunk's last real frame
    frame_times: np.ndarray  # [N, F] float64 seconds of the source frame in each slot; NaN where padded
    groups: np.ndarray = field(default=None)  # [N] int64; None means all 0
    fps: float = 1.0

    def __post_init__(self):
        n = len(self.pixels)
        if self.groups is None:
            self.groups = np.zeros(n, dtype=np.int64)
        if self.pixels.ndim != 5 or self.pixels.shape[2] != 3:
            raise ValueError(f"Clip.pixels must be [N, F, 3, H, W], got {self.pixels.shape}")
        for name in ("chunk_index", "start", "end", "frame_times", "groups"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Clip.{name} has {len(getattr(self, name))} rows for {n} chunks")

    @property
    def num_chunks(self) -> int:
        return len(self.pixels)

    @property
    def chunk_frames(self) -> int:
        return self.pixels.shape[1]

    def select(self, rows) -> Clip:
        """A clip of some of the chunks (their indices and timestamps unchanged)."""
        rows = np.asarray(rows)
        return Clip(self.pixels[rows], self.chunk_index[rows], self.start[rows], self.end[rows],
                    self.frame_times[rows], self.groups[rows], self.fps)


def to_pixels(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> float32 [T, 3, size, size] in [-1, 1] (bicubic resize when the size differs)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3] RGB, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB, got {frames.dtype}")
    if frames.shape[1:3] != (size, size):
        from PIL import Image

        frames = np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in frames])
    return (frames.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2)


def timeline_slots(timestamps: np.ndarray, fps: float) -> tuple[np.ndarray, int]:
    """For each grid slot from the first to the last frame: the index of the frame filling it, or -1 (a gap);
    and the first slot's number on the absolute grid."""
    order = np.argsort(timestamps, kind="stable")
    times = timestamps[order]
    spacing = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / fps
    tolerance = 0.5 * max(1.0 / fps, spacing) + 1e-9
    first, last = int(np.round(times[0] * fps)), int(np.round(times[-1] * fps))
    grid = np.arange(first, last + 1) / fps
    nearest = np.zeros(len(grid), dtype=np.int64)
    if len(times) > 1:
        right = np.clip(np.searchsorted(times, grid), 1, len(times) - 1)
        left_closer = np.abs(times[right - 1] - grid) <= np.abs(times[right] - grid)
        nearest = np.where(left_closer, right - 1, right)
    filled = np.abs(times[nearest] - grid) <= tolerance
    return np.where(filled, order[nearest], -1), first


def chunk_video(frames: np.ndarray, timestamps: np.ndarray | None, fps: float, chunk_frames: int,
                size: int) -> Clip:
    """Resample `frames` ([T, H, W, 3] uint8, at `timestamps` seconds; None: already at `fps`) to `fps`, group
    `chunk_frames` slots per chunk and return a `Clip` (see the module doc for gaps and padding)."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        raise ValueError("chunk_video: no frames")
    if fps <= 0 or chunk_frames < 1:
        raise ValueError(f"chunk_video: fps must be > 0 and chunk_frames >= 1 (got {fps}, {chunk_frames})")
    if timestamps is None:
        timestamps = np.arange(len(frames)) / fps
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if timestamps.shape != (len(frames),) or not np.isfinite(timestamps).all():
        raise ValueError(f"chunk_video: need one finite timestamp per frame ({len(frames)}), got {timestamps.shape}")
    slots, first = timeline_slots(timestamps, fps)
    lead = first % chunk_frames  # slot `first` sits at this offset inside chunk first // F
    tail = (-(lead + len(slots))) % chunk_frames
    slots = np.concatenate([np.full(lead, -1), slots, np.full(tail, -1)])
    by_chunk = slots.reshape(-1, chunk_frames)
    first_chunk = first // chunk_frames
    keep = (by_chunk >= 0).any(axis=1)
    used = np.unique(by_chunk[by_chunk >= 0])  # resize only the frames the timeline keeps
    resized = dict(zip(used.tolist(), to_pixels(frames[used], size), strict=True))
    pixels, index, start, end, frame_times = [], [], [], [], []
    for c in np.flatnonzero(keep):
        row = by_chunk[c]
        real = np.flatnonzero(row >= 0)
        # an empty slot repeats the nearest real frame of the chunk (earlier one on ties)
        filler = real[np.abs(np.arange(chunk_frames)[:, None] - real[None, :]).argmin(axis=1)]
        source = row[filler]
        pixels.append(np.stack([resized[i] for i in source.tolist()]))
        index.append(first_chunk + c)
        times = np.where(row >= 0, timestamps[np.maximum(row, 0)], np.nan)
        frame_times.append(times)
        start.append(np.nanmin(times))
        end.append(np.nanmax(times))
    return Clip(np.stack(pixels), np.asarray(index, dtype=np.int64), np.asarray(start), np.asarray(end),
                np.stack(frame_times), fps=float(fps))
