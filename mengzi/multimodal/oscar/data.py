"""Image-text examples for Oscar: synthetic shape scenes, scikit-image fixtures, or a user JSONL file.

The shared data holds Chinese captions (Flickr8k-CN, COCO-CN) but no pixels, so the trainable set is synthetic
and says so: `synthetic_scenes` renders one or two coloured shapes (circle, square, triangle) on a noisy
background and writes the caption from the scene ("红色的圆在蓝色方块的左边"; "上面" for stacked shapes), and the
tags are the English shape names mapped through the tag map (colours and positions must come from the regions).
`fixture_examples` are real photos shipped with scikit-image (astronaut, chelsea, coffee, rocket, horse, camera)
with hand-written Chinese captions and tags: too few to train on, useful for demos and smoke tests.

A JSONL file has one object a line: {"image": PATH} or {"features": PATH.npy|.npz|.safetensors}, "caption": str,
"tags": [str, ...] (English or Chinese); relative paths are read from the file's folder. The file is read by
`mengzi.tabular` (strict JSON; a BOM and CRLF accepted; errors name file, line and field).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...tabular import DataError, cell, kind_name, read_records, short, where
from .regions import RegionFeatures, extract_regions, load_region_features
from .tags import to_chinese

COLOURS = {"红色": (0.85, 0.1, 0.1), "绿色": (0.1, 0.7, 0.2), "蓝色": (0.15, 0.25, 0.9), "黄色": (0.95, 0.85, 0.1)}
SHAPES = {"圆": "circle", "方块": "square", "三角形": "triangle"}  # caption word -> English tag
SCENE_SIZE = 64


@dataclass
class Example:
    caption: str
    tags: list[str]  # Chinese
    image: np.ndarray | None = None  # (H, W, 3) in [0, 1], or None when features are given
    regions: RegionFeatures | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)


def _draw(canvas: np.ndarray, shape: str, colour, cx: int, cy: int, r: int) -> None:
    from skimage.draw import disk, polygon

    if shape == "circle":
        rr, cc = disk((cy, cx), r, shape=canvas.shape[:2])
    elif shape == "square":
        rr, cc = polygon([cy - r, cy - r, cy + r, cy + r], [cx - r, cx + r, cx + r, cx - r], shape=canvas.shape[:2])
    else:
        rr, cc = polygon([cy - r, cy + r, cy + r], [cx, cx - r, cx + r], shape=canvas.shape[:2])
    canvas[rr, cc] = colour


def render_scene(rng: np.random.Generator) -> Example:
    """One scene: 1 object (30%) or 2 objects side by side or stacked, caption and tags from the scene."""
    canvas = np.clip(0.85 + 0.05 * rng.standard_normal((SCENE_SIZE, SCENE_SIZE, 3)), 0, 1).astype(np.float32)
    colour_names, shape_names = list(COLOURS), list(SHAPES)

    def pick():
        c, s = colour_names[rng.integers(len(colour_names))], shape_names[rng.integers(len(shape_names))]
        jitter = np.clip(np.array(COLOURS[c]) + 0.05 * rng.standard_normal(3), 0, 1)
        return c, s, jitter

    if rng.random() < 0.3:
        c, s, rgb = pick()
        r = int(rng.integers(9, 15))
        _draw(canvas, SHAPES[s], rgb, int(rng.integers(r, SCENE_SIZE - r)), int(rng.integers(r, SCENE_SIZE - r)), r)
        return Example(caption=f"一个{c}的{s}", tags=to_chinese([SHAPES[s]]), image=canvas, meta={"objects": 1})
    (c1, s1, rgb1), (c2, s2, rgb2) = pick(), pick()
    r1, r2 = int(rng.integers(7, 11)), int(rng.integers(7, 11))
    across = int(rng.integers(18, 24)), int(rng.integers(42, 47))  # first object left/top, second right/bottom
    along = int(rng.integers(12, 52)), int(rng.integers(12, 52))
    horizontal = rng.random() < 0.5
    for (shape, rgb, r), a, b in zip(((SHAPES[s1], rgb1, r1), (SHAPES[s2], rgb2, r2)), across, along, strict=True):
        _draw(canvas, shape, rgb, *((a, b) if horizontal else (b, a)), r)
    relation = "左边" if horizontal else "上面"
    return Example(caption=f"{c1}的{s1}在{c2}{s2}的{relation}", tags=to_chinese([SHAPES[s1], SHAPES[s2]]),
                   image=canvas, meta={"objects": 2, "relation": relation})


def synthetic_scenes(n: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    scenes = [render_scene(rng) for _ in range(n)]
    for i, scene in enumerate(scenes):
        scene.name = f"scene-{seed}-{i}"
    return scenes


# real photos shipped with scikit-image; captions and tags written by hand for mengzi
FIXTURES = {
    "astronaut": (["一名身穿宇航服的宇航员在国旗前微笑", "宇航员的肖像"], ["astronaut", "spacesuit", "flag", "woman"]),
    "chelsea": (["一只橘色的猫看着镜头", "一只猫的特写"], ["cat"]),
    "coffee": (["桌子上放着一杯咖啡", "一杯咖啡和碟子"], ["cup", "coffee", "saucer", "spoon", "table"]),
    "rocket": (["火箭停在发射架旁边", "一枚火箭准备发射"], ["rocket", "tower", "sky"]),
    "horse": (["一匹马的黑色剪影", "马的剪影"], ["horse", "silhouette"]),
    "camera": (["一个男人在草地上用相机拍照", "拿着相机的男人"], ["man", "camera", "tripod", "grass"]),
}


def fixture_examples() -> list[Example]:
    """The scikit-image photos with their first hand-written caption (the others are in `meta["captions"]`)."""
    import skimage.data

    out = []
    for name, (captions, tags) in FIXTURES.items():
        out.append(Example(caption=captions[0], tags=to_chinese(tags), image=getattr(skimage.data, name)(),
                           name=name, meta={"captions": captions}))
    return out


def read_jsonl(path: str | Path) -> list[Example]:
    """Examples from a JSONL file (see module doc), all read and checked before any is used: a bad line, field,
    image or feature file is a `DataError` naming the file, the line and the field."""
    from .regions import as_rgb

    path = Path(path)
    out = []
    for number, row in read_records(path, "jsonl"):
        caption = cell(path, number, row, "caption", empty_ok=False)
        tags = row.get("tags", [])
        if not isinstance(tags, list):
            raise DataError(f"{where(path, number, 'tags')}: expected a list of strings, got {kind_name(tags)} "
                            f"{short(tags)}")
        tags = [cell(path, number, {f"tags[{i}]": t}, f"tags[{i}]", empty_ok=False) for i, t in enumerate(tags)]
        if "image" in row and "features" in row:
            raise DataError(f"{path}:{number}: fields 'image' and 'features': give one of them, not both")
        if "image" not in row and "features" not in row:
            raise DataError(f"{where(path, number, 'features')} is missing (or give 'image'; fields here: "
                            f"{', '.join(map(str, row))})")
        name = "image" if "image" in row else "features"
        ref = path.parent / cell(path, number, row, name, empty_ok=False)
        example = Example(caption=caption, tags=to_chinese(tags), name=str(ref))
        try:
            if name == "image":
                example.image = as_rgb(ref)
            else:
                example.regions = load_region_features(ref)
        except (OSError, ValueError) as e:  # the messages name the referenced file; say which line named it
            raise DataError(f"{where(path, number, name)}: {e}") from None
        out.append(example)
    return out


def attach_regions(examples: list[Example], boxes: str, encoder: str, grid: int, max_regions: int,
                   seed: int = 0) -> list[Example]:
    """Extract region features for the examples that have an image and none yet (in place)."""
    for example in examples:
        if example.regions is None:
            example.regions = extract_regions(example.image, boxes=boxes, encoder=encoder, grid=grid,
                                              max_regions=max_regions, seed=seed)
    return examples
