"""Malformed CLUE task files and submission zips: each is a ValueError subclass (ClueDataError, SubmissionError)
naming the file and the line (JSON lines) or the field/item (JSON documents), raised before a run folder exists;
odd but legal files (BOM, CRLF, blank lines, U+2028/U+2029/NEL inside strings, long texts) read unchanged; and every
real CLUE/FewCLUE file under ../shared/data reads exactly as many examples as it holds.

The malformed files are generated: a small valid copy of each task format, then one mutation at a time (a field
made a list, a dict, a number, null or missing; a label missing or empty; an id repeated; a line that is not JSON,
nested 100,000 deep, not UTF-8; an empty file; a folder where a file belongs)."""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import pytest
from conftest import need_data
from mengzi.clue.readers import ClueDataError
from mengzi.clue.run import ValidateConfig, clue_validate
from mengzi.clue.submission import SubmissionError, predict_name_for, write_predictions
from mengzi.clue.tasks import load_task, read_examples

from mengzi.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "clue"

# ------------------------------------------------------------------------------------------- valid small copies

PAIR = [("今天天气很好", "天气不错"), ("我想去公园", "公园很远"), ("他喜欢读书", "他讨厌书")]
LINE_TASKS = {  # task -> (text fields, a label of each training record)
    "afqmc": (("sentence1", "sentence2"), ("0", "1", "0")),
    "tnews": (("sentence",), ("101", "102", "116")),
    "iflytek": (("sentence",), ("0", "5", "118")),
    "ocnli": (("sentence1", "sentence2"), ("neutral", "entailment", "contradiction")),
    "cmnli": (("sentence1", "sentence2"), ("neutral", "entailment", "contradiction")),
    "csl": (("abst",), ("0", "1", "1")),
    "cluewsc2020": (("text", "target.span1_text", "target.span2_text"), ("true", "false", "true")),
}


def line_record(task: str, i: int, labelled: bool) -> dict:
    if task == "cluewsc2020":
        record = {"target": {"span1_index": 0, "span1_text": "小明", "span2_index": 5, "span2_text": "他"},
                  "idx": i, "text": "小明今天说他很累"}
    elif task == "csl":
        record = {"id": i, "abst": PAIR[i][0] + "的摘要", "keyword": ["天气", "公园"]}
    else:
        fields = LINE_TASKS[task][0]
        record = {"id": i, **dict(zip(fields, PAIR[i]))}
    if labelled:
        record["label"] = LINE_TASKS[task][1][i]
    return record


def c3_document(labelled: bool, first_id: int = 0) -> list:
    questions = [{"question": "男的想去哪儿？", "choice": ["公园", "学校", "医院"]},
                 {"question": "他们什么时候去？", "choice": ["今天", "明天"]}]
    for i, q in enumerate(questions):
        q.update({"answer": q["choice"][i]} if labelled else {"id": first_id + i})
    return [[["男：我们去公园吧。", "女：好，明天去。"], questions[:1], "doc-1"], [["女：今天很忙。"], questions[1:], "doc-2"]]


def cmrc_document(labelled: bool) -> dict:
    context = "孟子是战国时期的思想家。他主张仁政。"
    qas = [{"id": f"TRAIN_{i}_QUERY_0", "question": q, "answers": [{"text": a, "answer_start": context.find(a)}]}
           for i, (q, a) in enumerate([("孟子是哪个时期的人？", "战国时期"), ("孟子主张什么？", "仁政")])]
    if not labelled:
        for qa in qas:
            qa["answers"] = [{"text": "FAKE_ANSWER_1", "answer_start": -1}]
    return {"version": "v1.0", "data": [{"id": "DOC_0", "title": "孟子", "paragraphs": [{"id": "P_0",
                                                                                       "context": context,
                                                                                       "qas": qas}]}]}


def chid_few_record(i: int, labelled: bool) -> dict:
    record = {"id": i, "candidates": ["百尺竿头", "随波逐流", "方兴未艾"], "content": f"第{i}段，他们#idiom#地前进。"}
    return {**record, "answer": i % 3} if labelled else record


