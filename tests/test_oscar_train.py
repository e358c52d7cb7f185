"""Oscar heads learn: a tiny captioner's greedy captions on synthetic scenes beat the untrained model's, a tiny
matching head ranks true tags above polluted ones, runs save/load as safetensors (metrics reproduce from the saved
model), beam search finds captions at least as likely as greedy, and an interrupted run resumes exactly."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BertModel

from mengzi.models.load import load
from mengzi.multimodal.oscar.config import OscarTrain
from mengzi.multimodal.oscar.data import attach_regions, synthetic_scenes
from mengzi.multimodal.oscar.decode import caption_logprob, generate_captions
from mengzi.multimodal.oscar.evaluate import caption_metrics, distinct_captions, retrieval_metrics
from mengzi.multimodal.oscar.train import OscarTrainConfig, build_model, load_examples, oscar_train


@pytest.fixture(scope="module")
def captioner(tmp_path_factory, data):
    torch.set_num_threads(1)
    cfg = OscarTrainConfig(task="captioning", train_size=48, eval_size=8, mask_prob=0.4, max_masked=20,
                           train=OscarTrain(max_steps=80, batch_size=16, micro_batch_size=16, lr=3e-3, log_every=40),
                           out=str(tmp_path_factory.mktemp("cap") / "run"))
    return cfg, oscar_train(cfg)


def test_captioner_learns_the_synthetic_scenes(captioner):
    cfg, run = captioner
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "metrics.json", "metrics.jsonl", "model"}
    assert (run / "model" / "model.safetensors").is_file() and not list((run / "model").glob("*.bin"))
    assert "NOT object-detector" in json.loads((run / "metrics.json").read_text())["region_features"]
    train, _ = load_examples(cfg)
    trained, tokenizer = load(run / "model", task="captioning")
    untrained, _ = build_model(cfg)
    before, _ = caption_metrics(untrained, tokenizer, train, cfg.layout)
    after, predictions = caption_metrics(trained, tokenizer, train, cfg.layout)
    assert after["rouge-l"] > 0.45 and after["rouge-l"] > before["rouge-l"] + 0.3, (before, after, predictions[:3])


def test_saved_captioner_reproduces_its_metrics_and_its_text_side_is_bert(captioner):
    cfg, run = captioner
    _, held = load_examples(cfg)
    model, tokenizer = load(run / "model", task="captioning")
    recorded = json.loads((run / "metrics.json").read_text())
    again, _ = caption_metrics(model, tokenizer, held[: cfg.eval_size], cfg.layout)
    assert again["rouge-l"] == pytest.approx(recorded["rouge-l"]) and again["bleu"] == pytest.approx(recorded["bleu"])
    assert model.config.mengzi_oscar["boxes"] == "grid" and model.config.mengzi_oscar["caption_tokens"] == 20
    text = BertModel.from_pretrained(run / "model", add_pooling_layer=False).eval()
    enc = tokenizer(["红色的圆"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(text(**enc).last_hidden_state, model.bert(**enc).last_hidden_state, atol=1e-5)


def test_beam_search_finds_captions_at_least_as_likely_as_greedy(captioner):
    cfg, run = captioner
    model, tokenizer = load(run / "model", task="captioning")
    scenes = attach_regions(synthetic_scenes(8, seed=99), "grid", "stats", 4, 50)
    tags, regions = [s.tags for s in scenes], [s.regions.feats for s in scenes]
    greedy = generate_captions(model, tokenizer, tags, regions, cfg.layout)
    beam = generate_captions(model, tokenizer, tags, regions, cfg.layout, beams=4, length_penalty=0.0)
    scores = [(caption_logprob(model, tokenizer, t, r, g, cfg.layout), caption_logprob(model, tokenizer, t, r, b,
                                                                                     cfg.layout))
              for t, r, g, b in zip(tags, regions, greedy, beam, strict=True)]
    assert sum(b >= g - 1e-4 for g, b in scores) >= 7, scores
    assert sum(b for _, b in scores) > sum(g for g, _ in scores) - 1e-3
    short = generate_captions(model, tokenizer, tags[:2], regions[:2], cfg.layout, beams=2, max_tokens=3)
    assert all(len(c) <= 3 for c in short)


def test_retrieval_head_ranks_true_tags_above_polluted_ones(tmp_path, data):
    cfg = OscarTrainConfig(task="retrieval", train_size=64, eval_size=30, pollute_prob=1.0, out=str(tmp_path / "run"),
                           train=OscarTrain(max_steps=150, batch_size=32, micro_batch_size=32, lr=1e-3, log_every=50))
    run = oscar_train(cfg)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["polluted_pairs"] >= 25 and metrics["polluted_tag_accuracy"] >= 0.7, metrics  # chance: 0.5
    assert metrics["i2t_r5"] > metrics["chance_r5"] and metrics["t2i_r5"] > metrics["chance_r5"], metrics
    model, tokenizer = load(run / "model", task="retrieval")
    _, held = load_examples(cfg)
    again = retrieval_metrics(model, tokenizer, distinct_captions(held, cfg.eval_size), cfg.layout, seed=cfg.train.seed)
    assert again == pytest.approx({k: metrics[k] for k in again})


def test_oscar_caption_reads_images_feature_files_and_fixtures(captioner, tmp_path):
    import numpy as np
    from skimage.io import imsave

    from mengzi.multimodal.oscar.caption import OscarCaptionConfig, oscar_caption
    from mengzi.multimodal.oscar.regions import extract_regions

    _, run = captioner
    scene = synthetic_scenes(1, seed=5)[0]
    imsave(tmp_path / "scene.png", (scene.image * 255).astype(np.uint8))
    np.save(tmp_path / "scene.npy", extract_regions(scene.image).feats)
    cfg = OscarCaptionConfig(model=str(run / "model"), images=[str(tmp_path / "scene.png")],
                             features=[str(tmp_path / "scene.npy")], tags=["circle, square", "圆，方块"],
                             fixtures=True, beams=2, out=str(tmp_path / "captions.jsonl"))
    results = oscar_caption(cfg)
    assert len(results) == 2 + 6 and all(r["caption"] for r in results)
    assert results[0]["tags"] == results[1]["tags"] == ["圆", "方块"]
    assert "NOT object-detector" in results[0]["region_features"] and "scene.npy" in results[1]["region_features"]
    assert len((tmp_path / "captions.jsonl").read_text(encoding="utf-8").splitlines()) == 8
    with pytest.raises(ValueError, match="1 tag strings for 2"):
        oscar_caption(OscarCaptionConfig(model=cfg.model, images=cfg.images, features=cfg.features, tags=["dog"]))


def test_decoding_never_emits_special_tokens(captioner):
    """Even a model that prefers [PAD], [UNK], [CLS] and [MASK] above every word writes words: a generated [PAD]
    would read as the padding after a finished caption."""
    cfg, run = captioner
    model, tokenizer = load(run / "model", task="captioning")
    special = [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.mask_token_id]
    with torch.no_grad():
        model.cls.predictions.bias[special] += 100.0
    scenes = attach_regions(synthetic_scenes(3, seed=7), "grid", "stats", 4, 50)
    for beams in (1, 3):
        captions = generate_captions(model, tokenizer, [s.tags for s in scenes], [s.regions.feats for s in scenes],
                                     cfg.layout, beams=beams, max_tokens=6)
        assert all(c and "[" not in c for c in captions), captions
