"""Presets build, run and round-trip; checkpoints move both ways between mengzi and plain transformers."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertModel

import mengzi
from mengzi.models import PRESETS, MengziOscarModel, PretrainingHeads, init_model, load, load_heads, save_pretrained

TEXTS = ["孟子是澜舟科技的预训练模型。", "今天天气很好，我们去公园玩吧！Hello 2024"]
PUBLISHED = {  # the shapes Langboat published (config.json of each checkpoint)
    "mengzi-bert-base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                             vocab_size=21128, max_position_embeddings=512),
    "mengzi-bert-L6-H768": dict(num_hidden_layers=6, hidden_size=768, vocab_size=21128),
    "mengzi-t5-base": dict(num_layers=12, num_decoder_layers=12, d_model=768, d_ff=2048, num_heads=12,
                           vocab_size=32128, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    "mengzi-gpt-neo-base": dict(num_layers=12, hidden_size=768, num_heads=12),
    "mengzi-oscar-base": dict(num_hidden_layers=12, hidden_size=768, img_feature_dim=2054),
}


def _inputs(model, tokenizer):
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    kwargs = dict(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    if model.config.is_encoder_decoder:
        kwargs["decoder_input_ids"] = enc["input_ids"][:, :4]
    if isinstance(model, MengziOscarModel):
        kwargs["img_feats"] = torch.randn(2, 5, model.config.img_feature_dim, generator=torch.Generator().manual_seed(0))
    return kwargs


def _main_output(out):
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_runs_and_round_trips(name, tmp_path, data):
    model, tokenizer = init_model(name)
    model.eval()
    for key, value in PUBLISHED.get(name, {}).items():
        assert getattr(model.config, key) == value, (name, key)
    assert len(tokenizer) <= model.config.vocab_size
    inputs = _inputs(model, tokenizer)
    with torch.no_grad():
        before = _main_output(model(**inputs))
    assert torch.isfinite(before).all()
    save_pretrained(model, tokenizer, tmp_path / name)
    assert (tmp_path / name / "model.safetensors").is_file()
    assert not list((tmp_path / name).glob("*.bin"))
    again, tok2 = load(tmp_path / name)
    assert type(again) is type(model)
    assert tok2(TEXTS)["input_ids"] == tokenizer(TEXTS)["input_ids"]
    with torch.no_grad():
        after = _main_output(again(**inputs))
    assert torch.equal(before, after)


def test_t5_lm_head_untied_like_mengzi_t5(tmp_path, t5_tokenizer_dir):
    """Mengzi-T5 (T5 v1.1) has an LM head of its own and no decoder-output scaling, fresh and after reloading."""
    model, tokenizer = init_model("mengzi-t5-tiny", tokenizer=t5_tokenizer_dir)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert not torch.equal(model.lm_head.weight, model.shared.weight)
    assert model.config.scale_decoder_outputs is False
    save_pretrained(model, tokenizer, tmp_path / "t5")
    again, _ = load(tmp_path / "t5")
    assert again.lm_head.weight.data_ptr() != again.shared.weight.data_ptr()
    assert torch.equal(again.lm_head.weight, model.lm_head.weight) and again.config.scale_decoder_outputs is False
    assert len(tokenizer) == 8128 == again.config.vocab_size


def test_gpt_neo_base_is_125m(data):
    model, tokenizer = init_model("mengzi-gpt-neo-base")
    body = sum(p.numel() for n, p in model.named_parameters() if ".wte." not in n and ".wpe." not in n)
    # with GPT-Neo's own 50257-token and 2048-position embeddings this is EleutherAI's 125,198,592
    assert body + 50257 * 768 + 2048 * 768 == 125_198_592
    assert model.config.vocab_size == 32000 and len(tokenizer) == 32000


def test_plain_transformers_reads_mengzi_checkpoints_and_back(tmp_path, data):
    model, tokenizer = init_model("mengzi-bert-tiny")
    save_pretrained(model, tokenizer, tmp_path / "m")
    plain = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "m").eval()
    plain_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "m")
    enc = plain_tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(plain(**enc).logits, model.eval()(**enc).logits)
    plain.save_pretrained(tmp_path / "plain")
    plain_tok.save_pretrained(tmp_path / "plain")
    ours, _ = load(tmp_path / "plain")
    with torch.no_grad():
        assert torch.equal(ours(**enc).logits, plain(**enc).logits)


LANGBOAT_BERT_CONFIG = {  # Langboat/mengzi-bert-base config.json, field for field (sizes shrunk for CI)
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
    "directionality": "bidi", "eos_token_id": 2, "gradient_checkpointing": False, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 128, "initializer_range": 0.02, "intermediate_size": 512,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 2,
    "num_hidden_layers": 2, "output_past": True, "pad_token_id": 1, "pooler_fc_size": 768,
    "pooler_num_attention_heads": 12, "pooler_num_fc_layers": 3, "pooler_size_per_head": 128,
    "pooler_type": "first_token_transform", "position_embedding_type": "absolute", "torch_dtype": "float16",
    "transformers_version": "4.9.2", "type_vocab_size": 2, "use_cache": True, "vocab_size": 21128,
}


@pytest.fixture(params=["pytorch_model.bin", "model.safetensors"])
def langboat_dir(request, tmp_path, data):
    """A checkpoint in Langboat's published layout: their config fields, fp16 weights, vocab.txt only."""
    folder = tmp_path / "mengzi-bert-base"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LANGBOAT_BERT_CONFIG, indent=2), encoding="utf-8")
    shutil.copyfile(data / "vocab/google_zh_vocab.txt", folder / "vocab.txt")
    torch.manual_seed(0)
    config = {k: v for k, v in LANGBOAT_BERT_CONFIG.items() if k != "torch_dtype"}
    state = {k: v.half() for k, v in BertForMaskedLM(BertConfig(**config)).state_dict().items()}
    state["bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)  # a buffer transformers 4.9 saved
    if request.param == "pytorch_model.bin":
        torch.save(state, folder / request.param)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / request.param), metadata={"format": "pt"})
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", "vocab.txt", request.param])
    return folder


