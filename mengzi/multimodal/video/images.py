"""Images as single-frame videos: a thumbnail of the whole image plus sub-images cut on the grid whose shape best
matches the image's aspect ratio; each one is repeated to fill a chunk and gets its own group, so the aggregator
treats every sub-image as an independent one-chunk video (they never attend to each other)."""

from __future__ import annotations

import math

import numpy as np

from .chunking import Clip, to_pixels


def best_grid(width: int, height: int, max_tiles: int) -> tuple[int, int]:
    """(columns, rows) with columns * rows <= max_tiles whose ratio is closest to width / height (in log scale);
    among equally close grids, the one with more tiles (more detail) wins."""
    if width <= 0 or height <= 0 or max_tiles < 1:
        raise ValueError(f"best_grid: need a positive image size and max_tiles >= 1 (got {width}x{height}, "
                         f"{max_tiles})")
    target = math.log(width / height)
    grids = [(c, r) for r in range(1, max_tiles + 1) for c in range(1, max_tiles // r + 1)]
    return min(grids, key=lambda g: (round(abs(math.log(g[0] / g[1]) - target), 9), -g[0] * g[1]))


def image_tiles(image: np.ndarray, size: int, max_tiles: int) -> list[np.ndarray]:
    """uint8 [size, size, 3] images: the thumbnail first, then the grid's sub-images row by row (none when the
    best grid is a single tile: the thumbnail already is the whole image)."""
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"image_to_clip: expected a uint8 [H, W, 3] RGB image, got {image.shape} {image.dtype}")
    image = image[:, :, :3]
    height, width = image.shape[:2]
    pil = Image.fromarray(image)
    tiles = [np.asarray(pil.resize((size, size), Image.BICUBIC))]
    cols, rows = best_grid(width, height, max_tiles)
    if cols * rows > 1:
        grid = np.asarray(pil.resize((cols * size, rows * size), Image.BICUBIC))
        tiles += [grid[r * size:(r + 1) * size, c * size:(c + 1) * size] for r in range(rows) for c in range(cols)]
    return tiles


def image_to_clip(image, size: int, chunk_frames: int, max_tiles: int) -> Clip:
    """A `Clip` of 1 + cols*rows one-chunk sequences (thumbnail, then sub-images), each frame repeated
    `chunk_frames` times; all at chunk index 0 and time 0, each in its own group."""
    tiles = image_tiles(np.asarray(image), size, max_tiles)
    pixels = to_pixels(np.stack(tiles), size)  # [n, 3, size, size]
    pixels = np.repeat(pixels[:, None], chunk_frames, axis=1)
    n = len(tiles)
    return Clip(pixels, np.zeros(n, dtype=np.int64), np.zeros(n), np.zeros(n), np.zeros((n, chunk_frames)),
                groups=np.arange(n, dtype=np.int64), fps=1.0)