def write(path: Path, content) -> Path:
    """JSON lines for a list of dicts, one JSON document otherwise; bytes as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, list) and content and all(isinstance(r, dict) for r in content):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in content), encoding="utf-8")
    else:
        path.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def clue_root(root: Path, task: str) -> Path:
    """A CLUE root with valid train.json, dev.json and test.json (c3: d-/m- halves and test1.1.json)."""
    if task in LINE_TASKS:
        names = {"train.json": True, "dev.json": True, "test.json": False}
        for name, labelled in names.items():
            write(root / task / name, [line_record(task, i, labelled) for i in range(3)])
    elif task == "c3":
        for name, labelled in {"d-train.json": True, "m-train.json": True, "d-dev.json": True,
                               "test1.1.json": False}.items():
            write(root / task / name, c3_document(labelled))
    elif task == "cmrc2018":
        for name, labelled in {"train.json": True, "dev.json": True, "test.json": False}.items():
            write(root / task / name, cmrc_document(labelled))
    elif task == "chid":
        for name, labelled in {"train.json": True, "dev.json": True, "test1.1.json": False}.items():
            write(root / task / name, [chid_few_record(i, labelled) for i in range(3)])
    return root


# -------------------------------------------------------------------------------------------------- mutations


def set_path(record: dict, path: str, value) -> dict:
    *parents, leaf = path.split(".")
    node = record
    for p in parents:
        node = node[p]
    if value is MISSING:
        del node[leaf]
    else:
        node[leaf] = value
    return record


MISSING = object()
WRONG_TEXT = {"list": ["一句话"], "dict": {"text": "一句话"}, "number": 5, "null": None, "bool": True,
              "missing": MISSING}
WRONG_LABEL = {"missing": (MISSING, "missing"), "empty": ("", "empty"), "blank": ("  ", "empty"),
               "null": (None, "expected string"), "list": (["1"], "expected string"),
               "dict": ({"v": 1}, "expected string"), "float": (1.5, "expected string"),
               "unknown": ("no-such-label", "unknown label")}
WRONG_ID = {"list": [1], "float": 1.5, "bool": True, "null": None, "string": "1", "huge": 2**70, "duplicate": 0}
BAD_LINES = {  # a second line -> what the message says
    "not-json": (b'{"sentence": ', "not valid JSON"),
    "array": (b"[1, 2]", "expected a JSON object"),
    "string": (b'"just text"', "expected a JSON object"),
    "deep-array": (b"[" * 100_000, "nested too deeply"),
    "deep-object": (b'{"a": ' * 100_000, "nested too deeply"),
    "deep-closed": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "nan": (b'{"sentence": "a", "sentence1": "a", "sentence2": "b", "label": NaN}', "NaN is not JSON"),
    "infinity": (b'{"id": Infinity}', "Infinity is not JSON"),
    "duplicate-key": (b'{"label": "0", "label": "1"}', "field 'label': appears twice"),
    "not-utf8": (b'{"sentence": "\xff\xfe", "sentence1": "\xc3"}', "not UTF-8"),
    "huge-int": (b'{"id": ' + b"9" * 5000 + b"}", "not valid JSON"),
    "lone-surrogate": (b'{"sentence": "a\\ud800b", "sentence1": "x", "label": "0"}', "lone UTF-16 surrogate"),
    "lone-surrogate-key": (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
}


def line_cases():
    for task, (fields, _) in LINE_TASKS.items():
        for field in fields:
            for name, value in WRONG_TEXT.items():
                yield pytest.param(task, "train", field, value, field, id=f"{task}-{field}-{name}")
        for name, (value, problem) in WRONG_LABEL.items():
            yield pytest.param(task, "dev", "label", value, problem, id=f"{task}-label-{name}")
        id_field = "idx" if task == "cluewsc2020" else "id"
        for name, value in WRONG_ID.items():
            yield pytest.param(task, "test.json", id_field, value, "duplicate id" if name == "duplicate" else
                               id_field, id=f"{task}-{id_field}-{name}")
    for field, value in (("target.span1_index", "0"), ("target.span2_index", 1.5), ("target", "小明"),
                         ("target.span1_text", ""), ("target.span2_text", "不在文中")):
        yield pytest.param("cluewsc2020", "train", field, value, field.split(".")[-1],
                           id=f"cluewsc2020-{field}-{value}")
    for value in (5, [1], ["a", None], "天气；公园"):
        yield pytest.param("csl", "train", "keyword", value, "keyword", id=f"csl-keyword-{value}")


@pytest.mark.parametrize("task,split,field,value,expected", list(line_cases()))
def test_bad_field_names_file_line_and_field(tmp_path, task, split, field, value, expected):
    root = clue_root(tmp_path, task)
    name = "train.json" if split == "train" else "dev.json" if split == "dev" else split
    records = [line_record(task, i, split != "test.json") for i in range(3)]
    set_path(records[1], field, value)
    write(root / task / name, records)
    with pytest.raises(ClueDataError) as err:
        load_task(task, split, root)
    message = str(err.value)
    assert isinstance(err.value, ValueError) and f"{task}/{name}:2" in message and expected in message, message


@pytest.mark.parametrize("task", LINE_TASKS)
@pytest.mark.parametrize("kind", BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path, task, kind):
    root = clue_root(tmp_path, task)
    line, expected = BAD_LINES[kind]
    good = json.dumps(line_record(task, 0, True), ensure_ascii=False).encode()
    write(root / task / "train.json", good + b"\n" + line + b"\n" + good + b"\n")
    with pytest.raises(ClueDataError) as err:
        load_task(task, "train", root)
    assert f"{task}/train.json:2" in str(err.value) and expected in str(err.value), str(err.value)


FILE_CASES = {  # content of the file -> what the message says
    "empty": (b"", "no examples"),
    "bom-only": (b"\xef\xbb\xbf", "no examples"),
    "blank-lines": (b"\n  \n\r\n", "no examples"),
    "folder": (None, "is a folder"),
}


@pytest.mark.parametrize("task", [*LINE_TASKS, "c3", "cmrc2018", "chid"])
@pytest.mark.parametrize("kind", FILE_CASES)
def test_empty_file_or_folder_is_an_error(tmp_path, task, kind):
    root = clue_root(tmp_path / "clue", task)
    content, expected = FILE_CASES[kind]
    bad = tmp_path / "user" / task / "train.json"
    if content is None:
        bad.mkdir(parents=True)
    else:
        write(bad, content)
    with pytest.raises(ClueDataError) as err:
        load_task(task, "train", root, files={"train": str(bad)})
    assert f"{task}/train.json" in str(err.value) and expected in str(err.value)


def test_labels_are_all_or_nothing(tmp_path):
    root = clue_root(tmp_path, "afqmc")
    records = [line_record("afqmc", i, False) for i in range(3)]
    records[2]["label"] = "1"
    write(root / "afqmc" / "test.json", records)
    with pytest.raises(ClueDataError, match=r"afqmc/test.json:3: field 'label': present, but the file's first"):
        load_task("afqmc", "test.json", root)
    records = [line_record("afqmc", i, True) for i in range(3)]
    del records[0]["label"]
    write(root / "afqmc" / "train.json", records)
    with pytest.raises(ClueDataError, match=r"afqmc/train.json:1: field 'label': missing \(a training or dev"):
        load_task("afqmc", "train", root)
    with pytest.raises(ClueDataError, match=r"train.json:2: field 'label': present, but the file's first"):
        read_examples("afqmc", root / "afqmc" / "train.json")  # no split given: the first line decides


# ----------------------------------------------------------------------------------- documents: C3 and CMRC2018


def c3_mutations():
    def item(doc, i=0):
        return doc[i]

    yield "top-object", lambda d: {"data": d}, "expected a JSON array"
    yield "item-not-list", lambda d: [d[0], "text"], "item 1"
    yield "item-too-short", lambda d: [d[0], [d[1][0]]], "item 1"
    yield "lines-not-list", lambda d: (item(d).__setitem__(0, "男：你好"), d)[1], "field 'lines'"
    yield "line-number", lambda d: (item(d)[0].__setitem__(1, 5), d)[1], "field 'lines[1]'"
    yield "lines-empty", lambda d: (item(d).__setitem__(0, []), d)[1], "field 'lines': empty list"
    yield "questions-not-list", lambda d: (item(d).__setitem__(1, {"q": 1}), d)[1], "field 'questions'"
    yield "question-not-object", lambda d: (item(d)[1].__setitem__(0, "问题"), d)[1], "field 'questions[0]'"
    yield "question-list", lambda d: (item(d)[1][0].__setitem__("question", ["问"]), d)[1], "field 'question'"
    yield "question-missing", lambda d: (item(d)[1][0].pop("question"), d)[1], "field 'question': missing"
    yield "choice-number", lambda d: (item(d)[1][0]["choice"].__setitem__(0, 1), d)[1], "field 'choice[0]'"
    yield "choice-empty", lambda d: (item(d)[1][0].__setitem__("choice", []), d)[1], "field 'choice': empty"
    yield "answer-missing", lambda d: (item(d, 1)[1][0].pop("answer"), d)[1], "field 'answer': missing"
    yield "answer-not-a-choice", lambda d: (item(d)[1][0].__setitem__("answer", "海边"), d)[1], "not one of"
    yield "answer-list", lambda d: (item(d)[1][0].__setitem__("answer", ["公园"]), d)[1], "field 'answer'"
    yield "empty-array", lambda d: [], "no examples"


def cmrc_mutations():
    def qa(doc, i=0):
        return doc["data"][0]["paragraphs"][0]["qas"][i]

    yield "top-array", lambda d: [d], "SQuAD-style object"
    yield "data-missing", lambda d: {"version": "v1"}, "field 'data': missing"
    yield "data-empty", lambda d: {"version": "v1", "data": []}, "no examples"
    yield "article-string", lambda d: {"data": ["孟子"]}, "data[0]"
    yield "paragraphs-dict", lambda d: (d["data"][0].__setitem__("paragraphs", {}), d)[1], "field 'paragraphs'"
    yield "context-number", lambda d: (d["data"][0]["paragraphs"][0].__setitem__("context", 5), d)[1], "'context'"
    yield "qas-missing", lambda d: (d["data"][0]["paragraphs"][0].pop("qas"), d)[1], "field 'qas': missing"
    yield "qa-string", lambda d: (d["data"][0]["paragraphs"][0]["qas"].__setitem__(0, "q"), d)[1], "'qas[0]'"
    yield "id-number", lambda d: (qa(d).__setitem__("id", 5), d)[1], "field 'id'"
    yield "question-list", lambda d: (qa(d).__setitem__("question", ["问"]), d)[1], "field 'question'"
    yield "answers-missing", lambda d: (qa(d, 1).pop("answers"), d)[1], "qa TRAIN_1_QUERY_0: field 'answers'"
    yield "answers-empty", lambda d: (qa(d).__setitem__("answers", []), d)[1], "field 'answers': empty"
    yield "answer-string", lambda d: (qa(d).__setitem__("answers", ["战国"]), d)[1], "field 'answers[0]'"
    yield "answer-start-string", lambda d: (qa(d)["answers"][0].__setitem__("answer_start", "3"), d)[1], \
        "answers[0].answer_start"
    yield "answer-text-null", lambda d: (qa(d)["answers"][0].__setitem__("text", None), d)[1], "answers[0].text"


DOC_BYTES = {  # whole-file problems of a JSON document -> what the message says
    "not-json": (b'{"data": [\n  {"paragraphs": \n', ":3: not valid JSON"),
    "deep": (b"\n\n" + b"[" * 100_000, ":3: JSON nested too deeply"),
    "deep-object": (b'{"data":\n' + b'{"a": ' * 100_000, ":2: JSON nested too deeply"),
    "not-utf8": ('{"data": [\n"孟子'.encode() + b"\xff\xfe" + b'"]}', ":2: undecodable bytes"),
    "nan": (b'{"version": NaN, "data": []}', "NaN is not JSON"),
    "duplicate-key": (b'{"data": [], "data": []}', "field 'data': appears twice"),
}


@pytest.mark.parametrize("task,name,mutate,expected", [
    *[pytest.param("c3", "d-train.json", m, e, id=f"c3-{n}") for n, m, e in c3_mutations()],
    *[pytest.param("cmrc2018", "train.json", m, e, id=f"cmrc2018-{n}") for n, m, e in cmrc_mutations()]])
def test_bad_document_names_file_and_item_or_field(tmp_path, task, name, mutate, expected):
    root = clue_root(tmp_path, task)
    document = c3_document(True) if task == "c3" else cmrc_document(True)
    write(root / task / name, json.dumps(mutate(copy.deepcopy(document)), ensure_ascii=False).encode())
    with pytest.raises(ClueDataError) as err:
        load_task(task, "train", root)
    assert f"{task}/{name}" in str(err.value) and expected in str(err.value), str(err.value)


@pytest.mark.parametrize("task", ["c3", "cmrc2018"])
@pytest.mark.parametrize("kind", DOC_BYTES)
def test_broken_document_names_file_and_line(tmp_path, task, kind):
    root = clue_root(tmp_path, task)
    name = "d-train.json" if task == "c3" else "train.json"
    content, expected = DOC_BYTES[kind]
    write(root / task / name, content)
    with pytest.raises(ClueDataError) as err:
        load_task(task, "train", root)
    assert f"{task}/{name}" in str(err.value) and expected in str(err.value), str(err.value)


def test_duplicate_ids_in_test_documents_and_the_c3_mixed_half(tmp_path):
    root = clue_root(tmp_path, "c3")
    document = c3_document(False)
    document[1][1][0]["id"] = 0
    write(root / "c3" / "test1.1.json", document)
    with pytest.raises(ClueDataError, match=r"c3/test1.1.json: item 1 \(doc doc-2\), question 0: field 'id': "
                                            r"duplicate id 0 \(first at item 0"):
        load_task("c3", "test1.1.json", root)
    write(root / "c3" / "m-train.json", [])
    with pytest.raises(ClueDataError, match=r"c3/m-train.json: no examples"):
        load_task("c3", "train", root)
    root = clue_root(tmp_path, "cmrc2018")
    document = cmrc_document(False)
    document["data"][0]["paragraphs"][0]["qas"][1]["id"] = "TRAIN_0_QUERY_0"
    write(root / "cmrc2018" / "test.json", document)
    with pytest.raises(ClueDataError, match=r"cmrc2018/test.json: qa TRAIN_0_QUERY_0: field 'id': duplicate id"):
        load_task("cmrc2018", "test.json", root)


# ------------------------------------------------------------------------------------------------------- ChID


def chid_cases():
    yield "candidates-string", lambda r: r.__setitem__("candidates", "百尺竿头"), "field 'candidates'"
    yield "candidate-number", lambda r: r["candidates"].__setitem__(1, 7), "field 'candidates[1]'"
    yield "content-number", lambda r: r.__setitem__("content", 5), "field 'content'"
    yield "no-blank", lambda r: r.__setitem__("content", "没有空"), "found 0"
    yield "two-blanks", lambda r: r.__setitem__("content", "#idiom##idiom#"), "found 2"
    yield "answer-range", lambda r: r.__setitem__("answer", 3), "not an index"
    yield "answer-negative", lambda r: r.__setitem__("answer", -1), "not an index"
    yield "answer-string", lambda r: r.__setitem__("answer", "0"), "field 'answer'"
    yield "answer-missing", lambda r: r.pop("answer"), "field 'answer': missing"
    yield "id-missing", lambda r: r.pop("id"), "field 'id': missing"
    yield "id-list", lambda r: r.__setitem__("id", [1]), "field 'id'"


@pytest.mark.parametrize("name,mutate,expected", list(chid_cases()), ids=[c[0] for c in chid_cases()])
def test_bad_fewclue_chid_line(tmp_path, name, mutate, expected):
    root = clue_root(tmp_path, "chid")
    records = [chid_few_record(i, True) for i in range(3)]
    mutate(records[1])
    write(root / "chid" / "train.json", records)
    with pytest.raises(ClueDataError) as err:
        load_task("chid", "train", root)
    assert "chid/train.json:2" in str(err.value) and expected in str(err.value), str(err.value)


def test_official_chid_needs_its_answers_for_training_and_unique_tags_in_tests(tmp_path):
    root = tmp_path / "clue"
    (root / "chid").mkdir(parents=True)
    for name in ("train.json", "train_answer.json", "test.json"):
        (root / "chid" / name).write_bytes((FIXTURES / "chid" / name).read_bytes())
    assert len(load_task("chid", "train", root)) > 0
    (root / "chid" / "train_answer.json").unlink()
    with pytest.raises(ClueDataError, match=r"chid/train.json:1: field 'content': official-layout ChID keeps its "
                                            r"answers in chid/train_answer.json, which is missing"):
        load_task("chid", "train", root)
    lines = (root / "chid" / "test.json").read_text(encoding="utf-8").splitlines()
    (root / "chid" / "test.json").write_text("\n".join([lines[0], lines[0]]) + "\n", encoding="utf-8")
    with pytest.raises(ClueDataError, match=r"chid/test.json:2: field 'content\[0\]': duplicate id '#idiom"):
        load_task("chid", "test.json", root)
    write(root / "chid" / "train_answer.json", {"#idiom000000#": "0"})
    with pytest.raises(ClueDataError, match=r"chid/train_answer.json: field '#idiom000000#': expected integer"):
        load_task("chid", "train", root)


# --------------------------------------------------------------------------------------------- odd but legal


ODD = "甲\u2028乙\u2029丙\u0085丁\u00a0戊\u3000己😀\t庚"  # line/paragraph separators, NEL, spaces, emoji, tab
LONG = "长" * 200_000


def odd_bytes(records: list[dict]) -> bytes:
    """BOM, CRLF, blank and whitespace-only lines, raw separators inside strings."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    return b"\xef\xbb\xbf" + "\r\n\r\n  \r\n".join(lines).encode() + b"\r\n\r\n"


