"""`mengzi.clue.prompts`: label words cover every label of every classification task, every template formats with
real dev examples, and `clue_prompt` runs end to end (BERT tiny), predicting the label whose word scores highest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import need_data
from mengzi.clue import prompt_scoring
from mengzi.clue.prompts import (
    LABEL_WORDS,
    TEMPLATES,
    PromptConfig,
    check_template,
    clue_prompt,
    draw_shots,
    example_fields,
    fill,
    label_words,
    resolve_templates,
)
from mengzi.clue.tasks import TASKS, load_task

from mengzi.config import ConfigError, load_yaml

REPO = Path(__file__).resolve().parents[1]
CLASSIFICATION = [name for name, task in TASKS.items() if task.kind == "classification"]


def test_label_words_cover_every_label_and_are_distinct():
    assert sorted(LABEL_WORDS) == sorted(CLASSIFICATION)
    for name in CLASSIFICATION:
        assert set(LABEL_WORDS[name]) == set(TASKS[name].labels), name
        words = label_words(name)
        assert len(set(words)) == len(words) == len(TASKS[name].labels), name
        assert all(words) and all("{" not in w for w in words)


def test_iflytek_words_are_the_official_label_descriptions():
    data = need_data("clue/iflytek/labels.json")
    official = [json.loads(line) for line in (data / "clue/iflytek/labels.json").read_text("utf-8").splitlines()]
    assert [LABEL_WORDS["iflytek"][r["label"]] for r in official] == [r["label_des"] for r in official]


@pytest.mark.parametrize("task", CLASSIFICATION)
def test_templates_format_with_real_dev_examples(task):
    need_data("clue/afqmc", "clue/tnews", "clue/ocnli", "clue/cluewsc2020", "clue/csl", "fewclue/iflytek")
    if task == "cmnli":  # not in the shared data: its fixture has the official layout
        dev = load_task(task, "dev", REPO / "tests" / "fixtures" / "clue", limit=5).to_list()
    elif task == "iflytek":  # CLUE's dev set is not in the shared data: FewCLUE's copy stands in (as its recipe)
        dev = load_task(task, "dev", files={"dev": "data:fewclue/iflytek/dev_few_all.json"}, limit=5).to_list()
    else:
        dev = load_task(task, "dev", limit=5).to_list()
    assert len(TEMPLATES[task]) >= 3
    for template in TEMPLATES[task]:
        check_template(template)
        for example in dev:
            fields = example_fields(task, example)
            text = fill(template, fields, "[MASK]")
            assert "{" not in text.replace(example["text"], "").replace(example["text_pair"], "")
            assert text.count("[MASK]") == 1
            assert fields["text"][:4] in text or fields["text_pair"][:4] in text
    if task == "cluewsc2020":
        fields = example_fields(task, dev[0])
        assert fields["span1"] and fields["span2"] and "[" not in fields["text"] and "<" not in fields["text"]


def test_template_choice_and_bad_templates():
    assert resolve_templates("afqmc", []) == TEMPLATES["afqmc"]
    assert resolve_templates("afqmc", ["1", "{text}？{mask}"]) == [TEMPLATES["afqmc"][1], "{text}？{mask}"]
    with pytest.raises(ConfigError, match="exactly once"):
        resolve_templates("afqmc", ["{text}{text_pair}"])
    with pytest.raises(ConfigError, match="unknown field"):
        resolve_templates("afqmc", ["{sentence}{mask}"])
    with pytest.raises(ConfigError, match="0..2"):
        resolve_templates("afqmc", ["7"])


def test_shots_are_k_per_class_and_seeded():
    train = [{"id": i, "label": i % 3} for i in range(30)]
    shots = draw_shots(train, 3, 2, seed=1)
    assert sorted(s["label"] for s in shots) == [0, 0, 1, 1, 2, 2]
    assert shots == draw_shots(train, 3, 2, seed=1) and shots != draw_shots(train, 3, 2, seed=2)


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    from mengzi.models.load import init_model, save_pretrained

    need_data("vocab/google_zh_vocab.txt")
    model, tok = init_model("mengzi-bert-tiny", task="masked-lm", seed=0)
    return save_pretrained(model, tok, tmp_path_factory.mktemp("bert") / "model")


def test_prompt_run_end_to_end_on_bert_tiny(bert_folder, tmp_path, monkeypatch):
    """A real BERT tiny scores real afqmc dev examples through every template; then the scorer is replaced by
    one whose answer is known (the gold label word scores highest on even ids, the other word on odd ids), and the
    run must predict exactly that."""
    need_data("clue/afqmc")
    cfg = PromptConfig(model=str(bert_folder), task="afqmc", max_examples=12, out=str(tmp_path / "real"))
    out = clue_prompt(cfg)
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    assert [t["template"] for t in metrics["templates"]] == TEMPLATES["afqmc"]
    assert metrics["examples"] == 12 and metrics["uniform_random"] == 50.0
    assert (out / "config.yaml").is_file() and len((out / "predictions.jsonl").read_text().splitlines()) == 12

    gold = {e["text"]: e["label"] for e in load_task("afqmc", "dev", limit=12).to_list()}
    ids = {e["text"]: e["id"] for e in load_task("afqmc", "dev", limit=12).to_list()}

    def known(model, tokenizer, texts, words, *args, **kwargs):
        rows = []
        for text in texts:
            sentence = next(s for s in gold if f"{s}" in text)
            right = gold[sentence] if ids[sentence] % 2 == 0 else 1 - gold[sentence]
            rows.append([0.0 if j == right else -5.0 for j in range(len(words))])
        return rows

    monkeypatch.setattr(prompt_scoring.scoring, "score_label_words", known)
    cfg.out, cfg.templates = str(tmp_path / "known"), ["0"]
    metrics = json.loads((clue_prompt(cfg) / "metrics.json").read_text("utf-8"))
    expected = 100.0 * sum(i % 2 == 0 for i in ids.values()) / 12
    assert metrics["templates"][0]["accuracy"] == pytest.approx(expected, abs=0.01)
    rows = [json.loads(line) for line in (tmp_path / "known" / "predictions.jsonl").read_text().splitlines()]
    assert all((r["predictions"][0] == r["label"]) == (r["id"] % 2 == 0) for r in rows)
    with pytest.raises(FileExistsError):
        clue_prompt(cfg)


def test_t5_and_gpt_prompts_put_the_word_where_the_slot_is():
    class Options:
        batch_size, normalize, max_length = 4, "sum", 128

    seen = {}

    def fake(model, tokenizer, prompts, candidates, *args):
        seen["prompts"], seen["candidates"] = prompts, candidates
        return [[0.0] * len(c) for c in candidates]

    example = {"id": 0, "text": "花呗怎么还", "text_pair": "借呗怎么还", "label": 1}
    shot = {"id": 1, "text": "甲", "text_pair": "乙", "label": 0}
    template = "“{text}”和“{text_pair}”的意思{mask}。"
    original = prompt_scoring.scoring.score_continuations
    try:
        prompt_scoring.scoring.score_continuations = fake
        prompt_scoring.PromptScorer(None, None, "t5", "afqmc", Options()).scores(template, [example], [shot])
        assert seen["prompts"] == ["“甲”和“乙”的意思不同。\n“花呗怎么还”和“借呗怎么还”的意思<extra_id_0>。"]
        assert seen["candidates"] == [["<extra_id_0>不同", "<extra_id_0>相同"]]
        prompt_scoring.PromptScorer(None, None, "gpt-neo", "afqmc", Options()).scores(template, [example])
        assert seen["prompts"] == ["“花呗怎么还”和“借呗怎么还”的意思"]
        assert seen["candidates"] == [["不同。", "相同。"]]
    finally:
        prompt_scoring.scoring.score_continuations = original


@pytest.mark.parametrize("path", sorted((REPO / "recipes" / "clue-prompts").glob("*.yaml")), ids=lambda p: p.name)
def test_recipes_load_and_say_how_to_run_them(path):
    cfg = load_yaml(PromptConfig, path)
    comment = path.read_text("utf-8").split("\ntask:")[0]
    assert comment.startswith("#") and f"mengzi clue prompt {cfg.task} --recipe {path.relative_to(REPO)}" in comment
    assert cfg.task in LABEL_WORDS and resolve_templates(cfg.task, cfg.templates)


def test_pet_scores_match_the_scorer_and_pet_learns_its_shots(data):
    """PET's differentiable cloze scores equal score_label_words; fine-tuning on 8 real AFQMC shots through the
    template makes the BERT answer those shots (a random BERT gets about half of them)."""
    from mengzi.models.load import init_model

    need_data("clue/afqmc/train.json")
    model, tok = init_model("mengzi-bert-tiny", task="masked-lm", seed=0)
    shots = draw_shots(load_task("afqmc", "train", limit=200).to_list(), 2, 4, seed=0)

    class Options:
        batch_size, normalize, max_length, pet_steps, pet_lr, seed = 8, "sum", 96, 25, 1e-3, 0

    scorer = prompt_scoring.PromptScorer(model, tok, "bert", "afqmc", Options())
    template = TEMPLATES["afqmc"][0]
    texts = [scorer.cloze_text(template, s) for s in shots]
    model.eval()
    with torch.no_grad():
        differentiable = prompt_scoring.cloze_word_logprobs(model, tok, texts, scorer.words, 96)
    reference = prompt_scoring.scoring.score_label_words(model, tok, texts, scorer.words, max_length=96)
    assert differentiable.flatten().tolist() == pytest.approx([x for row in reference for x in row], abs=1e-4)
    gold = [s["label"] for s in shots]
    before = scorer.predict(template, shots)
    after = scorer.predict(template, shots, shots)  # BERT + shots: PET-tune a copy, then score
    assert sum(p == g for p, g in zip(after, gold)) >= 7 > sum(p == g for p, g in zip(before, gold))
    assert scorer.predict(template, shots) == before  # the scorer's own model is untouched
