"""Generated malformed users' files, over every reader of users' record files: `mengzi finetune` (classification,
multiple choice, span; labelled and test splits), textgen pairs, `generate --input`, Oscar's JSONL and the HAIC
benchmark and caption files, each in every format it reads (CSV, TSV, JSON lines, a JSON array).

Each case must raise the reader's own ValueError subclass (DataError, or BenchmarkError for HAIC) — never a
RecursionError, IsADirectoryError, UnicodeDecodeError, KeyError, IndexError or a plain ValueError — whose message
names the file and the line (checked exactly where the generator knows it) or the field. The CLI turns such an
error into one line, exit code 2, with no run folder left behind."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mengzi.multimodal.haic.benchmark import BenchmarkError
from mengzi.tabular import DataError

FORMATS = ("csv", "tsv", "jsonl", "json")
HAIC_BENCH = {}  # built once: a small valid benchmark the HAIC cases corrupt


# ------------------------------------------------------------------------------------------------- the readers
@dataclass
class Reader:
    """One reader of users' files: valid records, the formats it reads, how to call it, which fields are texts,
    labels and lists (for the field mutations), and the error class it raises."""

    records: list[dict]
    formats: tuple[str, ...]
    load: Callable[[Path], object]
    texts: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()  # required non-empty scalars (labels, ids)
    lists: tuple[str, ...] = ()
    error: type = DataError
    name: str = ""  # the file name the reader needs ("" : any, with the format's suffix)
    setup: Callable[[Path], None] = field(default=lambda folder: None)
    optional: tuple[str, ...] = ()  # fields that may be left out


def _finetune(kind: str, labelled: bool = True, **names):
    def load(path):
        from mengzi.finetune.userdata import DataFiles, load_user_split

        return load_user_split(DataFiles(kind=kind, id="id", **names), path, ["neg", "pos"], labelled=labelled)
    return load


def _pairs(path):
    from mengzi.textgen.config import TextGenData
    from mengzi.textgen.data import user_pairs

    return user_pairs(TextGenData(prefix="", id="id"), path)


def _generate(path):
    from mengzi.export.generate import _prompts

    from mengzi.textgen.config import GenerateConfig

    return _prompts(GenerateConfig(model="unused", input=str(path)))


def _oscar(path):
    from mengzi.multimodal.oscar.data import read_jsonl

    return read_jsonl(path)


def _oscar_setup(folder: Path):
    from mengzi.multimodal.oscar.regions import FEATURE_DIM

    np.save(folder / "f.npy", np.random.default_rng(0).random((3, FEATURE_DIM), dtype=np.float32))


def _haic_bench():
    if not HAIC_BENCH:
        from mengzi.multimodal.haic.benchmark import BenchmarkSizes, make_benchmark

        HAIC_BENCH["bench"] = make_benchmark(BenchmarkSizes(4, 10), seed=2)
    return HAIC_BENCH["bench"]


def _haic_files(folder: Path):
    from mengzi.multimodal.haic.benchmark import save_benchmark

    save_benchmark(_haic_bench(), folder)


def _haic_records(name: str) -> list[dict]:
    from mengzi.multimodal.haic.benchmark import save_benchmark

    if name not in HAIC_BENCH:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            save_benchmark(_haic_bench(), tmp)
            HAIC_BENCH[name] = [json.loads(line) for line in (Path(tmp) / name).read_text("utf-8").splitlines()]
    return copy.deepcopy(HAIC_BENCH[name])


def _haic_load(path):
    from mengzi.multimodal.haic.benchmark import load_benchmark

    return load_benchmark(path.parent)


def _haic_captions(path):
    from mengzi.multimodal.haic.benchmark import HaicConfig, _caption_texts

    return _caption_texts(HaicConfig(captions=str(path)), _haic_bench())


def readers() -> dict[str, Reader]:
    cls = [{"id": f"r{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(
        [("很好", "pos"), ("太差", "neg"), ("不错", "pos"), ("一般", "neg")])]
    mc = [{"id": f"q{i}", "context": "今天下雨", "question": "天气?", "choices": ["晴", "雨", "雪"], "label": "1"}
          for i in range(4)]
    span = [{"id": f"s{i}", "context": "北京是中国的首都", "question": "首都?", "answer": "北京"} for i in range(4)]
    pairs = [{"id": f"p{i}", "source": f"问题{i}", "target": f"答案{i}"} for i in range(4)]
    oscar = [{"features": "f.npy", "caption": f"一只猫{i}", "tags": ["cat", "狗"]} for i in range(4)]
    return {
        "finetune-classification": Reader(cls, FORMATS, _finetune("classification"), ("text",), ("label", "id")),
        "finetune-test-split": Reader(cls, FORMATS, _finetune("classification", labelled=False), ("text",), ("id",)),
        "finetune-multiple-choice": Reader(mc, FORMATS, _finetune("multiple_choice"), ("context",), ("label", "id"),
                                           ("choices",)),
        "finetune-span": Reader(span, FORMATS, _finetune("span"), ("context", "question", "answer"), ("id",)),
        "textgen-pairs": Reader(pairs, FORMATS, _pairs, ("source", "target"), ("id",)),
        "generate-input": Reader([{"text": f"提示{i}"} for i in range(4)], FORMATS, _generate, ("text",)),
        "oscar-jsonl": Reader(oscar, ("jsonl",), _oscar, ("caption", "features"), (), ("tags",), setup=_oscar_setup,
                              optional=("tags",)),
        "haic-captions": Reader(_haic_records("captions.jsonl"), ("jsonl",), _haic_load, ("id",), (), (),
                                BenchmarkError, "captions.jsonl", _haic_files),
        "haic-qa": Reader(_haic_records("qa.jsonl"), ("jsonl",), _haic_load, ("text", "clip_id", "lang"), (),
                          ("options",), BenchmarkError, "qa.jsonl", _haic_files),
        "haic-caption-texts": Reader([{"clip_id": r["id"], "caption": "一个人在挥手"} for r in
                                      _haic_records("captions.jsonl")], ("jsonl",), _haic_captions,
                                     ("clip_id", "caption"), (), (), BenchmarkError),
    }


# ------------------------------------------------------------------------------------------------- rendering
def render(fmt: str, records: list[dict]) -> str:
    """Records as a file: CSV/TSV under a header (lists as JSON cells), JSON lines, or a JSON array with one item a
    line. Record i then starts on line i + 2 (CSV, TSV, JSON array) or i + 1 (JSON lines)."""
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if fmt == "json":
        return "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n"
    header = list(dict.fromkeys(k for r in records for k in r))

    def text(value):
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    if fmt == "tsv":
        return "".join("\t".join(row) + "\n" for row in [header] + [[text(r.get(k, "")) for k in header]
                                                                    for r in records])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header] + [[text(r.get(k, "")) for k in header]
                                                                  for r in records])
    return buffer.getvalue()


def line_of(fmt: str, index: int) -> int:
    return index + (1 if fmt == "jsonl" else 2)


@dataclass
class Case:
    reader: str
    fmt: str
    name: str
    content: bytes | None  # None: the path is a folder; b"MISSING": no file at all
    line: int | None = None  # the line the message must name (None: any line, or a field)
    field: str | None = None  # the field the message must name
    suffix: str = ""  # the file's suffix when not the format's


def cases() -> list[Case]:
    out: list[Case] = []
    for rname, reader in readers().items():
        for fmt in reader.formats:
            good = reader.records
            json_like = fmt in ("jsonl", "json")

            def add(name, records_or_bytes, line=None, field=None, suffix="", fmt=fmt, rname=rname):
                data = records_or_bytes if isinstance(records_or_bytes, bytes | None) else \
                    render(fmt, records_or_bytes).encode("utf-8")
                out.append(Case(rname, fmt, name, data, line, field, suffix))

            def changed(index, change, good=good):
                records = copy.deepcopy(good)
                change(records[index])
                return records

            # --- the file as a whole
            add("empty-file", b"")
            add("blank-lines-only", b"\n \n\r\n")
            add("folder-not-file", None)
            add("missing-file", b"MISSING")
            if not json_like:
                add("header-only", render(fmt, good).split("\n", 1)[0].encode() + b"\n")
                header = render(fmt, good).split("\n", 1)[0]
                sep = "," if fmt == "csv" else "\t"
                first = header.split(sep)[0]
                add("duplicate-header", (header + sep + first + "\n").encode() + render(fmt, good).split("\n", 1)[1]
                    .replace("\n", sep + "x\n").encode(), 1)
                lines = render(fmt, good).split("\n")
                lines[2] += sep + "extra"
                add("extra-cell", "\n".join(lines).encode(), 3)
                if sep in header:  # (a one-column file has no cell to leave out)
                    lines = render(fmt, good).split("\n")
                    lines[3] = lines[3].rsplit(sep, 1)[0]
                    add("missing-cell", "\n".join(lines).encode(), 4)
            else:
                add("empty-array" if fmt == "json" else "only-whitespace-object-lines", b"[]\n" if fmt == "json"
                    else b"  \n\n")
            text = render(fmt, good)
            # bad bytes in record 1: a UTF-8 character cut short; a GBK file read as UTF-8
            at_line = line_of(fmt, 1)
            raw = text.encode("utf-8")
            start = raw.index(b"\n".join(raw.split(b"\n")[at_line - 1:at_line]))
            cut = start + next(i for i, b in enumerate(raw[start:]) if chr(b).isalnum() or b >= 0x80)
            add("truncated-utf8", raw[:cut] + b"\xe4\xbd" + raw[cut:], at_line)
            if any(ord(ch) > 127 for ch in text):
                add("gbk-read-as-utf8", text.encode("gbk", errors="replace"), text.count("\n", 0, next(
                    i for i, ch in enumerate(text) if ord(ch) > 127)) + 1)
            add("utf16-no-bom-read-as-utf8", text.encode("utf-16-le"))
            # broken syntax
            if fmt == "jsonl":
                add("truncated-last-line", text.rstrip("\n")[:-3].encode(), len(good))
                add("deep-nesting", (render(fmt, good[:1]) + "[" * 100_000 + "\n").encode(), 2)
                add("deep-nesting-in-field", (render(fmt, good[:1]) + '{"x": ' + "[" * 100_000 + "\n").encode(), 2)
                for bad in ("[1, 2]", '"a string"', "42", "null", "true"):
                    add(f"non-object-line-{bad[:6]}", (render(fmt, good[:2]) + bad + "\n").encode(), 3)
                add("two-objects-one-line", (text.replace("}\n", "} {}\n", 1)).encode(), 1)
                add("nan-literal", text.replace("}\n", ', "score": NaN}\n', 1).encode(), 1, "score")
                add("infinity-literal", text.replace("}\n", ', "score": -Infinity}\n', 1).encode(), 1, "score")
                add("overflowing-number", text.replace("}\n", ', "score": 1e999}\n', 1).encode(), 1, "score")
                add("huge-integer", text.replace("}\n", ', "score": ' + "9" * 5000 + "}\n", 1).encode(), 1)
                add("duplicate-key", text.replace("}\n", ', "dup": 1, "dup": 2}\n', 1).encode(), 1, "dup")
                add("lone-surrogate", text.replace("}\n", ', "s": "\\ud800"}\n', 1).encode(), 1, "s")
                add("single-quotes", text.replace('"', "'", 4).encode(), 1)
            elif fmt == "json":
                add("unclosed-array", text.rstrip().rstrip("]").encode())
                add("trailing-comma", text.replace("\n]", ",\n]").encode(), len(good) + 2)
                add("missing-comma", text.replace(",\n", "\n", 1).encode(), 3)
                add("garbage-after-array", (text + "x\n").encode())
                add("deep-nesting", ("[\n" + "[" * 100_000).encode(), 2)
                add("non-object-item", text.replace("[\n", "[\n7,\n", 1).encode(), 2)
                add("nan-literal", text.replace("}", ', "score": NaN}', 1).encode(), 2, "score")
            elif fmt == "csv":
                add("unclosed-quote", (text + '"never closed,x\nmore,rows\n').encode(), len(good) + 2)
                add("quote-then-text", text.replace("\n", '\n"quoted"junk', 2).replace('\n"quoted"junk', "\n", 1)
                    .encode(), 3)
            elif "\t" in text.split("\n")[0]:  # tsv: a quote is text; a tab inside a text is an extra cell
                lines = text.split("\n")
                lines[2] = lines[2].replace("\t", "\tsplit\t", 1)
                add("tab-inside-text", "\n".join(lines).encode(), 3)
            # --- fields of record 1
            index, line = 1, line_of(fmt, 1)
            one_column = not json_like and len(good[0]) == 1  # (there, a missing cell is a blank line)
            for name in () if one_column else set(reader.texts + reader.labels + reader.lists) - set(reader.optional):
                add(f"missing-field-{name}", changed(index, lambda r, n=name: r.pop(n)), line, name)
            for name in reader.texts + reader.labels:
                add(f"empty-{name}", changed(index, lambda r, n=name: r.update({n: "  " if n != "id" else ""})),
                    line, name)
                if json_like:
                    for value, tag in (([1, 2], "list"), ({"a": 1}, "object"), (None, "null"), (True, "bool")):
                        add(f"{tag}-for-{name}", changed(index, lambda r, n=name, v=value: r.update({n: v})), line, name)
                    if name in reader.texts:
                        add(f"number-for-text-{name}", changed(index, lambda r, n=name: r.update({n: 12})), line, name)
            for name in reader.lists:
                if json_like:
                    add(f"text-for-list-{name}", changed(index, lambda r, n=name: r.update({n: "a b"})), line, name)
                    add(f"nested-in-list-{name}", changed(index, lambda r, n=name: r[n].__setitem__(0, ["x"])),
                        line, name)
            if "id" in reader.labels:
                add("duplicate-id", changed(index, lambda r, g=good: r.update(id=g[0]["id"])), line, "id")
            if "label" in reader.labels and rname == "finetune-classification":
                add("unknown-label", changed(index, lambda r: r.update(label="maybe")), line, "label")
                if json_like:
                    add("fractional-label", changed(index, lambda r: r.update(label=1.5)), line, "label")
            if rname == "finetune-multiple-choice":
                add("choice-index-out-of-range", changed(index, lambda r: r.update(label="7")), line, "label")
                add("one-choice", changed(index, lambda r: r.update(choices=["只有一个"])), line, "choices")
                if not json_like:
                    add("choices-not-json", changed(index, lambda r: r.update(choices="[晴, 雨")), line, "choices")
                    add("choices-deeply-nested", changed(index, lambda r: r.update(choices="[" * 100_000)), line,
                        "choices")
            if rname == "finetune-span":
                add("answer-not-in-context", changed(index, lambda r: r.update(answer="上海")), line, "answer")
            if rname == "oscar-jsonl":
                add("image-and-features", changed(index, lambda r: r.update(image="a.png")), line)
                add("feature-file-missing", changed(index, lambda r: r.update(features="nope.npy")), line, "features")
                add("feature-path-is-list", changed(index, lambda r: r.update(features=["f.npy"])), line, "features")
                add("tags-number", changed(index, lambda r: r.update(tags=[3])), line, "tags[0]")
            if rname == "haic-captions":
                add("caption-not-object", changed(index, lambda r: r.update(caption="text")), line, "caption")
                add("caption-schema", changed(index, lambda r: r["caption"].update(people="x")), line, "caption")
            if rname == "haic-qa":
                add("answer-text", changed(index, lambda r: r.update(answer="1")), line, "answer")
                add("answer-bool", changed(index, lambda r: r.update(answer=True)), line, "answer")
                add("unknown-clip", changed(index, lambda r: r.update(clip_id="nope")), line, "clip_id")
            if rname == "haic-caption-texts":
                add("repeated-clip", changed(index, lambda r, g=good: r.update(clip_id=g[0]["clip_id"])), line, "clip_id")
        if reader.name == "" and "jsonl" in reader.formats and rname.startswith("finetune"):
            out.append(Case(rname, "txt", "unknown-suffix", render("csv", reader.records).encode(), suffix=".txt"))
    return out


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.reader}-{c.fmt}-{c.name}" for c in CASES])
def test_malformed_file_is_one_clear_error(tmp_path, case):
    reader = readers_cache()[case.reader]
    reader.setup(tmp_path)
    path = tmp_path / (reader.name or f"bad-input{case.suffix or '.' + case.fmt}")
    if case.content is None:
        path.unlink() if path.is_file() else None
        path.mkdir()
    elif case.content != b"MISSING":
        path.write_bytes(case.content)
    elif path.exists():
        path.unlink()
    with pytest.raises(Exception) as info:
        reader.load(path)
    error = info.value
    assert type(error) is reader.error, f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message.strip() or case.name.startswith("tab"), message
    assert path.name in message, message
    if case.line is not None:
        assert re.search(rf"{re.escape(path.name)}:{case.line}\b", message), f"line {case.line}: {message}"
    if case.field is not None:
        assert f"field '{case.field}" in message, f"field {case.field}: {message}"  # or a part: 'tags[0]'"
    if case.line is None and case.field is None and case.content not in (None, b"MISSING"):
        assert re.search(rf"{re.escape(path.name)}(:\d+)?: ", message), message


_READERS: dict[str, Reader] = {}


def readers_cache() -> dict[str, Reader]:
    if not _READERS:
        _READERS.update(readers())
    return _READERS


def test_the_generator_covers_every_reader_and_format():
    assert len(CASES) >= 300
    covered = {(c.reader, c.fmt) for c in CASES}
    assert {(r, f) for r, reader in readers_cache().items() for f in reader.formats} <= covered


# ------------------------------------------------------------------------------------------------- the commands
def test_finetune_cli_bad_file_is_one_line_and_leaves_no_run_folder(tmp_path, capsys):
    from mengzi.cli import main

    (tmp_path / "train.csv").write_text("text,label\n很好,pos\n太差,\n", encoding="utf-8")
    (tmp_path / "dev.csv").write_text("text,label\n不错,pos\n", encoding="utf-8")
    out = tmp_path / "runs" / "user"
    code = main(["finetune", "--model", str(tmp_path / "no-model-needed-yet"), "--out", str(out),
                 "--dataset.train", str(tmp_path / "train.csv"), "--dataset.dev", str(tmp_path / "dev.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("mengzi finetune: error: ") and "train.csv:3: field 'label'" in err
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_textgen_and_haic_check_users_files_before_the_run_folder(tmp_path, capsys):
    from mengzi.cli import main

    (tmp_path / "train.jsonl").write_text('{"source": "a", "target": "b"}\n{"source": ["a"], "target": "b"}\n',
                                          encoding="utf-8")
    out = tmp_path / "runs" / "textgen"
    code = main(["textgen", "train", "--model", str(tmp_path / "none"), "--task", "pairs", "--out", str(out),
                 "--dataset.train", str(tmp_path / "train.jsonl"), "--dataset.dev", str(tmp_path / "train.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "train.jsonl:2: field 'source': expected text, got a list" in err and not out.exists(), err
    (tmp_path / "captions.jsonl").write_text('{"clip_id": "c0", "caption": "x"}\n' + "[" * 50_000 + "\n",
                                             encoding="utf-8")
    out = tmp_path / "runs" / "haic"
    code = main(["haic", "bench", "--captions", str(tmp_path / "captions.jsonl"), "--out", str(out),
                 "--sizes.captions", "4", "--sizes.qa", "10"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "captions.jsonl:2: JSON nested too deeply" in err and not (tmp_path / "runs").exists(), err


def test_generate_input_accepts_bom_crlf_and_csv(tmp_path):
    from mengzi.export.generate import _prompts

    from mengzi.textgen.config import GenerateConfig

    (tmp_path / "p.jsonl").write_bytes(b'\xef\xbb\xbf{"text": "\xe4\xbd\xa0\xe5\xa5\xbd\xe2\x80\xa8x"}\r\n\r\n'
                                       b'{"text": "b"}\r\n')
    assert _prompts(GenerateConfig(input=str(tmp_path / "p.jsonl"))) == ["你好\u2028x", "b"]
    (tmp_path / "p.csv").write_text('\ufefftext\r\n"a, ""b""\r\nc"\r\n', encoding="utf-8")
    assert _prompts(GenerateConfig(input=str(tmp_path / "p.csv"))) == ['a, "b"\r\nc']
    (tmp_path / "p.gbk.tsv").write_bytes("text\n你好\n".encode("gbk"))
    assert _prompts(GenerateConfig(input=str(tmp_path / "p.gbk.tsv"), encoding="gbk")) == ["你好"]


def test_test_split_labels_are_optional_and_train_labels_are_not(tmp_path):
    from mengzi.finetune.userdata import DataFiles, load_user_split

    path = tmp_path / "test.csv"
    path.write_text("text,label\n很好,\n太差,pos\n", encoding="utf-8")
    assert list(load_user_split(DataFiles(), path, ["neg", "pos"], labelled=False)["label"]) == [-1, -1]
    with pytest.raises(DataError, match=r"test.csv:2: field 'label': expected a label, got an empty value"):
        load_user_split(DataFiles(), path, ["neg", "pos"])