@pytest.mark.parametrize("task", [*LINE_TASKS, "chid"])
def test_odd_but_legal_lines_read_unchanged(tmp_path, task):
    records = [chid_few_record(i, True) for i in range(3)] if task == "chid" else \
        [line_record(task, i, True) for i in range(3)]
    field = {"chid": "content", "cluewsc2020": "text", "csl": "abst"}.get(task, LINE_TASKS.get(task, [[""]])[0][0])
    records[0][field] = records[0][field] + ODD
    records[1][field] = records[1][field] + LONG
    clean = write(tmp_path / "clean" / task / "train.json", b"".join(
        json.dumps(r).encode() + b"\n" for r in records))  # ASCII-escaped, LF
    odd = write(tmp_path / "odd" / task / "train.json", odd_bytes(records))
    expected = read_examples(task, clean, labelled=True)
    assert read_examples(task, odd, labelled=True) == expected and len(expected) == 3
    text = json.dumps(expected, ensure_ascii=False)
    assert "\u2028" in text and "\u0085" in text and (LONG in text or task == "chid")  # ChID keeps 128 chars a side


@pytest.mark.parametrize("task", ["c3", "cmrc2018"])
def test_odd_but_legal_documents_read_unchanged(tmp_path, task):
    document = c3_document(True) if task == "c3" else cmrc_document(True)
    if task == "c3":
        document[0][0].append("男：" + ODD)
    else:
        document["data"][0]["paragraphs"][0]["qas"][0]["question"] += ODD
    clean = write(tmp_path / "clean" / task / "train.json", json.dumps(document).encode())
    odd_text = json.dumps(document, ensure_ascii=False, indent=2).replace("\n", "\r\n")
    odd = write(tmp_path / "odd" / task / "train.json", b"\xef\xbb\xbf" + odd_text.encode() + b"\r\n\r\n")
    expected = read_examples(task, clean, labelled=True)
    assert read_examples(task, odd, labelled=True) == expected
    assert ODD in (expected[0]["context"] if task == "c3" else expected[0]["question"])


