"""Legal but odd users' files are read unchanged by `mengzi.tabular`: BOM, CRLF, quoted separators and newlines,
U+2028/U+2029/NEL inside a text, a TSV text that begins with a quote, GBK with its encoding named, cells over
128 KiB; every record is read (row counts equal the file's) and the count is logged. Compressed corpora are read."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging

import pytest

from mengzi.tabular import DataError, cell, read_records

ODD_TEXTS = [
    "plain",
    "a, comma",
    'a "quoted" word',
    '"starts with a quote',
    "two\nlines",
    "crlf\r\ninside",
    "line\u2028separator",
    "para\u2029separator",
    "next\x85line",
    "中文，全角标点。",
    "emoji 😀 and tab-free",
    "   leading and trailing spaces   ",
    "x" * 200 * 1024,  # over csv's default 128 KiB field limit
]


def write_csv(path, rows, header=("id", "text", "label"), bom=False, newline="\r\n"):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_keeps_every_odd_text_unchanged(tmp_path, bom, newline):
    rows = [(str(i), text, "pos" if i % 2 else "neg") for i, text in enumerate(ODD_TEXTS)]
    path = write_csv(tmp_path / "odd.csv", rows, bom=bom, newline=newline)
    records = read_records(path)
    assert [r["text"] for _, r in records] == ODD_TEXTS
    assert list(records[0][1]) == ["id", "text", "label"]  # the BOM is not part of the first column's name
    # each record's line is the physical line it starts on
    physical = path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    starts = [physical.count("\n", 0, physical.index(f"\n{i},")) + 2 for i in range(len(rows))]
    assert [line for line, _ in records] == starts


def test_tsv_is_read_without_quoting_so_a_leading_quote_swallows_nothing(tmp_path):
    texts = ['"开头是引号的评论', "普通评论", 'a "quoted" middle', '"', "text\u2028with separator"]
    path = tmp_path / "reviews.tsv"
    path.write_text("label\ttext\r\n" + "".join(f"{i % 2}\t{t}\r\n" for i, t in enumerate(texts)), encoding="utf-8")
    records = read_records(path)
    assert [r["text"] for _, r in records] == texts
    assert [line for line, _ in records] == [2, 3, 4, 5, 6]
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('label\ttext\n1\t"a\ttab and\nnewline"\n0\tplain\n', encoding="utf-8")
    assert [r["text"] for _, r in read_records(quoted, "tsv-quoted")] == ["a\ttab and\nnewline", "plain"]


def test_jsonl_and_json_array_keep_text_and_count_lines(tmp_path):
    records = [{"text": t, "label": i} for i, t in enumerate(ODD_TEXTS)]
    lines = tmp_path / "odd.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + "\r\n\r\n".join(json.dumps(r, ensure_ascii=False) for r in records)
                      .encode("utf-8") + b"\r\n")
    read = read_records(lines)
    assert [r for _, r in read] == records
    assert [line for line, _ in read] == [1 + 2 * i for i in range(len(records))]  # blank lines are not records
    array = tmp_path / "odd.json"
    array.write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=True) for r in records) + "\n]\n", encoding="utf-8")
    read = read_records(array)
    assert [r for _, r in read] == records and [line for line, _ in read] == list(range(2, len(records) + 2))
    raw = tmp_path / "raw.jsonl"  # raw U+2028 (legal inside a JSON string) must not split the record
    raw.write_text('{"text": "a\u2028b\u2029c\x85d"}\n', encoding="utf-8")
    assert read_records(raw) == [(1, {"text": "a\u2028b\u2029c\x85d"})]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-16"])
def test_named_encoding_reads_the_text(tmp_path, encoding):
    texts = ["今天天气很好", "质量差，不推荐", "𠀀 rare" if encoding != "gbk" else "繁體與简体"]
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(("text,label\n" + "".join(f"{t},{i}\n" for i, t in enumerate(texts))).encode(encoding))
    assert [r["text"] for _, r in read_records(path, encoding=encoding)] == texts
    if encoding != "utf-16":
        with pytest.raises(DataError, match=rf"{encoding}.csv:2: not UTF-8 \(column 1"):
            read_records(path)


def test_row_counts_are_logged_per_file(tmp_path, caplog):
    path = write_csv(tmp_path / "n.csv", [(str(i), f"t{i}\nsecond line", "x") for i in range(37)])
    with caplog.at_level(logging.INFO, logger="mengzi.tabular"):
        assert len(read_records(path)) == 37
    assert any("n.csv: 37 rows read" in m for m in caplog.messages)


def test_required_fields_and_cells(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"text": "a", "label": 3, "tags": ["x"]}\n{"text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"f.jsonl:2: field 'label' is missing"):
        read_records(path, fields=["text", "label"])
    (line, record), _ = read_records(path)
    assert cell(path, line, record, "label", what="a label") == "3"  # an integer label is a label
    with pytest.raises(DataError, match=r"f.jsonl:1: field 'label': expected text, got an integer"):
        cell(path, line, record, "label")  # ... but not a text
    with pytest.raises(DataError, match=r"f.jsonl:1: field 'tags': expected text, got a list"):
        cell(path, line, record, "tags")


def test_compressed_corpora_are_read(tmp_path):
    from mengzi.textfiles import ReadStats, expand, iter_texts

    lines = ["第一行", "第二行\u2028同一行", "third"]
    (tmp_path / "corpus").mkdir()
    with gzip.open(tmp_path / "corpus" / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with gzip.open(tmp_path / "corpus" / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps({"text": t}) + "\n" for t in lines))
    (tmp_path / "corpus" / "skip.bin.gz").write_bytes(gzip.compress(b"\x00\x01"))
    assert [p.name for p in expand([tmp_path / "corpus"])] == ["a.txt.gz", "b.jsonl.gz"]
    stats = ReadStats()
    assert list(iter_texts([tmp_path / "corpus"], stats=stats)) == lines + lines
    assert stats.files == 2 and stats.lines == 6 and not stats.problems
    damaged = tmp_path / "damaged.txt.gz"
    damaged.write_bytes(gzip.compress("一\n二\n".encode() * 1000)[:-30])
    stats = ReadStats()
    read = list(iter_texts([damaged], stats=stats))
    assert len(read) < 2000 and stats.bad_records == 1 and "damaged.txt.gz: damaged .gz file" in stats.problems[0]


def test_corpus_and_task_json_readers_survive_deep_nesting(tmp_path):
    from mengzi.textfiles import ReadStats, iter_texts, json_objects

    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": "ok"}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    stats = ReadStats()
    assert list(iter_texts([deep], stats=stats)) == ["ok"]
    assert stats.bad_records == 1 and "deep.jsonl:2: JSON nested too deeply" in stats.problems[0]
    array = tmp_path / "deep.json"
    array.write_text("[" * 100_000, encoding="utf-8")
    stats = ReadStats()
    assert list(iter_texts([array], stats=stats)) == [] and stats.bad_records == 1
    with pytest.raises(ValueError, match=r"deep.jsonl:2: JSON nested too deeply"):
        list(json_objects("deep.jsonl", deep.read_text(encoding="utf-8").split("\n")))