def test_langboat_layout_loads_like_plain_transformers(langboat_dir, caplog):
    model, tokenizer = mengzi.load(langboat_dir, task="base")
    assert "pad_token_id=1" in caplog.text  # the quirk is reported, not hidden
    assert model.dtype == torch.float32 and model.config.pad_token_id == 0 == tokenizer.pad_token_id
    assert model.embeddings.word_embeddings.padding_idx == 0
    reference = BertModel.from_pretrained(langboat_dir, dtype=torch.float32).eval()
    ref_tok = transformers.BertTokenizer(vocab=str(langboat_dir / "vocab.txt"))
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert enc["input_ids"].tolist() == ref_tok(TEXTS, padding=True)["input_ids"]
    assert (enc["input_ids"][0] == 0).any()  # the shorter text really is padded, with [PAD] = 0
    with torch.no_grad():
        ours = model(**enc).last_hidden_state
        theirs = reference(**enc).last_hidden_state
        assert torch.equal(ours, theirs)
        # padding changes nothing at the real positions: each text alone gives the same states
        for i, text in enumerate(TEXTS):
            alone = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
            n = alone.shape[0]
            assert torch.allclose(ours[i, :n], alone, atol=1e-5)
    # fp16 kept on request
    half, _ = mengzi.load(langboat_dir, task="base", dtype="auto")
    assert half.dtype == torch.float16


def test_extra_heads_saved_beside_backbone(tmp_path, data, recwarn):
    model, tokenizer = init_model("mengzi-bert-tiny")
    heads = PretrainingHeads(model.config.hidden_size, {
        "sop": {"type": "sentence-order"},
        "pos": {"type": "token-tagging", "labels": ["n", "v", "ns", "x"]},
    })
    save_pretrained(model, tokenizer, tmp_path / "m", heads=heads)
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "mengzi_heads.safetensors" in files and "mengzi_heads.json" in files
    from safetensors.torch import load_file

    keys = sorted(load_file(str(tmp_path / "m/mengzi_heads.safetensors")))
    assert keys == ["pos.classifier.bias", "pos.classifier.weight", "sop.classifier.bias", "sop.classifier.weight"]
    # plain transformers: backbone loads, nothing missing or unexpected, same outputs
    plain, info = BertForMaskedLM.from_pretrained(tmp_path / "m", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(plain.eval()(**enc).logits, model.eval()(**enc).logits)
    loaded = load_heads(tmp_path / "m")
    assert loaded.specs["pos"]["labels"] == ["n", "v", "ns", "x"] and loaded.specs["pos"]["num_labels"] == 4
    for k, v in heads.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert load_heads(tmp_path) is None


def test_oscar_text_side_is_plain_bert(tmp_path, data):
    model, tokenizer = init_model("mengzi-oscar-tiny")
    save_pretrained(model, tokenizer, tmp_path / "oscar")
    text_only = BertModel.from_pretrained(tmp_path / "oscar").eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**enc).last_hidden_state, text_only(**enc).last_hidden_state)
        feats = torch.randn(2, 3, 2054)
        with_regions = model(**enc, img_feats=feats, img_mask=torch.tensor([[1, 1, 0], [1, 1, 1]]))
        assert with_regions.last_hidden_state.shape[1] == enc["input_ids"].shape[1] + 3
        assert not torch.allclose(with_regions.last_hidden_state[:, 0], model(**enc).last_hidden_state[:, 0])
        # a masked-out region changes nothing
        feats2 = feats.clone()
        feats2[0, 2] += 10
        again = model(**enc, img_feats=feats2, img_mask=torch.tensor([[1, 1, 0], [1, 1, 1]]))
        assert torch.allclose(again.last_hidden_state[0, :-1], with_regions.last_hidden_state[0, :-1], atol=1e-5)


def test_offline_hub_id_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="could not be fetched") as e:
        mengzi.load("mengzi-bert-base")
    assert "hf download Langboat/mengzi-bert-base" in str(e.value) and "huggingface-cli" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="tiny presets have none"):
        mengzi.load("mengzi-bert-tiny")


def test_missing_local_path_says_no_such_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "runs").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    for missing in ("runs/no-model", "./no-model", str(tmp_path / "no-model"), "no-model"):
        with pytest.raises(FileNotFoundError, match="no such folder") as e:
            mengzi.load(missing)
        assert "hub" not in str(e.value).split("no such folder")[0], e.value
        assert "could not be fetched" not in str(e.value), (missing, e.value)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        mengzi.load("weights.bin")