def test_legal_variants_are_accepted(tmp_path):
    """FewCLUE's int labels, booleans for WSC, OCNLI's '-' lines (skipped), an id field named idx."""
    root = clue_root(tmp_path, "afqmc")
    write(root / "afqmc" / "train.json", [{**line_record("afqmc", i, True), "label": i % 2} for i in range(3)])
    assert load_task("afqmc", "train", root)["label"] == [0, 1, 0]
    root = clue_root(tmp_path, "cluewsc2020")
    write(root / "cluewsc2020" / "train.json", [{**line_record("cluewsc2020", i, True), "label": i == 1}
                                                 for i in range(3)])
    assert load_task("cluewsc2020", "train", root)["label"] == [0, 1, 0]
    root = clue_root(tmp_path, "ocnli")
    write(root / "ocnli" / "train.json", [{**line_record("ocnli", i, True), **({"label": "-"} if i else {})}
                                          for i in range(3)])
    assert load_task("ocnli", "train", root)["label"] == [2]


# -------------------------------------------------------------------------------- the real files (../shared/data)


def count_in_file(task: str, path: Path) -> int:
    """Examples a file holds, counted independently of the loaders: lines (less OCNLI/CMNLI's '-'), blanks of
    official ChID, questions of C3, qas of CMRC2018."""
    if task == "c3":
        return sum(len(item[1]) for item in json.loads(path.read_text(encoding="utf-8-sig")))
    if task == "cmrc2018":
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        return sum(len(p["qas"]) for a in document["data"] for p in a["paragraphs"])
    lines = [line for line in path.read_text(encoding="utf-8-sig").split("\n") if line.strip()]
    if task == "chid":  # FewCLUE: one "#idiom#" a line; official: "#idiom000123#" tags in a list of paragraphs
        return sum(len(re.findall(r"#idiom\d*#", json.dumps(json.loads(line)["content"]))) for line in lines)
    if task in ("ocnli", "cmnli"):
        return sum(json.loads(line).get("label") != "-" for line in lines)
    return len(lines)


