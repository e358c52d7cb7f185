"""Generative fine-tuning: a tiny T5 memorises CSL abstract -> keyword pairs (exact match and ROUGE rise from ~0),
a tiny GPT-Neo's held-out perplexity on classical-novel text drops, decoding options do what they say, bad user files name file, line and field, and the recipes load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import need_data

from mengzi.config import load_yaml
from mengzi.textgen.config import GenerationOptions, TextGenConfig, TextGenData, TextGenTrainConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "textgen"
# a T5 small enough to memorise a handful of pairs in seconds on one thread
SMALL_T5 = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4}


def csl_pairs(n: int, chars: int = 48, tokenizer=None):
    """`n` CSL dev examples, abstracts cut to `chars` characters and targets to two keywords (the task at test size).
    With `tokenizer`, only examples whose target it can write back (the small test tokenizer maps rare characters
    to <unk>, which no model can output) are taken."""
    from datasets import Dataset

    from mengzi.textgen.data import csl_keywords
    from mengzi.textgen.metrics import normalize

    need_data("clue/csl/dev.json")
    full = csl_keywords(TextGenData(), "dev", limit=8 * n)
    rows = {"id": [], "source": [], "target": []}
    for example_id, source, target in zip(full["id"], full["source"], full["target"]):
        target = "；".join(target.split("；")[:2])
        if tokenizer is not None and tokenizer.decode(tokenizer(target)["input_ids"], skip_special_tokens=True) \
                != normalize(target):
            continue
        for column, value in zip(rows, (example_id, source[:chars], target)):
            rows[column].append(value)
        if len(rows["id"]) == n:
            break
    return Dataset.from_dict(rows)


@pytest.fixture(scope="module")
def memorised(tmp_path_factory, t5_tokenizer_dir):
    """A tiny T5 fine-tuned from scratch on 8 CSL pairs, evaluated on the same pairs before and after."""
    from mengzi.textgen.train import train_textgen
    from mengzi.tokenizer import load_tokenizer

    pairs = csl_pairs(8, tokenizer=load_tokenizer(t5_tokenizer_dir))
    out = tmp_path_factory.mktemp("memorise") / "run"
    cfg = TextGenConfig(model="mengzi-t5-tiny", from_scratch=True, tokenizer=str(t5_tokenizer_dir),
                        overrides=SMALL_T5, out=str(out),
                        train=TextGenTrainConfig(max_steps=120, batch_size=8, micro_batch_size=8, lr=3e-3,
                                                 warmup_ratio=0.05, eval_at_start=True, save_every=0, log_every=20),
                        generation=GenerationOptions(max_new_tokens=24))
    result = train_textgen(cfg, splits={"train": pairs, "dev": pairs})
    return result, pairs


def test_t5_memorises_csl_keywords(memorised):
    result, pairs = memorised
    summary = json.loads((result.out / "metrics.json").read_text(encoding="utf-8"))
    before, after = summary["dev_at_start"], summary["dev"]
    assert before["exact_match"] == 0 and before["rouge-l"] < 0.2, before
    assert after["exact_match"] >= 0.75 and after["rouge-l"] >= before["rouge-l"] + 0.6, (before, after)
    assert after["keyword_f1"] >= 0.75 and after["loss"] < before["loss"] / 10
    rows = [json.loads(line) for line in (result.out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["reference"] for r in rows] == list(pairs["target"]) and rows == result.predictions
    assert (result.out / "model" / "model.safetensors").is_file()
    assert load_yaml(TextGenConfig, result.out / "config.yaml").overrides == SMALL_T5  # the resolved run config
    steps = [json.loads(line)["step"] for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    assert steps[0] == 0 and steps[-1] == 120  # the baseline evaluation, then training and the final one


def test_decoding_options_are_honoured(memorised):
    from mengzi.models.load import load
    from mengzi.textgen.generate import generate

    result, pairs = memorised
    model, tokenizer = load(result.out / "model", task="seq2seq-lm")
    texts = list(pairs["source"])
    greedy = generate(model, tokenizer, texts, GenerationOptions(max_new_tokens=24))
    # num_beams=1 without sampling is argmax decoding, step by step
    enc = tokenizer(texts[:2], return_tensors="pt", padding=True)
    decoded = torch.full((2, 1), model.config.decoder_start_token_id)
    with torch.no_grad():
        for _ in range(24):
            nxt = model(**enc, decoder_input_ids=decoded).logits[:, -1].argmax(-1, keepdim=True)
            decoded = torch.cat([decoded, nxt], 1)
    eos = tokenizer.eos_token_id
    manual = [tokenizer.decode(row[1 : row.index(eos) if eos in row else None], skip_special_tokens=True).strip()
              for row in decoded.tolist()]
    assert greedy[:2] == manual
    # max_new_tokens cuts the same greedy path
    short = generate(model, tokenizer, texts, GenerationOptions(max_new_tokens=3))
    assert all(g.startswith(s) for s, g in zip(short, greedy)) and sum(map(len, short)) < sum(map(len, greedy))
    # sampling: the same seed, the same samples; another seed, other samples
    hot = dict(do_sample=True, temperature=3.0, max_new_tokens=12)
    first = generate(model, tokenizer, texts, GenerationOptions(seed=1, **hot))
    assert first == generate(model, tokenizer, texts, GenerationOptions(seed=1, **hot))
    assert first != generate(model, tokenizer, texts, GenerationOptions(seed=2, **hot))
    assert first != greedy
    # beam search (no length normalisation) finds sequences at least as likely as greedy's
    beams = generate(model, tokenizer, texts, GenerationOptions(max_new_tokens=24, num_beams=4, length_penalty=0.0))
    assert all(_logprob(model, tokenizer, t, b) >= _logprob(model, tokenizer, t, g) - 1e-4
               for t, b, g in zip(texts, beams, greedy))


def _logprob(model, tokenizer, source: str, target: str) -> float:
    enc = tokenizer([source], return_tensors="pt")
    labels = tokenizer([target], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(**enc, labels=labels).loss
    return -float(loss) * labels.shape[1]


def test_mengzi_generate_checkpoint_and_export_agree(memorised, tmp_path, capsys):
    """`mengzi generate` on the checkpoint (PyTorch) and on its `mengzi export` folder (ONNX Runtime, KV cache)
    writes the same greedy and beam texts: the memorised keywords."""
    from mengzi.cli import main
    from mengzi.textgen.metrics import exact_match

    result, pairs = memorised
    model = result.out / "model"
    assert main(["export", str(model), "--out", str(tmp_path / "export")]) == 0
    prompts = ["--text", *list(pairs["source"])[:3]]
    outputs = {}
    for name, source in (("torch", model), ("onnx", tmp_path / "export")):
        for beams in ("1", "3"):
            path = tmp_path / f"{name}-{beams}.jsonl"
            assert main(["generate", str(source), *prompts, "--max-new-tokens", "24", "--num-beams", beams,
                         "--out", str(path)]) == 0
            outputs[name, beams] = [json.loads(line)["generated"] for line in path.read_text().splitlines()]
    assert outputs["torch", "1"] == outputs["onnx", "1"] == [r["prediction"] for r in result.predictions[:3]]
    assert outputs["torch", "3"] == outputs["onnx", "3"]
    assert exact_match(outputs["onnx", "1"], list(pairs["target"])[:3]) >= 2 / 3  # the keywords themselves
    assert main(["generate", str(tmp_path / "export"), "--text", "x", "--min-new-tokens", "3"]) == 2
    assert "PyTorch only" in capsys.readouterr().err


def test_gpt_neo_perplexity_drops_on_held_out_classics(tmp_path, t5_tokenizer_dir):
    from mengzi.textgen.train import train_textgen

    data = need_data("corpus/classics/西游记.txt")
    lines = [line for line in (data / "corpus/classics/西游记.txt").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    corpus = tmp_path / "xiyouji.txt"
    corpus.write_bytes("\r\n\r\n".join(lines[100:300]).encode())  # the novels' CRLF and blank-line layout
    # the 8128-piece test tokenizer instead of the preset's 32000: a 4x smaller softmax, the same test
    cfg = TextGenConfig(model="mengzi-gpt-neo-tiny", from_scratch=True, tokenizer=str(t5_tokenizer_dir), task="corpus",
                        out=str(tmp_path / "run"),
                        dataset=TextGenData(corpus=[str(corpus)], eval_fraction=0.1),
                        train=TextGenTrainConfig(max_steps=25, batch_size=8, micro_batch_size=8, lr=3e-3,
                                                 block_size=64, eval_at_start=True, save_every=0))
    result = train_textgen(cfg)
    summary = json.loads((result.out / "metrics.json").read_text(encoding="utf-8"))
    before, after = summary["dev_at_start"]["perplexity"], result.metrics["perplexity"]
    assert before > 4_000 and after < before / 5, (before, after)  # random init: about the vocab size


def test_gpt_pairs_learn_only_the_target(data):
    """GPT-Neo on pairs: one sequence prompt + target + EOS, the prompt's labels ignored (-100)."""
    from datasets import Dataset

    from mengzi.data import resolve
    from mengzi.textgen.train import collate, encode_pairs
    from mengzi.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(resolve("data:vocab/chinese_xlnet_spiece.model"), kind="gpt")
    pairs = Dataset.from_dict({"id": ["0", "1"], "source": ["孟子见梁惠王。问：", "天气"], "target": ["仁义", "晴朗的好天气"]})
    features = encode_pairs(pairs, tokenizer, "gpt-neo", max_source_len=64, max_target_len=4)
    for f, source, target in zip(features, pairs["source"], pairs["target"]):
        prompt = tokenizer(source, add_special_tokens=False)["input_ids"]
        answer = tokenizer(target, add_special_tokens=False)["input_ids"][:3] + [tokenizer.eos_token_id]
        assert f["input_ids"] == prompt + answer and f["labels"] == [-100] * len(prompt) + answer
    batch = collate(features, tokenizer.pad_token_id, "gpt-neo")
    assert batch["labels"].shape == batch["input_ids"].shape
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


