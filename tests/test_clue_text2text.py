"""`mengzi.clue.text2text`: CLUE classification as text-to-text on train_textgen.

What the run test shows, honestly: a T5 tiny from scratch fine-tuned on 32 real AFQMC training pairs learns to
produce the label words for *those* pairs (dev is pointed at the training file), beating the majority class of the
same examples by both decodes. A tiny model trained for seconds does not generalise to AFQMC's dev set; this proves
the pipeline (sources, targets, training, constrained and free decoding, label mapping, test files) works and
learns, not that the model is good.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import need_data
from mengzi.clue.tasks import TASKS
from mengzi.clue.text2text import Text2TextConfig, clue_text2text, nearest_label, pairs, source_text

from mengzi.config import load_yaml
from mengzi.textgen.config import TextGenTrainConfig

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "clue-text2text"


def test_nearest_label_maps_generations_back():
    words = ["故事", "文化", "娱乐", "体育"]
    assert nearest_label("体育", words, [0, 1, 2, 3]) == 3
    assert nearest_label(" 体 育 ", words, [0, 1, 2, 3]) == 3  # spaces and SentencePiece's ▁ ignored
    assert nearest_label("体坛", words, [0, 1, 2, 3]) == 3  # one shared character
    assert nearest_label("文艺娱乐", words, [0, 1, 2, 3]) in (1, 2)
    assert nearest_label("文娱", words, [2, 1, 0, 3]) == 2  # a tie (文 / 娱): the more frequent training label
    assert nearest_label("", words, [3, 0, 1, 2]) == 3  # nothing shared: the most frequent training label


def test_sources_and_targets():
    example = {"id": 7, "text": "花呗怎么还", "text_pair": "借呗怎么还", "label": 1}
    template = "“{text}”和“{text_pair}”的意思{mask}。"
    assert source_text("afqmc", template, example) == "“花呗怎么还”和“借呗怎么还”的意思<extra_id_0>。"
    ds = pairs("afqmc", template, [example])
    assert ds.column_names == ["id", "source", "target"] and ds[0]["target"] == "相同" and ds[0]["id"] == "7"


def test_t5_tiny_learns_label_words_on_its_training_subset(data, tmp_path):
    need_data("clue/afqmc/train.json", "clue/afqmc/test.json")
    train = TextGenTrainConfig(max_steps=60, batch_size=16, micro_batch_size=16, lr=3e-3, max_train_examples=32,
                               max_eval_examples=32, save_every=0, log_every=20, max_target_len=16, eval_batch_size=32,
                               threads=1)
    cfg = Text2TextConfig(task="afqmc", model="mengzi-t5-tiny", from_scratch=True, train=train,
                          overrides={"d_ff": 128}, files={"dev": "data:clue/afqmc/train.json"},
                          max_test_examples=10, out=str(tmp_path / "afqmc"))
    out = clue_text2text(cfg)
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    dev = metrics["dev"]
    assert dev["examples"] == 32 and dev["accuracy"] == dev["accuracy_constrained"]
    assert dev["accuracy_constrained"] > dev["majority_class"] + 10, dev
    assert dev["accuracy_generated"] > dev["majority_class"] + 10, dev
    assert dev["exact_words"] > 90, dev  # it generates the label words themselves
    lines = (out / "predictions" / "afqmc_predict.json").read_text("utf-8").splitlines()
    assert len(lines) == 10 and {json.loads(x)["label"] for x in lines} <= {"0", "1"}
    assert (out / "train" / "model" / "model.safetensors").is_file() and (out / "config.yaml").is_file()
    with pytest.raises(FileExistsError):
        clue_text2text(cfg)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_recipes_load_and_say_how_to_run_them(path):
    cfg = load_yaml(Text2TextConfig, path)
    text = path.read_text("utf-8")
    comment = text.split("\ntask:")[0]
    assert text.startswith("#") and f"mengzi clue text2text {cfg.task} --recipe {path.relative_to(REPO)}" in comment
    assert cfg.task in TASKS and cfg.decode in ("score", "generate")


def test_text_to_text_is_for_t5(tmp_path):
    """A causal LM would read only the template before the slot (for TNEWS: "这是一条", none of the title)."""
    from mengzi.config import ConfigError

    cfg = Text2TextConfig(task="tnews", model="mengzi-gpt-neo-tiny", from_scratch=True, out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="text-to-text takes a T5 .*mengzi clue prompt tnews"):
        clue_text2text(cfg)
