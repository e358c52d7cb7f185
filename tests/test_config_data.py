"""Dataclass configs <-> YAML <-> CLI flags; the missing-data message; atomic writes."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from mengzi import atomic
from mengzi.config import ConfigError, add_arguments, dump_yaml, load_yaml, option, resolve
from mengzi.data import MissingDataError, require
from mengzi.tokenizer.normalize import NormalizerConfig


@dataclass
class Toy:
    lr: float = option(5e-5, "peak learning rate")
    steps: int = option(10, "optimizer steps")
    inputs: list[str] = option([], "input files")
    normalize: NormalizerConfig = option(NormalizerConfig(), "corpus normaliser")


def test_yaml_round_trip_with_help_comments(tmp_path):
    cfg = Toy(lr=1e-3, inputs=["a.txt", "语料.txt"])
    text = dump_yaml(cfg, header="a toy recipe")
    assert "# peak learning rate" in text and "# full-width ASCII" in text
    (tmp_path / "toy.yaml").write_text(text, encoding="utf-8")
    assert load_yaml(Toy, tmp_path / "toy.yaml") == cfg


def test_yaml_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lr: 0.1\nsteps: many\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml:2: field 'steps': expected int, got 'many'"):
        load_yaml(Toy, path)
    path.write_text("lr: 0.1\nnormalize:\n  strip_html: true\n  strip_htlm: false\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['strip_htlm'\]"):
        load_yaml(Toy, path)


def test_flags_override_yaml_which_overrides_defaults(tmp_path):
    (tmp_path / "r.yaml").write_text("lr: 0.1\nsteps: 7\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_arguments(parser, Toy)
    args = parser.parse_args(["--config", str(tmp_path / "r.yaml"), "--steps", "9", "--no-normalize.strip-html",
                              "--inputs", "x", "y"])
    cfg = resolve(Toy, args)
    assert (cfg.lr, cfg.steps, cfg.inputs) == (0.1, 9, ["x", "y"])
    assert cfg.normalize.strip_html is False and cfg.normalize.strip_urls is True


def test_missing_data_names_file_and_source(tmp_path):
    with pytest.raises(MissingDataError) as err:
        require("vocab/google_zh_vocab.txt", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "vocab/google_zh_vocab.txt") in message and "21128" in message and "huggingface" in message


def test_atomic_folder_keeps_old_until_new_is_complete(tmp_path):
    out = tmp_path / "run"
    with atomic.folder(out) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic.folder(out, overwrite=True) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("killed")
    assert (out / "a").read_text() == "1" and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(FileExistsError):
        with atomic.folder(out):
            pass


def test_iter_texts_reads_every_format(tmp_path):
    from mengzi.textfiles import ReadStats, iter_texts

    (tmp_path / "a.txt").write_text("第一行\n\n第二行\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "甲"}\n{"other": 1}\n{"text": "乙"}\n', encoding="utf-8")
    (tmp_path / "c.json").write_text('[{"text": "丙"}, {"text": ""}, {"title": "x"}]', encoding="utf-8")
    (tmp_path / "d.tsv").write_text("1\t丁\n", encoding="utf-8")
    (tmp_path / "e.txt").write_bytes("好".encode() + b"\xff\n")
    stats = ReadStats()
    assert list(iter_texts([tmp_path], stats=stats)) == ["第一行", "第二行", "甲", "乙", "丙", "丁", "好\ufffd"]
    assert (stats.files, stats.lines, stats.empty, stats.undecodable_lines) == (5, 7, 2, 1)
    assert stats.bad_records == 2
    assert stats.problems == [f"{tmp_path / 'b.jsonl'}:2: field 'text': KeyError 'text'",
                              f"{tmp_path / 'c.json'}: record 2: field 'text' missing or not text"]


def test_sources_read_blank_line_documents_tsv_headers_and_bad_columns(tmp_path):
    from mengzi.textfiles import ReadStats, Source, iter_file

    (tmp_path / "docs.txt").write_text("甲一\r\n甲二\r\n\r\n\r\n乙一\n", encoding="utf-8")
    stats = ReadStats()
    docs = list(iter_file(tmp_path / "docs.txt", Source(documents="blank_line"), stats))
    assert docs == ["甲一\n甲二", "乙一"] and stats.lines == 2
    (tmp_path / "w.tsv").write_text("label\ttext_a\n1\t微博\n\n2\n", encoding="utf-8")
    stats = ReadStats()
    assert list(iter_file(tmp_path / "w.tsv", Source(column="text_a"), stats)) == ["微博"]
    assert stats.problems == [f"{tmp_path / 'w.tsv'}:4: column text_a: the line has 1 columns"]
    assert stats.empty == 1  # a blank line between records is empty, not malformed
    # a tab-separated .txt (FinRE: head, tail, relation, sentence) read as tsv by column index
    (tmp_path / "re.txt").write_text("东方航空\t上航\t合并\t东方航空将与上航合并\n", encoding="utf-8")
    assert list(iter_file(tmp_path / "re.txt", Source(format="tsv", column="3"), ReadStats())) == ["东方航空将与上航合并"]
    try:
        list(iter_file(tmp_path / "w.tsv", Source(column="body"), ReadStats()))
    except ValueError as e:
        assert "w.tsv:1: column 'body' is not in the header" in str(e)
    else:
        raise AssertionError("an unknown column name must fail")


def test_nested_defaults_are_fresh_for_every_instance():
    """An edit to one config's nested list or dict never reaches the next instance's default."""

    @dataclass
    class Inner:
        overrides: dict = option({"hidden_size": 64}, "config overrides")
        events: list = option(["红色方块", "蓝色圆形"], "event names")

    @dataclass
    class Outer:
        model: Inner = option(Inner(), "the model")

    first = Outer()
    first.model.overrides["hidden_size"] = 8
    first.model.events.append("绿色三角形")
    assert Outer().model == Inner() == Inner(overrides={"hidden_size": 64}, events=["红色方块", "蓝色圆形"])
