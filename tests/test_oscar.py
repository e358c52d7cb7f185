"""Oscar-style image-text: the captioning attention mask, eager == sdpa, region features (2054 contract), the
English->Chinese tag map, save/load of both heads, and that tiny models learn captioning and retrieval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertModel

from mengzi.config import load_yaml
from mengzi.models.load import init_model, load, save_pretrained
from mengzi.models.oscar import MengziOscarForCaptioning, MengziOscarForRetrieval, oscar_attention_mask

CAP, TAGS, REGIONS = 6, 4, 5  # caption segment, tag segment, regions


@pytest.fixture(scope="module")
def encoder(data):
    torch.manual_seed(0)
    model, _ = init_model("mengzi-oscar-tiny")
    return model.eval()


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 5000, (2, CAP + TAGS), generator=g)
    mask = torch.ones_like(ids)
    mask[1, CAP - 1] = 0  # a padded caption position
    mask[0, -1] = 0  # a padded tag position
    feats = torch.randn(2, REGIONS, 2054, generator=g)
    img_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    types = torch.cat([torch.zeros(2, CAP, dtype=torch.long), torch.ones(2, TAGS, dtype=torch.long)], dim=1)
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types, img_feats=feats, img_mask=img_mask)


def _run(model, caption_len=CAP, **changes):
    with torch.no_grad():
        return model(**{**_inputs(), **changes}, caption_len=caption_len).last_hidden_state


def test_caption_is_causal_and_context_never_sees_the_caption(encoder):
    base = _run(encoder)
    ids = _inputs()["input_ids"].clone()
    ids[:, 3] += 7  # a later caption token
    later = _run(encoder, input_ids=ids)
    assert torch.allclose(later[:, :3], base[:, :3], atol=1e-5)  # earlier caption positions unchanged
    assert not torch.allclose(later[:, 3], base[:, 3], atol=1e-3)
    assert torch.allclose(later[:, CAP:], base[:, CAP:], atol=1e-5)  # tags and regions never see the caption
    ids = _inputs()["input_ids"].clone()
    ids[:, 0] += 1  # even [CLS]
    assert torch.allclose(_run(encoder, input_ids=ids)[:, CAP:], base[:, CAP:], atol=1e-5)


def test_tags_and_regions_reach_every_caption_position(encoder):
    base = _run(encoder)
    ids = _inputs()["input_ids"].clone()
    ids[:, CAP + 1] += 7
    changed_tag = _run(encoder, input_ids=ids)
    feats = _inputs()["img_feats"].clone()
    feats[:, 0] += 1.0
    changed_region = _run(encoder, img_feats=feats)
    for changed in (changed_tag, changed_region):
        assert (changed[0, :CAP] - base[0, :CAP]).abs().amax(-1).min() > 1e-4  # every caption position moves
    # a padded region changes nothing
    feats = _inputs()["img_feats"].clone()
    feats[0, -1] += 10.0
    assert torch.allclose(_run(encoder, img_feats=feats)[0, :-1], base[0, :-1], atol=1e-5)


def test_without_caption_segment_the_mask_is_bidirectional(encoder):
    bidirectional = _run(encoder, caption_len=None)
    assert torch.allclose(_run(encoder, caption_len=0), bidirectional, atol=1e-5)  # no caption: all context
    assert not torch.allclose(_run(encoder)[:, :CAP], bidirectional[:, :CAP], atol=1e-3)
    mask = oscar_attention_mask(torch.tensor([[1, 1, 1, 0]]), 2, torch.tensor([[1, 0]]))[0, 0] == 0
    expected = torch.tensor([[1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 1, 0], [0, 0, 1, 0, 1, 0], [0, 0, 1, 0, 1, 0],
                             [0, 0, 1, 0, 1, 0], [0, 0, 1, 0, 1, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_eager_and_sdpa_agree(data):
    model, _ = init_model("mengzi-oscar-tiny", task="captioning")
    model.eval()
    outs = {}
    for implementation in ("sdpa", "eager"):
        model.set_attn_implementation(implementation)
        outs[implementation] = [_run(model.bert), _run(model.bert, caption_len=None)]
    for a, b in zip(outs["sdpa"], outs["eager"], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_region_features_keep_the_2054_contract(tmp_path):
    from mengzi.multimodal.oscar.regions import extract_regions, load_region_features

    image = np.zeros((60, 90, 3), dtype=np.uint8)
    image[:, 45:] = 255  # right half white
    grid = extract_regions(image, boxes="grid", encoder="stats", grid=3)
    assert grid.feats.shape == (9, 2054) and "NOT object-detector" in grid.source
    assert np.allclose(grid.feats[4, -6:], [1 / 3, 1 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3])  # centre cell, Oscar's 6
    assert not np.allclose(grid.feats[0, :2048], grid.feats[2, :2048])  # black vs white cells differ
    assert np.allclose(grid.feats[0, :2048], grid.feats[3, :2048])  # two black cells agree
    many = extract_regions(image, boxes="grid", encoder="stats", grid=8)
    assert many.feats.shape == (50, 2054)
    for boxes, encoder in (("superpixel", "stats"), ("grid", "cnn")):
        regions = extract_regions(image, boxes=boxes, encoder=encoder, grid=3)
        assert regions.feats.shape[1] == 2054 and 1 <= len(regions.feats) <= 50
        assert (regions.feats[:, -2:] > 0).all() and (regions.feats[:, -6:] <= 1).all()
    np.save(tmp_path / "f.npy", grid.feats)
    assert np.array_equal(load_region_features(tmp_path / "f.npy").feats, grid.feats)
    np.save(tmp_path / "bad.npy", grid.feats[:, :2048])
    with pytest.raises(ValueError, match=r"bad\.npy.*2054"):
        load_region_features(tmp_path / "bad.npy")


def test_tag_map_covers_coco_and_reports_coco_cn_overlap(data):
    from mengzi.multimodal.oscar.tags import coverage, default_tag_map, to_chinese

    coco80 = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
              "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
              "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
              "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
              "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
              "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
              "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
              "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
              "scissors", "teddy bear", "hair drier", "toothbrush"]
    assert len(set(coco80)) == 80 and all(tag in default_tag_map() for tag in coco80)
    concepts = [line.strip() for line in (data / "multimodal/coco-cn/conceptscn655.txt").read_text("utf-8").split("\n")
                if line.strip()]
    covered, missing = coverage(concepts)
    assert len(concepts) == 655 and covered >= 280, (covered, missing[:20])  # measured: 288 of 655 (44%)
    assert to_chinese(["Dog", "traffic_light", "猫", "dog"]) == ["狗", "红绿灯", "猫", "狗"]
    assert to_chinese(["dog", "flux capacitor"]) == ["狗", "flux capacitor"]  # unknown: kept (default)
    assert to_chinese(["dog", "flux capacitor"], unknown="drop") == ["狗"]
    with pytest.raises(ValueError, match="flux capacitor.*tags_en_zh.tsv"):
        to_chinese(["dog", "flux capacitor"], unknown="error")


def test_recipes_load():
    from pathlib import Path

    from mengzi.multimodal.oscar.train import OscarTrainConfig

    recipes = sorted((Path(__file__).resolve().parents[1] / "recipes" / "oscar").glob("*.yaml"))
    assert {p.stem for p in recipes} >= {"captioning-tiny", "retrieval-tiny", "captioning-base"}
    for path in recipes:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("#") and "mengzi oscar " in text.split("\n\n")[0]
        assert load_yaml(OscarTrainConfig, path).task in ("captioning", "retrieval")


@pytest.mark.parametrize("task, cls", [("captioning", MengziOscarForCaptioning), ("retrieval", MengziOscarForRetrieval)])
def test_heads_register_save_and_load_as_safetensors(task, cls, tmp_path, data):
    model, tokenizer = init_model("mengzi-oscar-tiny", task=task)
    model.eval()
    assert type(model) is cls
    inputs = _inputs()
    with torch.no_grad():
        before = model(**inputs, **({"caption_len": CAP} if task == "captioning" else {}))
    save_pretrained(model, tokenizer, tmp_path / task)
    assert (tmp_path / task / "model.safetensors").is_file() and not list((tmp_path / task).glob("*.bin"))
    again, _ = load(tmp_path / task, task=task)
    assert type(again) is cls
    with torch.no_grad():
        after = again(**inputs, **({"caption_len": CAP} if task == "captioning" else {}))
    assert torch.allclose(before["logits"], after["logits"], atol=1e-5)
    text = BertModel.from_pretrained(tmp_path / task).eval()  # the text side stays plain BERT
    with torch.no_grad():
        ids = inputs["input_ids"][:, :CAP]
        assert torch.allclose(text(ids).last_hidden_state, again.bert(ids).last_hidden_state, atol=1e-5)
    with pytest.raises(ValueError, match="unknown Oscar task"):
        init_model("mengzi-oscar-tiny", task="sequence-classification")
