"""The `mengzi` command: help, presets, init, tokenizer train, info, data check, not-yet-available commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mengzi.cli import LATER, main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mengzi", *args], capture_output=True, text=True)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for name in ["presets", "init", "tokenizer", "info", "data", *LATER]:
        assert name in out.stdout


def test_help_does_not_import_torch():
    code = "import sys; from mengzi.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(LATER))
def test_later_commands_say_not_available_yet(name, capsys):
    assert main([name, "--anything", "x"]) == 2
    err = capsys.readouterr().err
    assert "not available yet" in err and f"issue #{LATER[name][1]}" in err


def test_presets_lists_all(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ["mengzi-bert-base", "mengzi-bert-base-fin", "mengzi-bert-L6-H768", "mengzi-t5-base",
                 "mengzi-gpt-neo-base", "mengzi-oscar-base", "mengzi-bert-tiny", "mengzi-t5-tiny",
                 "mengzi-gpt-neo-tiny", "mengzi-oscar-tiny"]:
        assert name in out


def test_tokenizer_train_init_info_pipeline(tmp_path, data, capsys):
    corpus = data / "corpus/uer_samples/CLUECorpusSmall_sampled.txt"
    assert main(["tokenizer", "train", "--kind", "t5", "--input", str(corpus), "--out", str(tmp_path / "tok"),
                 "--vocab-size", "8128", "--max-texts", "2000"]) == 0
    assert (tmp_path / "tok/spiece.model").is_file() and (tmp_path / "tok/tokenizer.json").is_file()
    assert main(["init", "mengzi-t5-tiny", str(tmp_path / "t5"), "--tokenizer", str(tmp_path / "tok")]) == 0
    assert sorted(p.name for p in (tmp_path / "t5").iterdir() if p.suffix == ".safetensors") == ["model.safetensors"]
    assert main(["init", "mengzi-bert-tiny", str(tmp_path / "bert")]) == 0
    assert main(["init", "mengzi-bert-tiny", str(tmp_path / "bert")]) == 2  # no silent overwrite
    assert "exists" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "bert"), "--text", "我爱北京天安门"]) == 0
    out = capsys.readouterr().out
    assert "北[2] 京[2]" in out and "天[3] 安[3] 门[3]" in out and "(1, 9, 128)" in out


def test_tokenizer_train_from_recipe_with_flag_override(tmp_path, data):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"kind: wordpiece\ninput: [{data / 'corpus/finance/FinRE/valid.txt'}]\nvocab_size: 50000\n"
                      "normalize:\n  traditional_to_simplified: false\n", encoding="utf-8")
    assert main(["tokenizer", "train", "--config", str(recipe), "--vocab-size", "2000", "--out",
                 str(tmp_path / "wp")]) == 0
    vocab = (tmp_path / "wp/vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) <= 2000


def test_bad_recipe_and_missing_data_errors(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: t5\nvocab_size: lots\n", encoding="utf-8")
    assert main(["tokenizer", "train", "--config", str(recipe), "--input", "x", "--out", "y"]) == 2
    assert "r.yaml:2: field 'vocab_size'" in capsys.readouterr().err
    assert main(["data", "check", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing data file" in err and "google_zh_vocab.txt" in err and "put it at" in err
    assert main(["init", "mengzi-bert-tiny", str(tmp_path / "m"), "--data", str(tmp_path / "none")]) == 2
    assert "21128-entry Chinese BERT vocab" in capsys.readouterr().err


def test_pretrain_flags_override_the_recipe():
    from mengzi.cli import build_parser
    from mengzi.config import resolve
    from mengzi.pretrain.config import PretrainConfig

    recipe = Path(__file__).resolve().parents[1] / "recipes/pretrain/mengzi-bert-tiny.yaml"
    args = build_parser().parse_args(["pretrain", "--config", str(recipe), "--train.max-steps", "3",
                                      "--corpus.sources", "a.txt", "b.jsonl", "--objectives", "{mlm: {ngram: 3}}"])
    cfg = resolve(PretrainConfig, args)
    assert cfg.train.max_steps == 3 and cfg.train.batch_size == 64  # the rest from the recipe
    assert [s.path for s in cfg.corpus.sources] == ["a.txt", "b.jsonl"]
    assert cfg.objectives == {"mlm": {"ngram": 3}}


def test_pretrain_unknown_objective_is_a_clear_error(tmp_path, capsys):
    from mengzi.cli import main

    (tmp_path / "t.txt").write_text("一句话。\n", encoding="utf-8")
    code = main(["pretrain", "--out", str(tmp_path / "run"), "--corpus.sources", str(tmp_path / "t.txt"),
                 "--objectives", "{mlmm: {}}"])
    assert code == 2
    assert "objectives.mlmm: unknown objective; registered: ['causal_lm', 'distill', 'mlm', 'ner', 'pos', 'sop', " \
           "'span_corruption']" in capsys.readouterr().err
