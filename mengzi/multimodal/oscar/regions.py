"""Region features for Oscar WITHOUT an object detector: box proposals + an appearance encoder, 2054 dims a region.

Oscar reads up to 50 regions, each 2048 appearance dims (Faster R-CNN / VinVL pooled features) + 6 box-geometry
dims (x1, y1, x2, y2, w, h, normalised by the image width and height as Oscar does). No detector weights ship
with mengzi, so this module keeps the 2054 contract with stand-ins and says so in every description it returns:

* box proposers (`BOX_PROPOSERS`): `grid` (k x k equal cells) and `superpixel` (bounding boxes of SLIC
  superpixels, largest first). They are not object proposals.
* appearance encoders (`APPEARANCE_ENCODERS`): `stats` (colour mean/std, a 4x4x4 colour histogram, a hue
  histogram, a gradient-orientation histogram and edge density, expanded to 2048 dims by a fixed random ReLU
  projection seeded with `seed`) and `cnn` (a 3-layer convolutional net with seeded random weights, never
  trained, pooled to 2048 channels). Both are NOT detector features: they encode colour, texture and layout only.

Users with real detector features pass them as a file (`load_region_features`: .npy, .npz or .safetensors holding
an (n, 2054) array), which takes the place of the extractor.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

APPEARANCE_DIM = 2048
BOX_DIM = 6
FEATURE_DIM = APPEARANCE_DIM + BOX_DIM
MAX_REGIONS = 50
NOT_DETECTOR = "NOT object-detector features"


@dataclass
class RegionFeatures:
    feats: np.ndarray  # (n, 2054) float32: appearance + box geometry
    boxes: np.ndarray  # (n, 4) pixel boxes x1, y1, x2, y2
    source: str  # what produced them, e.g. "grid 4x4 boxes + stats encoder (NOT object-detector features)"


def as_rgb(image) -> np.ndarray:
    """An (H, W, 3) float image in [0, 1] from an array (grey, RGB, RGBA; uint8 or float) or an image file."""
    if isinstance(image, str | Path):
        from skimage import io

        try:
            image = io.imread(str(image))
        except (OSError, ValueError) as e:
            raise ValueError(f"{image}: cannot read the image ({e})") from e
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def box_geometry(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Oscar's 6 box dims: x1/W, y1/H, x2/W, y2/H, (x2-x1)/W, (y2-y1)/H."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scale = np.array([width, height, width, height], dtype=np.float32)
    norm = boxes / scale
    return np.concatenate([norm, norm[:, 2:3] - norm[:, 0:1], norm[:, 3:4] - norm[:, 1:2]], axis=1)


# ------------------------------------------------------------------------------------------------ box proposers


def grid_boxes(image: np.ndarray, k: int = 4, max_regions: int = MAX_REGIONS) -> np.ndarray:
    """k x k equal cells, row by row (integer pixel edges cover the whole image)."""
    height, width = image.shape[:2]
    xs, ys = np.linspace(0, width, k + 1).round(), np.linspace(0, height, k + 1).round()
    boxes = [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(k) for c in range(k)]
    return np.array(boxes[:max_regions], dtype=np.float32)


def superpixel_boxes(image: np.ndarray, k: int = 4, max_regions: int = MAX_REGIONS) -> np.ndarray:
    """Bounding boxes of about k*k SLIC superpixels (skimage.segmentation.slic), largest segment first."""
    from skimage.segmentation import slic

    labels = slic(image, n_segments=k * k, compactness=10.0, start_label=0, channel_axis=-1)
    boxes, areas = [], []
    for label in np.unique(labels):
        ys, xs = np.nonzero(labels == label)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        areas.append(len(xs))
    order = np.argsort(-np.array(areas), kind="stable")[:max_regions]
    return np.array(boxes, dtype=np.float32)[order]


BOX_PROPOSERS = {"grid": grid_boxes, "superpixel": superpixel_boxes}  # one line a proposer


# -------------------------------------------------------------------------------------------- appearance encoders


def _region_statistics(rgb: np.ndarray, hsv: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """93 numbers describing colour and texture of one crop ((H, W, 3) RGB and HSV in [0, 1], grey gradients)."""
    pixels, hsv = rgb.reshape(-1, 3), hsv.reshape(-1, 3)
    n = len(pixels)
    cells = np.minimum((pixels * 4).astype(np.int64), 3) @ np.array([16, 4, 1])
    colour_hist = np.bincount(cells, minlength=64) / n
    hue_hist = np.bincount(np.minimum((hsv[:, 0] * 12).astype(np.int64), 11), weights=hsv[:, 1], minlength=12) / n
    magnitude = np.hypot(gx, gy).ravel()
    orientation = np.minimum(((np.arctan2(gy, gx).ravel() % np.pi) / np.pi * 8).astype(np.int64), 7)
    orient_hist = np.bincount(orientation, weights=magnitude, minlength=8) / (magnitude.sum() + 1e-6)
    edges = np.array([(magnitude > 0.1).mean()])
    return np.concatenate([pixels.mean(0), pixels.std(0), hsv[:, 1:].mean(0), colour_hist, hue_hist, orient_hist,
                           edges]).astype(np.float32)


@lru_cache(maxsize=4)
def _random_features(inputs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((inputs, APPEARANCE_DIM)).astype(np.float32) / np.sqrt(inputs)
    return weight, 0.5 * rng.standard_normal(APPEARANCE_DIM).astype(np.float32)


def stats_encoder(image: np.ndarray, boxes: np.ndarray, seed: int = 0) -> np.ndarray:
    """Colour/texture statistics per box, expanded to 2048 dims by relu(W x + b) with W, b drawn from N(0, 1)
    under `seed` (random features: fixed, documented, untrained). NOT object-detector features."""
    from skimage.color import rgb2hsv

    hsv = rgb2hsv(image)
    gy, gx = np.gradient(image.mean(axis=-1))
    stats = np.stack([_region_statistics(*(_crop(a, box) for a in (image, hsv, gx, gy))) for box in boxes])
    weight, bias = _random_features(stats.shape[1], seed)
    centred = (stats - 0.25) * 4.0  # statistics live in [0, 1]; centre them so the ReLU keeps half the units
    return np.maximum(centred @ weight + bias, 0.0)


def cnn_encoder(image: np.ndarray, boxes: np.ndarray, seed: int = 0) -> np.ndarray:
    """A small convolutional net with seeded random (Kaiming-normal) weights, never trained: each box is resized
    to 32x32 and passed through conv(3->32, s2) - conv(32->64, s2) - conv(64->128, s2) - 1x1 conv(128->2048),
    ReLU after each, averaged over space. NOT object-detector features."""
    import torch
    from skimage.transform import resize

    crops = np.stack([resize(_crop(image, box), (32, 32), anti_aliasing=True) for box in boxes])
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(crops.astype(np.float32)).permute(0, 3, 1, 2) - 0.5
    for cin, cout, size, stride in ((3, 32, 3, 2), (32, 64, 3, 2), (64, 128, 3, 2), (128, APPEARANCE_DIM, 1, 1)):
        weight = torch.randn(cout, cin, size, size, generator=generator) * np.sqrt(2.0 / (cin * size * size))
        x = torch.relu(torch.nn.functional.conv2d(x, weight, stride=stride, padding=size // 2))
    return x.mean(dim=(2, 3)).numpy()


APPEARANCE_ENCODERS = {"stats": stats_encoder, "cnn": cnn_encoder}  # one line an encoder


def _crop(image: np.ndarray, box) -> np.ndarray:
    """The pixels inside a box (at least one pixel, clipped to the image)."""
    height, width = image.shape[:2]
    x1, y1 = min(max(int(round(box[0])), 0), width - 1), min(max(int(round(box[1])), 0), height - 1)
    x2, y2 = max(int(round(box[2])), x1 + 1), max(int(round(box[3])), y1 + 1)
    return image[y1:y2, x1:x2]


# ------------------------------------------------------------------------------------------------- extraction


def extract_regions(image, boxes: str = "grid", encoder: str = "stats", grid: int = 4,
                    max_regions: int = MAX_REGIONS, seed: int = 0) -> RegionFeatures:
    """(n <= max_regions, 2054) features of an image with a registered box proposer and appearance encoder."""
    if boxes not in BOX_PROPOSERS:
        raise ValueError(f"unknown box proposer {boxes!r}; known: {sorted(BOX_PROPOSERS)}")
    if encoder not in APPEARANCE_ENCODERS:
        raise ValueError(f"unknown appearance encoder {encoder!r}; known: {sorted(APPEARANCE_ENCODERS)}")
    if not 1 <= max_regions <= MAX_REGIONS:
        raise ValueError(f"max_regions must be in [1, {MAX_REGIONS}], got {max_regions}")
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    found = BOX_PROPOSERS[boxes](rgb, k=grid, max_regions=max_regions)
    appearance = APPEARANCE_ENCODERS[encoder](rgb, found, seed=seed).astype(np.float32)
    feats = np.concatenate([appearance, box_geometry(found, width, height)], axis=1)
    source = f"{boxes} boxes (k={grid}) + {encoder} encoder (seed {seed}); {NOT_DETECTOR}"
    return RegionFeatures(feats=feats, boxes=found, source=source)


def load_region_features(path: str | Path, max_regions: int = MAX_REGIONS) -> RegionFeatures:
    """Precomputed (n, 2054) region features from .npy, .npz (key `features`) or .safetensors (tensor `features`,
    or the only tensor). More than `max_regions` rows keeps the first ones (detectors sort by confidence), as
    Oscar truncates to its max_img_seq_length. Boxes are read back from the geometry dims (normalised units).
    A damaged file, a non-numeric array, another shape, no regions, or a NaN/infinite value (after the cast to
    float32) is a ValueError naming the file, and the region and dimension where a value is bad."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a region-feature file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such region-feature file")
    feats = _read_array(path)
    if feats.dtype.kind not in "iuf":
        raise ValueError(f"{path}: region features must be numbers, got an array of {feats.dtype}")
    if feats.ndim != 2 or feats.shape[1] != FEATURE_DIM:
        raise ValueError(f"{path}: region features must be (regions, {FEATURE_DIM}) = 2048 appearance + 6 box "
                         f"geometry, got shape {feats.shape}")
    if not len(feats):
        raise ValueError(f"{path}: no regions (an array of shape {feats.shape})")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused just below
        feats = np.asarray(feats, dtype=np.float32)  # every row checked, also those cut below: the file is bad
    bad = np.argwhere(~np.isfinite(feats))
    if len(bad):
        region, dim = (int(i) for i in bad[0])
        part = f"appearance dim {dim}" if dim < APPEARANCE_DIM else f"box-geometry dim {dim - APPEARANCE_DIM}"
        raise ValueError(f"{path}: region {region}, {part}: {feats[region, dim]} is not a finite number "
                         f"({len(bad)} such value(s) in all)")
    feats = feats[:max_regions]
    return RegionFeatures(feats=feats, boxes=feats[:, APPEARANCE_DIM: APPEARANCE_DIM + 4].copy(),
                          source=f"precomputed features from {path}")


def _read_array(path: Path) -> np.ndarray:
    """The feature array of a .npy, .npz or .safetensors file; a damaged or pickled file is a ValueError."""
    import zipfile

    from safetensors import SafetensorError

    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                if "features" not in archive:
                    raise ValueError(f"{path}: no array named 'features' (found {sorted(archive.files)})")
                return archive["features"]
        if path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            tensors = load_file(str(path))
            if "features" not in tensors and len(tensors) != 1:
                raise ValueError(f"{path}: no tensor named 'features' (found {sorted(tensors)})")
            return tensors.get("features", next(iter(tensors.values())))
        raise ValueError(f"{path}: region features must be .npy, .npz or .safetensors")
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: cannot read region features ({e})") from e
    except (OSError, EOFError, zipfile.BadZipFile, SafetensorError) as e:
        raise ValueError(f"{path}: cannot read region features ({type(e).__name__}: {e})") from e
