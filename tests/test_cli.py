"""The `mengzi` command: help, presets, init, tokenizer train, info, data check, textgen / generate flags, the
multimodal and CLUE text-to-text / prompt commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mengzi.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mengzi", *args], capture_output=True, text=True)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for name in ["presets", "init", "tokenizer", "info", "data", "textgen", "generate", "oscar", "video", "haic"]:
        assert name in out.stdout
    for group, names in {"clue": ["run", "submit", "validate", "text2text", "prompt"], "oscar": ["train", "caption"],
                         "video": ["train"], "haic": ["bench"]}.items():
        out = run(group, "--help")
        assert out.returncode == 0 and all(n in out.stdout for n in names), (group, out.stdout)


def test_help_does_not_import_torch():
    code = "import sys; from mengzi.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


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


def test_generate_and_textgen_flags(tmp_path, capsys):
    from mengzi.cli import build_parser
    from mengzi.config import resolve
    from mengzi.textgen.config import GenerateConfig, TextGenConfig

    args = build_parser().parse_args(["generate", "some/model", "--text", "甲", "乙", "--num-beams", "4",
                                      "--do-sample", "--top-p", "0.9", "--text", "丙"])
    cfg = resolve(GenerateConfig, args, model=args._pos_model)
    assert (cfg.model, cfg.text, cfg.num_beams, cfg.do_sample, cfg.top_p) == ("some/model", ["甲", "乙", "丙"], 4, True,
                                                                              0.9)  # repeated list flags add up
    assert cfg.options().num_beams == 4
    args = build_parser().parse_args(["textgen", "train", "--config", "recipes/textgen/csl-keywords-tiny.yaml",
                                      "--generation.num-beams", "3", "--train.max-steps", "7"])
    cfg = resolve(TextGenConfig, args)
    assert (cfg.generation.num_beams, cfg.train.max_steps, cfg.task) == (3, 7, "csl-keywords")
    assert main(["generate", str(tmp_path)]) == 2  # no prompt
    assert "--text" in capsys.readouterr().err


def test_multimodal_and_clue_generative_commands_resolve_their_recipes():
    from mengzi.clue.prompts import PromptConfig
    from mengzi.clue.text2text import Text2TextConfig

    from mengzi.cli import build_parser
    from mengzi.config import resolve
    from mengzi.multimodal.oscar.config import OscarTrainConfig
    from mengzi.multimodal.video.config import VideoTrainConfig

    parse = build_parser().parse_args
    cfg = resolve(OscarTrainConfig, parse(["oscar", "train", "--config", "recipes/oscar/retrieval-tiny.yaml",
                                           "--train.max-steps", "3"]))
    assert (cfg.task, cfg.train.max_steps) == ("retrieval", 3)
    cfg = resolve(VideoTrainConfig, parse(["video", "train", "--config", "recipes/video/temporal-order-tiny.yaml",
                                           "--model.aggregator-positions", "none", "--stages", "{all: 5}"]))
    assert (cfg.model.aggregator_positions, cfg.stages) == ("none", {"all": 5})
    args = parse(["clue", "text2text", "tnews", "--config", "recipes/clue-text2text/tnews-tiny.yaml"])
    assert resolve(Text2TextConfig, args, task=args._pos_task).task == "tnews"
    args = parse(["clue", "prompt", "ocnli", "--config", "recipes/clue-prompts/ocnli-bert-tiny.yaml"])
    assert resolve(PromptConfig, args, task=args._pos_task).task == "ocnli"


def test_haic_bench_runs_from_the_command_line(tmp_path, capsys):
    import json

    out = tmp_path / "haic"
    assert main(["haic", "bench", "--config", "recipes/haic/synthetic-small.yaml", "--sizes.captions", "8",
                 "--sizes.qa", "20", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # the schema answerer reads ground-truth captions exactly: every category at 1.0, 4 questions each
    assert metrics["overall"] == {"n": 20, "correct": 20, "accuracy": 1.0}
    assert set(metrics["categories"]) == {"interaction", "action_details", "action_sequence", "count", "attribute"}
    assert "overall 1.000" in capsys.readouterr().out
    assert main(["haic", "bench", "--sizes.qa", "-3", "--out", str(tmp_path / "bad")]) == 2
