"""`oscar_caption(OscarCaptionConfig)`: Chinese captions for images with a trained Oscar captioner.

Images are given as files (`images`), precomputed region-feature files (`features`), fresh synthetic scenes
(`synthetic: N`) or the scikit-image fixtures (`fixtures: true`). Region features come from the extractor the
model was trained with (recorded in its config.json under `mengzi_oscar`). Tags: no detector exists here, so the
user gives them (`tags`, one comma-separated string per image, English or Chinese); synthetic scenes and
fixtures bring their own ground-truth tags, standing in for a detector's labels. Every result names its region
feature source, which says when the features are not detector features.
"""

from __future__ import annotations

import json
from pathlib import Path

from mengzi import atomic

from .config import Layout, OscarCaptionConfig
from .data import Example, attach_regions, fixture_examples, synthetic_scenes
from .regions import as_rgb, load_region_features
from .tags import to_chinese


def _inputs(cfg: OscarCaptionConfig) -> list[Example]:
    given = [*cfg.images, *cfg.features]
    if cfg.tags and len(cfg.tags) != len(given):
        raise ValueError(f"tags: {len(cfg.tags)} tag strings for {len(given)} images/feature files; give one each")
    tag_lists = [to_chinese([t for t in s.replace("，", ",").split(",") if t.strip()]) for s in cfg.tags] or \
        [[] for _ in given]
    examples = [Example(caption="", tags=tags, image=as_rgb(path), name=path)
                for path, tags in zip(cfg.images, tag_lists, strict=False)]
    examples += [Example(caption="", tags=tags, regions=load_region_features(path), name=path)
                 for path, tags in zip(cfg.features, tag_lists[len(cfg.images):], strict=False)]
    if cfg.synthetic:
        examples += synthetic_scenes(cfg.synthetic, seed=cfg.seed)
    if cfg.fixtures:
        examples += fixture_examples()
    if not examples:
        raise ValueError("nothing to caption: give images, features, synthetic: N or fixtures: true")
    return examples


def oscar_caption(cfg: OscarCaptionConfig) -> list[dict]:
    """[{name, caption, reference (synthetic/fixtures), tags, region_features}] in input order."""
    from mengzi.models.load import load

    from .decode import generate_captions

    if not cfg.model:
        raise ValueError("model: give a trained Oscar captioning folder")
    model, tokenizer = load(cfg.model, task="captioning")
    recorded = getattr(model.config, "mengzi_oscar", None)
    if not recorded:
        raise ValueError(f"{cfg.model}/config.json has no 'mengzi_oscar' entry (layout and region extractor); "
                         "train it with `mengzi oscar train`")
    layout = Layout(recorded["caption_tokens"], recorded["tag_tokens"], recorded["max_regions"])
    examples = attach_regions(_inputs(cfg), boxes=recorded["boxes"], encoder=recorded["encoder"],
                              grid=recorded["grid"], max_regions=layout.max_regions, seed=recorded["seed"])
    captions = generate_captions(model, tokenizer, [e.tags for e in examples], [e.regions.feats for e in examples],
                                 layout, beams=cfg.beams, max_tokens=cfg.max_tokens or None,
                                 length_penalty=cfg.length_penalty)
    results = [{"name": e.name, "caption": c, "reference": e.caption, "tags": e.tags,
                "region_features": e.regions.source} for e, c in zip(examples, captions, strict=True)]
    if cfg.out:
        atomic.write_text(Path(cfg.out), "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
    return results