def test_held_out_split_is_stable_and_disjoint(tmp_path):
    from mengzi.textgen.data import corpus_documents

    corpus = tmp_path / "c.txt"
    corpus.write_bytes("\r\n".join(f"第{i}段。" for i in range(400)).encode())
    first = corpus_documents([str(corpus)], 0.1)
    again = corpus_documents([str(corpus)], 0.1)
    assert first == again and 20 <= len(first["dev"]) <= 60
    assert not set(first["dev"]) & set(first["train"]) and len(first["dev"]) + len(first["train"]) == 400


def test_corpus_without_held_out_text_stops_before_training(tmp_path):
    from mengzi.textgen.data import corpus_documents

    text = tmp_path / "tiny.txt"
    text.write_text("话说天下大势，分久必合，合久必分。\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"eval_fraction must be in \(0, 1\)"):
        corpus_documents([str(text)], 0.0)
    with pytest.raises(ValueError, match=r"tiny.txt.*none of the 1 paragraphs fell in the held-out 1.0%"):
        corpus_documents([str(text)], 0.01)


def test_bad_user_files_name_file_line_and_field(tmp_path):
    from mengzi.finetune.userdata import DataError
    from mengzi.textgen.data import user_pairs

    spec = TextGenData(prefix="", source="question", target="answer")
    good = tmp_path / "good.jsonl"
    good.write_text('{"question": "一加一", "answer": "二"}\n\n{"question": "二加二", "answer": "四"}\n', encoding="utf-8")
    assert list(user_pairs(spec, good)["target"]) == ["二", "四"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "一加一", "answer": "二"}\n{"question": "二加二"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: field 'answer' is missing"):
        user_pairs(spec, bad)
    csv = tmp_path / "bad.csv"
    csv.write_text("question,answer\n一加一,二\n,四\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:3: field 'question': expected non-empty text"):
        user_pairs(spec, csv)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "一加一", "answer": "二"}\n{"question": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl:2: not a JSON object"):
        user_pairs(spec, broken)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_recipes_load(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and "mengzi " in text.split("\n\n")[0]
    cfg = load_yaml(TextGenConfig, path)
    assert cfg.out and (cfg.task == "corpus") == ("gpt-neo" in path.name)


def test_every_recipe_family_is_there():
    assert {p.stem for p in RECIPES.glob("*.yaml")} == {"csl-keywords-tiny", "csl-keywords", "classics-gpt-neo-tiny",
                                                         "classics-gpt-neo"}