def real_files() -> list[tuple[str, str]]:
    from conftest import DATA

    found = [(p.parent.name, f"{root}/{p.parent.name}/{p.name}") for root in ("clue", "fewclue")
             for p in sorted((DATA / root).glob("*/*.json"))
             if p.name != "labels.json" and not p.name.endswith("_answer.json")]
    return found or [("afqmc", "clue/afqmc/train.json")]  # no data here: the one case fails under CI, else skips


@pytest.mark.parametrize("task,rel", real_files())
def test_real_file_reads_every_example_it_holds(task, rel):
    data = need_data(rel)
    path = data / rel
    test = not path.stem.startswith(("train", "dev", "d-", "m-", "trial"))
    rows = read_examples(task, path, **({"unique_ids": True} if test else {"labelled": True}))
    assert len(rows) == count_in_file(task, path) > 0


def test_real_label_files_list_every_label():
    data = need_data("clue/tnews/labels.json", "clue/iflytek/labels.json")
    from mengzi.clue.tasks import TASKS

    for task in ("tnews", "iflytek"):
        lines = [x for x in (data / "clue" / task / "labels.json").read_text(encoding="utf-8").split("\n") if x.strip()]
        assert len(lines) == len(TASKS[task].labels)


# ---------------------------------------------------------------------------------------------- submission zips


