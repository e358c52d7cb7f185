"""Every recipe under recipes/ loads into its config and its data inputs exist; every tiny pre-training recipe
runs a few steps (on a small slice of real text, with a freshly initialised checkpoint wherever it names the
output of another run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mengzi.clue.prompts import PromptConfig
from mengzi.clue.run import ClueRunConfig
from mengzi.clue.text2text import Text2TextConfig

from mengzi.cli import TokenizerTrainConfig
from mengzi.config import load_yaml, to_dict
from mengzi.data import resolve
from mengzi.multimodal.haic.benchmark import HaicConfig
from mengzi.multimodal.oscar.train import OscarTrainConfig
from mengzi.multimodal.video.train import VideoTrainConfig
from mengzi.pretrain.config import PretrainConfig
from mengzi.textgen.config import TextGenConfig

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
# one line per recipe family; None: accelerate's own config format
CONFIG_OF_FOLDER = {"tokenizer": TokenizerTrainConfig, "pretrain": PretrainConfig, "accelerate": None,
                    "clue": ClueRunConfig, "clue-text2text": Text2TextConfig, "clue-prompts": PromptConfig,
                    "textgen": TextGenConfig, "oscar": OscarTrainConfig, "video": VideoTrainConfig,
                    "haic": HaicConfig}
TINY_PRETRAIN = sorted((RECIPES / "pretrain").glob("*tiny*.yaml"))


def all_recipes() -> list[Path]:
    return sorted(RECIPES.rglob("*.yaml"))


def test_recipes_exist_for_every_family():
    folders = {p.relative_to(RECIPES).parts[0] for p in all_recipes()}
    assert folders == set(CONFIG_OF_FOLDER)


def test_every_text_variant_has_a_pretraining_recipe_and_a_tiny_one():
    names = {p.stem for p in (RECIPES / "pretrain").glob("*.yaml")}
    assert {"mengzi-bert-base", "mengzi-bert-L6-H768", "mengzi-bert-base-fin", "mengzi-t5-base",
            "mengzi-gpt-neo-base"} <= names
    assert {"mengzi-bert-tiny", "mengzi-bert-tiny-distill", "mengzi-bert-tiny-fin", "mengzi-t5-tiny",
            "mengzi-gpt-neo-tiny"} <= names


@pytest.mark.parametrize("path", all_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_loads_and_inputs_exist(path, data):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#") and ("mengzi " in text.split("\n\n")[0] or "-m mengzi" in text), \
        "a recipe opens with what it does and how to run it"
    cls = CONFIG_OF_FOLDER[path.relative_to(RECIPES).parts[0]]
    if cls is None:
        from accelerate.commands.config.config_args import ClusterConfig

        assert ClusterConfig.from_yaml_file(str(path)).num_processes >= 1
        return
    cfg = load_yaml(cls, path)
    if cls is ClueRunConfig:
        _check_clue_recipe(cfg, path)
        return
    if cls is TokenizerTrainConfig:
        inputs = cfg.input
    elif cls is PretrainConfig:
        inputs = [s.path for s in cfg.corpus.sources]
    else:  # the other families name their inputs in various fields: every data:REL string anywhere must exist
        inputs = list(_data_specs(to_dict(cfg)))
    for spec in inputs:
        assert resolve(spec).exists() or spec.startswith("data:"), spec  # resolve() checks data: paths (globs too)


def _data_specs(node):
    if isinstance(node, str) and node.startswith("data:"):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _data_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _data_specs(value)


def _check_clue_recipe(cfg: ClueRunConfig, path: Path) -> None:
    from mengzi.clue.tasks import get_task

    from mengzi.finetune.techniques import build_techniques

    task = get_task(cfg.task)
    assert path.stem.removesuffix("-tiny") == task.name
    build_techniques(cfg.techniques, task.kind)  # names, options and kinds are valid
    assert cfg.train.batch_size % cfg.train.micro_batch_size == 0
    for spec in cfg.files.values():
        assert resolve(spec).exists(), spec


def test_every_clue_task_has_a_base_and_a_tiny_recipe():
    from mengzi.clue import TASKS

    names = {p.stem for p in (RECIPES / "clue").glob("*.yaml")}
    assert names == set(TASKS) | {f"{t}-tiny" for t in TASKS}


def test_base_clue_recipes_carry_langboats_published_settings():
    published = {"afqmc": (3e-5, 32, 10), "tnews": (3e-5, 128, 10), "iflytek": (3e-5, 64, 10), "cmnli": (3e-5, 512, 10),
                 "cluewsc2020": (8e-6, 64, 50), "csl": (5e-5, 128, 5), "cmrc2018": (5e-5, 8, 5), "c3": (1e-4, 240, 3),
                 "chid": (5e-5, 256, 5)}
    for task, (lr, batch, epochs) in published.items():
        t = load_yaml(ClueRunConfig, RECIPES / "clue" / f"{task}.yaml").train
        assert (t.lr, t.batch_size, t.epochs) == (lr, batch, epochs), task


@pytest.fixture(scope="module")
def bert_tiny_checkpoint(tmp_path_factory, data) -> Path:
    from mengzi.models.load import init_model, save_pretrained

    model, tok = init_model("mengzi-bert-tiny", task="pretraining")
    return save_pretrained(model, tok, tmp_path_factory.mktemp("ckpt") / "bert-tiny")


@pytest.mark.parametrize("path", TINY_PRETRAIN, ids=lambda p: p.stem)
def test_tiny_pretraining_recipe_runs(path, tmp_path, data, bert_tiny_checkpoint):
    import json

    from mengzi.pretrain.trainer import pretrain
    from mengzi.textfiles import Source

    cfg = load_yaml(PretrainConfig, path)
    first = cfg.corpus.sources[0]  # the recipe's own first source, cut to 300 documents
    small = tmp_path / "slice.txt"
    from mengzi.textfiles import ReadStats, iter_source

    docs = []
    for doc in iter_source(first, ReadStats()):
        docs.append(doc.replace("\n", " "))
        if len(docs) == 300:
            break
    small.write_text("\n".join(docs) + "\n", encoding="utf-8")
    cfg.corpus.sources, cfg.corpus.eval_sources = [Source(path=str(small))], []
    cfg.corpus.eval_fraction, cfg.corpus.num_proc, cfg.corpus.cache_dir = 0.05, 1, str(tmp_path / "cache")
    cfg.out = str(tmp_path / "run")
    if cfg.model.init_from:
        cfg.model.init_from = str(bert_tiny_checkpoint)
    if "distill" in cfg.objectives:
        cfg.objectives["distill"]["teacher"] = str(bert_tiny_checkpoint)
    t = cfg.train
    t.max_steps, t.batch_size, t.micro_batch_size, t.eval_batches, t.save_every, t.threads = 2, 4, 2, 1, 2, 1
    out = pretrain(cfg)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train[-1]["step"] == 2 and all(f"{name}_loss" in train[-1] for name in cfg.objectives)
    assert (out / "model" / "model.safetensors").is_file()