def fixture_zip(path: Path, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A valid submission for the fixtures' test files (cmnli, iflytek, chid)."""
    run = path.parent / "run"
    for task, predictions in (("cmnli", [0, 1, 2]), ("iflytek", [2, 115, 116]), ("chid", [7, 3, 9])):
        dataset = load_task(task, "test.json", FIXTURES)
        write_predictions(task, dataset, predictions, run, predict_name_for(task, "test.json", dataset))
    with zipfile.ZipFile(path, "w", compression) as archive:
        for member in sorted(run.iterdir()):
            archive.writestr(member.name, member.read_bytes())
    return path


def damage(path: Path, member: str, how: str) -> None:
    """Flip bytes inside a member's compressed data (corrupt deflate or bad CRC), or mark it encrypted or
    compressed with an unknown method, in both the local header and the central directory."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    local, name = info.header_offset, info.filename.encode()
    start = local + 30 + len(name) + int.from_bytes(data[local + 28:local + 30], "little")
    central = data.index(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    if how == "bytes":
        for i in range(start + 2, start + min(info.compress_size, 40), 3):
            data[i] ^= 0x5A
    elif how == "encrypted":
        data[local + 6] |= 1
        data[central + 8] |= 1
    elif how == "method":
        data[local + 8] = data[central + 10] = 99
    path.write_bytes(bytes(data))


def validate(zip_path: Path):
    return clue_validate(ValidateConfig(zip=str(zip_path), data_dir=str(FIXTURES)))


def test_the_fixture_zip_is_valid(tmp_path):
    assert validate(fixture_zip(tmp_path / "sub.zip")) == []


ZIP_DAMAGE = {  # -> (compression, member, how, what the message says)
    "corrupt-deflate": (zipfile.ZIP_DEFLATED, "cmnli_predict.json", "bytes", "damaged member"),
    "bad-crc": (zipfile.ZIP_STORED, "iflytek_predict.json", "bytes", "damaged member"),
    "encrypted": (zipfile.ZIP_STORED, "chid10_predict.json", "encrypted", "damaged member"),
    "unknown-method": (zipfile.ZIP_STORED, "cmnli_predict.json", "method", "damaged member"),
}


@pytest.mark.parametrize("kind", ZIP_DAMAGE)
def test_damaged_member_names_zip_and_member(tmp_path, kind):
    compression, member, how, expected = ZIP_DAMAGE[kind]
    path = fixture_zip(tmp_path / "sub.zip", compression)
    damage(path, member, how)
    with pytest.raises(SubmissionError) as err:
        validate(path)
    message = str(err.value)
    assert str(path) in message and f"{member}: {expected}" in message, message


ZIP_MEMBERS = {  # member content -> what the message says (with the member's name)
    "not-utf8": (b'{"id": 0, "label": "neutral"}\n{"id": 1, "label": "\xff"}\n', "line 2: not UTF-8"),
    "deep-lines": (b'{"id": 0, "label": "neutral"}\n' + b"[" * 100_000 + b"\n", "line 2: JSON nested too deeply"),
    "huge-int": (b'{"id": ' + b"9" * 5000 + b', "label": "neutral"}\n', "line 1: not valid JSON"),
    "id-list": (b'{"id": [0], "label": "neutral"}\n{"id": 1, "label": "neutral"}\n', "line 1: field 'id'"),
    "id-object": (b'{"id": {"a": 0}, "label": "neutral"}\n', "line 1: field 'id'"),
    "empty": (b"", "no predictions"),
    "bad-json": (b'{"id": 0, "label": "neutral"}\n{"id": 1,\n', "bad JSON at line 2"),
}


@pytest.mark.parametrize("kind", ZIP_MEMBERS)
def test_bad_member_content_names_member_and_line(tmp_path, kind):
    content, expected = ZIP_MEMBERS[kind]
    path = tmp_path / "sub.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cmnli_predict.json", content)
    with pytest.raises(SubmissionError) as err:
        validate(path)
    assert str(path) in str(err.value) and f"cmnli_predict.json: {expected}" in str(err.value), str(err.value)


def test_deeply_nested_object_member(tmp_path):
    path = tmp_path / "sub.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("chid10_predict.json", b'{"#idiom000200#":\n' + b"[" * 100_000)
    with pytest.raises(SubmissionError, match=r"chid10_predict.json: line 2: JSON nested too deeply"):
        validate(path)


@pytest.mark.parametrize("kind", ["not-a-zip", "zero-bytes", "truncated", "empty-zip", "folder", "missing"])
def test_unreadable_archive_names_the_zip(tmp_path, kind, capsys):
    path = tmp_path / "sub.zip"
    if kind == "not-a-zip":
        path.write_text('{"id": 0, "label": "neutral"}\n', encoding="utf-8")
    elif kind == "zero-bytes":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = fixture_zip(tmp_path / "whole.zip").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty-zip":
        zipfile.ZipFile(path, "w").close()
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(SubmissionError) as err:
        validate(path)
    assert str(err.value).startswith(f"{path}: 1 problem(s)") and str(path) in str(err.value)
    assert main(["clue", "validate", str(path), "--data-dir", str(FIXTURES)]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------------------ nothing left behind by a bad run


RUN_BREAKAGES = {  # file of the cmnli task -> its content
    "train-deep": ("train.json", b"[" * 100_000),
    "train-empty": ("train.json", b""),
    "dev-missing-label": ("dev.json", '{"sentence1": "甲", "sentence2": "乙"}\n'.encode()),
    "dev-empty-label": ("dev.json", '{"sentence1": "甲", "sentence2": "乙", "label": ""}\n'.encode()),
    "test-duplicate-id": ("test.json", '{"id": 3, "sentence1": "甲", "sentence2": "乙"}\n'.encode() * 2),
    "test-list-text": ("test.json", '{"id": 3, "sentence1": ["甲"], "sentence2": "乙"}\n'.encode()),
    "train-folder": ("train.json", None),
}


@pytest.mark.parametrize("kind", RUN_BREAKAGES)
def test_clue_run_with_a_bad_data_file_leaves_no_run_folder(tmp_path, capsys, kind):
    root = tmp_path / "clue"
    (root / "cmnli").mkdir(parents=True)
    for name in ("train.json", "dev.json", "test.json"):
        (root / "cmnli" / name).write_bytes((FIXTURES / "cmnli" / name).read_bytes())
    name, content = RUN_BREAKAGES[kind]
    target = root / "cmnli" / name
    if content is None:
        target.unlink()
        target.mkdir()
        flags = ["--files", f"{{train: {target}}}"]
    else:
        target.write_bytes(content)
        flags = []
    out = tmp_path / "run"
    code = main(["clue", "run", "cmnli", "--data-dir", str(root), "--model", "none", "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2 and f"cmnli/{name}" in err and "Traceback" not in err, err
    assert not out.exists()
