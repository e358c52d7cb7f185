"""CLUE data layer: the registry, the loaders on hand-written fixtures in the official layouts (every error names file,
line and field; label mapping; WSC markers; ChID blanks; C3 labels; CMRC repair), the hub-row mapping, and the real
releases in ../shared/data with the counts SOURCES.md records."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import need_data
from mengzi.clue.examples import CHID_BLANK, CHID_OTHER_BLANK
from mengzi.clue.tasks import (
    CHID_CONTEXT_CHARS,
    TASKS,
    ClueDataError,
    from_hub_rows,
    get_task,
    load_file,
    load_task,
    read_examples,
    task_file,
    to_dataset,
)

from mengzi.data import MissingDataError

FIXTURES = Path(__file__).parent / "fixtures" / "clue"


def write_lines(path: Path, records, raw: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())
    return path


def write_json(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------------- registry


def test_registry_has_the_ten_tasks_with_official_prediction_names():
    assert list(TASKS) == ["afqmc", "tnews", "iflytek", "ocnli", "cmnli", "cluewsc2020", "csl", "cmrc2018", "chid",
                           "c3"]
    assert {t.kind for t in TASKS.values()} == {"classification", "multiple_choice", "span"}
    assert get_task("tnews").test_files == {"test.json": "tnews11_predict.json", "test1.0.json": "tnews10_predict.json"}
    assert get_task("ocnli").test_files == {"test.json": "ocnli_50k_predict.json"}
    assert get_task("c3").test_files["test1.1.json"] == "c311_predict.json"
    assert len(get_task("iflytek").labels) == 119 and len(get_task("tnews").labels) == 15
    assert "105" not in get_task("tnews").labels and get_task("cmrc2018").metric == "cmrc2018"
    with pytest.raises(KeyError, match="unknown CLUE task 'mnli'; known: afqmc, tnews"):
        get_task("mnli")


def test_importing_the_tasks_module_imports_neither_torch_nor_datasets():
    code = "import sys, mengzi.clue, mengzi.clue.tasks, mengzi.clue.submission\n" \
           "assert 'torch' not in sys.modules and 'datasets' not in sys.modules, sorted(sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_task_file_finds_official_fewclue_and_test_names(tmp_path):
    assert task_file("cmnli", FIXTURES, "train") == FIXTURES / "cmnli/train.json"
    assert task_file("chid", FIXTURES, "validation") == FIXTURES / "chid/dev.json"
    assert task_file("cmnli", FIXTURES, "test.json") == FIXTURES / "cmnli/test.json"
    assert task_file("cmnli", FIXTURES, "test1.0.json") is None
    assert task_file("afqmc", FIXTURES, "dev") is None and task_file("afqmc", tmp_path / "nowhere", "dev") is None
    write_lines(tmp_path / "iflytek/train_few_all.json", [{"label": 3, "sentence": "租车"}])
    assert task_file("iflytek", tmp_path, "train") == tmp_path / "iflytek/train_few_all.json"
    write_lines(tmp_path / "iflytek/train.json", [{"label": "3", "sentence": "租车"}])
    assert task_file("iflytek", tmp_path, "train") == tmp_path / "iflytek/train.json"  # official first


# ------------------------------------------------------------------------------------------ classification files


def test_cmnli_skips_no_gold_lines_and_maps_labels(caplog):
    with caplog.at_level(logging.WARNING):
        train = load_task("cmnli", "train", FIXTURES)
    assert "cmnli/train.json: skipped 1 line(s) with label '-'" in caplog.text
    assert train["label"] == [2, 1, 0, 1]  # neutral, entailment, contradiction, entailment (line 4 has no gold)
    assert train["id"] == [0, 1, 2, 4]  # the line index where the file has no id
    assert train[0]["text"] == "新的权利已经足够好了" and train[0]["text_pair"] == "每个人都很喜欢最新的福利"
    test = load_task("cmnli", "test.json", FIXTURES)
    assert test["id"] == [0, 1, 2] and test["label"] == [-1, -1, -1]
    assert str(test.features["id"].dtype) == "int64" and test.column_names == ["id", "text", "text_pair", "label"]


def test_iflytek_labels_strings_ints_and_labels_json(tmp_path):
    train = load_task("iflytek", "train", FIXTURES)
    assert train["label"] == [0, 1, 118] and train["text_pair"] == ["", "", ""]
    few = write_lines(tmp_path / "fewclue/iflytek/train_few_all.json",
                      [{"label": 113, "label_des": "办公", "sentence": "移动办公平台", "id": 7}])
    assert load_task("iflytek", "train", files={"train": str(few)})[0] == {
        "id": 7, "text": "移动办公平台", "text_pair": "", "label": 113}
    labels = [json.loads(line) for line in (FIXTURES / "iflytek/labels.json").read_text("utf-8").splitlines()]
    labels[1], labels[2] = labels[2], labels[1]
    write_lines(tmp_path / "iflytek/labels.json", labels)
    write_lines(tmp_path / "iflytek/dev.json", [{"label": "3", "sentence": "租车"}])
    with pytest.raises(ClueDataError, match=r"iflytek/labels.json:2: field 'label': '2' where mengzi expects '1'"):
        load_task("iflytek", "dev", tmp_path)


def test_csl_text_is_the_keywords_and_pair_the_abstract(tmp_path):
    path = write_lines(tmp_path / "csl/dev.json", [{"id": 5, "abst": "摘要。", "keyword": ["水声学", "FFT"],
                                                     "label": "1"}])
    assert read_examples("csl", path) == [{"id": 5, "text": "水声学；FFT", "text_pair": "摘要。", "label": 1}]


ERRORS = [  # (file bytes, line, field, message part)
    (b'{"sentence1": "a", "sentence2": "b", "label": "0"}\n{"sentence1": "a", "sentence2": "b", "label": "7"}\n',
     2, "label", "unknown label '7' (known: 0, 1)"),
    (b'{"sentence1": "a", "sentence2": "b", "label": "0"}\n\n{"sentence1": "a", "label": "1"}\n',
     3, "sentence2", "missing"),
    (b'{"sentence1": "a", "sentence2": 3, "label": "0"}\n', 1, "sentence2", "expected string, got integer 3"),
    (b'{"sentence1": "a", "sentence2": "b", "label": "0"}\n{"sentence1": "a", "sentence2": "b", "label": "0"\n',
     2, None, "not valid JSON"),
    (b'{"sentence1": "a", "sentence2": "b", "label": "0"}\n{"sentence1": "\xe8\xbf", "sentence2": "b", "label": "0"}\n',
     2, "sentence1", "undecodable bytes (not UTF-8)"),
    (b'["a", "b"]\n', 1, None, "expected a JSON object, got array"),
    (b'{"id": "x1", "sentence1": "a", "sentence2": "b", "label": "0"}\n', 1, "id", "expected integer, got string"),
]


@pytest.mark.parametrize("content,line,field,message", ERRORS)
def test_every_error_names_file_line_and_field(tmp_path, content, line, field, message):
    path = tmp_path / "afqmc" / "dev.json"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(ClueDataError) as caught:
        load_task("afqmc", "dev", tmp_path)
    error = caught.value
    assert (error.file, error.line, error.field) == ("afqmc/dev.json", line, field)
    assert str(error).startswith(f"afqmc/dev.json:{line}: " + (f"field '{field}': " if field else ""))
    assert message in str(error)


def test_bom_crlf_and_blank_lines_are_fine(tmp_path):
    path = tmp_path / "afqmc/dev.json"
    path.parent.mkdir()
    path.write_bytes(b'\xef\xbb\xbf{"sentence1": "a", "sentence2": "b", "label": "1"}\r\n\r\n'
                     b'{"sentence1": "c", "sentence2": "d", "label": "0"}\r\n')
    assert read_examples("afqmc", path) == [{"id": 0, "text": "a", "text_pair": "b", "label": 1},
                                            {"id": 2, "text": "c", "text_pair": "d", "label": 0}]


# ---------------------------------------------------------------------------------------------------- CLUEWSC2020


def wsc(text, span1, index1, span2, index2, label="true", **extra):
    return {"target": {"span1_text": span1, "span1_index": index1, "span2_text": span2, "span2_index": index2},
            "idx": 1, "label": label, "text": text, **extra}


def test_wsc_markers_wrap_entity_and_pronoun(tmp_path, caplog):
    records = [wsc("杨百顺他爹是个卖豆腐的。别人叫他卖豆腐的老杨。", "杨百顺他爹", 0, "他", 15),
               wsc("小明他饿了", "小明", 0, "他", 2, "false"),  # adjacent spans: "]<"
               wsc("他说小明来了，小明很高兴", "小明", 3, "他", 0)]  # index off by one: the nearest occurrence, 2
    path = write_lines(tmp_path / "cluewsc2020/train.json", records)
    with caplog.at_level(logging.WARNING):
        rows = read_examples("cluewsc2020", path)
    assert [r["text"] for r in rows] == ["[杨百顺他爹]是个卖豆腐的。别人叫<他>卖豆腐的老杨。", "[小明]<他>饿了",
                                         "<他>说[小明]来了，小明很高兴"]
    assert [r["label"] for r in rows] == [1, 0, 1] and rows[0]["id"] == 1
    assert "1 span index(es) did not point at their text" in caplog.text
    write_lines(path, [wsc("小明他饿了", "小红", 0, "他", 2)])
    with pytest.raises(ClueDataError, match=r"cluewsc2020/train.json:1: field 'target.span1_text': '小红' does not "
                                            r"occur in the text"):
        read_examples("cluewsc2020", path)


def test_wsc_nested_spans_stay_well_formed(tmp_path):
    path = write_lines(tmp_path / "cluewsc2020/dev.json", [wsc("杨百顺他爹是个卖豆腐的", "杨百顺他爹", 0, "他", 3)])
    assert read_examples("cluewsc2020", path)[0]["text"] == "[杨百顺<他>爹]是个卖豆腐的"


# ------------------------------------------------------------------------------------------------------------ ChID


def test_chid_official_one_example_per_blank_with_answers():
    train = load_task("chid", "train", FIXTURES)
    assert train["id"] == [f"#idiom00000{i}#" for i in range(6)]
    assert train["label"] == [0, 1, 6, 7, 2, 1] and train["question"] == [""] * 6
    assert train[0]["choices"][0] == "百尺竿头" and len(train[0]["choices"]) == 10
    assert str(train.features["id"].dtype) == "string"
    for context in train["context"]:
        assert context.count(CHID_BLANK) == 1 and "#idiom" not in context
    # two blanks in one paragraph: the other one is [UNK]
    assert train[1]["context"] == f"是和业内众多企业那样走相似的发展模式，去{CHID_BLANK}？还是迎难而上？诚然，{CHID_OTHER_BLANK}远比随大流更辛苦。"
    # a long paragraph is cut to CHID_CONTEXT_CHARS characters each side of the blank, another blank counting as one
    long = train[3]["context"]
    left, right = long.split(CHID_BLANK)
    assert len(left) == CHID_CONTEXT_CHARS and left.endswith("这个城市")
    assert len(right) == CHID_CONTEXT_CHARS and right.startswith("的变化")
    far = train[4]["context"]  # the paragraph's other blank lies more than 128 characters away
    assert far.endswith(f"虚拟货币的发展可谓{CHID_BLANK}。") and CHID_OTHER_BLANK not in far


def test_chid_cut_counts_another_blank_as_one_character(tmp_path):
    paragraph = "甲" * 200 + "#idiom000001#" + "乙" * 5 + "#idiom000002#" + "丙" * 200
    path = write_lines(tmp_path / "chid/test1.1.json", [{"candidates": ["一日千里"] * 10, "content": [paragraph]}])
    first, second = read_examples("chid", path)
    assert first["context"] == "甲" * 128 + CHID_BLANK + "乙" * 5 + CHID_OTHER_BLANK + "丙" * 122
    assert second["context"] == "甲" * 122 + CHID_OTHER_BLANK + "乙" * 5 + CHID_BLANK + "丙" * 128


def test_chid_test_has_no_answers_and_missing_answer_is_an_error(tmp_path):
    test = load_task("chid", "test.json", FIXTURES)
    assert test["id"] == ["#idiom000200#", "#idiom000201#", "#idiom000202#"] and set(test["label"]) == {-1}
    (tmp_path / "chid").mkdir()
    (tmp_path / "chid/dev.json").write_bytes((FIXTURES / "chid/dev.json").read_bytes())
    write_json(tmp_path / "chid/dev_answer.json", {"#idiom000100#": 0})
    with pytest.raises(ClueDataError, match=r"chid/dev.json:1: field 'content\[1\]': blank #idiom000101# has no "
                                            r"entry in chid/dev_answer.json"):
        load_task("chid", "dev", tmp_path)
    write_json(tmp_path / "chid/dev_answer.json", {"#idiom000100#": 0, "#idiom000101#": 12})
    with pytest.raises(ClueDataError, match=r"chid/dev_answer.json: field '#idiom000101#': 12 is not an index"):
        load_task("chid", "dev", tmp_path)


def test_chid_fewclue_layout(tmp_path):
    path = write_lines(tmp_path / "chid/dev_few_all.json", [
        {"id": 1500, "candidates": ["画蛇添足", "雪中送炭"], "content": "有时候我给你#idiom#,但你却...", "answer": 1}])
    assert load_task("chid", "dev", tmp_path)[0] == {"id": 1500, "context": f"有时候我给你{CHID_BLANK},但你却...",
                                                     "question": "", "choices": ["画蛇添足", "雪中送炭"], "label": 1}
    write_lines(path, [{"id": 1, "candidates": ["画蛇添足"], "content": "没有空", "answer": 0}])
    with pytest.raises(ClueDataError, match=r"chid/dev_few_all.json:1: field 'content': FewCLUE ChID holds one"):
        load_task("chid", "dev", tmp_path)


# -------------------------------------------------------------------------------------------------------------- C3


def c3_item(lines, questions, doc="1-1"):
    return [lines, questions, doc]


def test_c3_joins_halves_labels_answers_and_reads_test_ids(tmp_path):
    q = {"question": "他们在谈论什么?", "choice": ["旅行", "工作", "家庭"], "answer": "工作"}
    write_json(tmp_path / "c3/d-dev.json", [c3_item(["男：你去哪?", "女：去上班。"], [q, dict(q, answer="家庭")])])
    write_json(tmp_path / "c3/m-dev.json", [c3_item(["一段文章。"], [dict(q, answer="旅行")], "2-2")])
    dev = load_task("c3", "dev", tmp_path)
    assert dev["id"] == [0, 1, 2] and dev["label"] == [1, 2, 0]
    assert dev[0]["context"] == "男：你去哪?女：去上班。" and dev[2]["context"] == "一段文章。"
    assert len(load_task("c3", "dev", tmp_path, limit=2)) == 2
    write_json(tmp_path / "c3/test1.1.json", [[["一段文章。"], [{"question": "问?", "choice": ["甲", "乙"], "id": 7}]]])
    test = load_task("c3", "test1.1.json", tmp_path)
    assert test[0]["id"] == 7 and test[0]["label"] == -1
    write_json(tmp_path / "c3/d-dev.json", [c3_item(["男：你去哪?"], [q, dict(q, answer="上学")])])
    with pytest.raises(ClueDataError, match=r"c3/d-dev.json: item 0 \(doc 1-1\), question 1: field 'answer': '上学' "
                                            r"is not one of the choices"):
        load_task("c3", "dev", tmp_path)


# -------------------------------------------------------------------------------------------------------- CMRC2018


def squad(qas, context="范廷颂是越南罗马天主教枢机。1963年被任为主教。"):
    return {"version": "v1.0", "data": [{"id": "D0", "title": "t", "paragraphs": [{"id": "D0", "context": context,
                                                                                   "qas": qas}]}]}


def test_cmrc2018_repairs_starts_drops_absent_answers_and_reads_test(tmp_path, caplog):
    qas = [{"id": "Q0", "question": "什么时候?", "answers": [{"text": "1963年", "answer_start": 14},
                                                           {"text": "1963年", "answer_start": 12},
                                                           {"text": "他是教宗", "answer_start": -1}]}]
    path = write_json(tmp_path / "cmrc2018/dev.json", squad(qas))
    with caplog.at_level(logging.WARNING):
        dev = load_file("cmrc2018", path)
    assert dev[0]["answers"] == {"text": ["1963年", "1963年"], "answer_start": [14, 14]}
    assert "1 answer_start(s) did not point" in caplog.text and "dropped 1 answer(s)" in caplog.text
    test = write_json(tmp_path / "cmrc2018/test.json", squad([{"id": "T0", "question": "?", "answers": [
        {"text": "FAKE_ANSWER_1", "answer_start": -1}]}]))
    assert load_file("cmrc2018", test)[0]["answers"] == {"text": [], "answer_start": []}
    write_json(path, squad([{"id": "Q9", "question": "?", "answers": [{"text": "x", "answer_start": "3"}]}]))
    with pytest.raises(ClueDataError, match=r"cmrc2018/dev.json: qa Q9: field 'answers\[0\].answer_start': expected "
                                            r"integer, got string"):
        load_file("cmrc2018", path)


# ------------------------------------------------------------------------------------------------- load_task rules


def test_load_task_limit_files_override_and_missing_file(tmp_path):
    assert len(load_task("cmnli", "train", FIXTURES, limit=2)) == 2
    assert len(load_task("chid", "train", FIXTURES, limit=4)) == 4
    other = write_lines(tmp_path / "x/my.json", [{"sentence1": "a", "sentence2": "b", "label": "neutral"}])
    assert load_task("cmnli", "train", FIXTURES, files={"train": str(other)})["label"] == [2]
    with pytest.raises(MissingDataError, match=r"no dev file of afqmc under .*afqmc \(looked for dev.json, "
                                               r"dev_few_all.json\)"):
        load_task("afqmc", "dev", FIXTURES)
    with pytest.raises(ClueDataError, match=r"e.json: no examples in the file"):  # 0 examples is not a split
        load_task("cmnli", "train", FIXTURES, files={"train": str(write_lines(tmp_path / "e.json", []))})
    assert to_dataset("cmnli", []).column_names == ["id", "text", "text_pair", "label"]


# ------------------------------------------------------------------------------------------------------- hub rows


def test_from_hub_rows_maps_the_hub_schema_and_label_orders():
    assert from_hub_rows("afqmc", [{"idx": 0, "sentence1": "a", "sentence2": "b", "label": 1},
                                   {"idx": 1, "sentence1": "c", "sentence2": "d", "label": -1}]) == [
        {"id": 0, "text": "a", "text_pair": "b", "label": 1}, {"id": 1, "text": "c", "text_pair": "d", "label": -1}]
    # hub order neutral, entailment, contradiction; ours contradiction, entailment, neutral
    ocnli = from_hub_rows("ocnli", [{"idx": i, "sentence1": "p", "sentence2": "h", "label": i} for i in range(3)])
    assert [r["label"] for r in ocnli] == [2, 1, 0]
    assert from_hub_rows("tnews", [{"idx": 3, "sentence": "新闻", "label": 5}])[0]["label"] == 5  # code 106
    csl = from_hub_rows("csl", [{"idx": 0, "corpus_id": 2415, "abst": "摘要", "keyword": ["a", "b"], "label": 0}])
    assert csl == [{"id": 2415, "text": "a；b", "text_pair": "摘要", "label": 0}]
    target = {"span1_text": "小明", "span1_index": 0, "span2_text": "他", "span2_index": 3}
    wsc = from_hub_rows("cluewsc2020", [{"idx": 4, "text": "小明说，他饿了", "label": 0, "target": target}])
    assert wsc == [{"id": 4, "text": "[小明]说，<他>饿了", "text_pair": "", "label": 1}]  # hub 0 = "true"
    with pytest.raises(ClueDataError, match=r"hub clue/clue/afqmc: row 0: field 'label': class index 2"):
        from_hub_rows("afqmc", [{"idx": 0, "sentence1": "a", "sentence2": "b", "label": 2}])


def test_from_hub_rows_multiple_choice_and_span():
    c3 = from_hub_rows("c3", [
        {"id": 0, "context": ["男：你好", "女：你好"], "question": "?", "choice": ["甲", "乙"], "answer": "乙"},
        {"id": 0, "context": ["男：你好"], "question": "?", "choice": ["甲", "乙", "丙"], "answer": "甲"}])
    assert [(r["id"], r["context"], r["label"]) for r in c3] == [(0, "男：你好女：你好", 1), (1, "男：你好", 0)]
    c3_test = from_hub_rows("c3", [{"id": 508, "context": ["文"], "question": "?", "choice": ["甲", "乙"], "answer": ""}])
    assert c3_test[0]["id"] == 508 and c3_test[0]["label"] == -1
    chid = from_hub_rows("chid", [{"idx": 0, "candidates": ["百尺竿头", "随波逐流"],
                                   "content": "能#idiom000378#再进一步，去#idiom000379#？",
                                   "answers": {"text": ["百尺竿头", "随波逐流"], "candidate_id": [0, 1]}}])
    assert [(r["id"], r["label"]) for r in chid] == [("#idiom000378#", 0), ("#idiom000379#", 1)]
    assert chid[0]["context"] == f"能{CHID_BLANK}再进一步，去{CHID_OTHER_BLANK}？"
    chid_test = from_hub_rows("chid", [{"idx": 0, "candidates": ["甲"], "content": ["#idiom000900#。"],
                                        "answers": {"text": [], "candidate_id": []}}])
    assert chid_test[0]["label"] == -1
    span = from_hub_rows("cmrc2018", [{"id": "DEV_0_QUERY_0", "context": "光荣和ω-force合作", "question": "谁?",
                                       "answers": {"text": ["光荣", "合作"], "answer_start": [1, 0]}}])
    assert span == [{"id": "DEV_0_QUERY_0", "context": "光荣和ω-force合作", "question": "谁?",
                     "answers": {"text": ["光荣", "合作"], "answer_start": [0, 10]}}]


def test_load_hub_maps_splits_and_rows(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return datasets.Dataset.from_list([{"idx": i, "sentence1": "p", "sentence2": "h", "label": 0} for i in range(3)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    from mengzi.clue.tasks import load_hub

    dev = load_hub("ocnli", "dev", limit=2)
    assert calls == [("clue/clue", "ocnli", "validation")]
    assert dev["label"] == [2, 2] and dev.column_names == ["id", "text", "text_pair", "label"]
    assert {get_task("afqmc"): 1}[get_task("afqmc")] == 1  # tasks are hashable


# ------------------------------------------------------------------------------------ the real releases (../shared)


DEV_COUNTS = [  # (task, root, split, examples) as SOURCES.md counts them
    ("afqmc", "clue", "dev", 4316), ("tnews", "clue", "dev", 10000), ("ocnli", "clue", "dev", 2950),
    ("cluewsc2020", "clue", "dev", 304), ("csl", "clue", "dev", 3000), ("cmrc2018", "clue", "dev", 3219),
    ("c3", "clue", "dev", 3816), ("iflytek", "fewclue", "train", 3024), ("iflytek", "fewclue", "dev", 1373),
    ("chid", "fewclue", "train", 202), ("chid", "fewclue", "dev", 202),
]


@pytest.mark.parametrize("task,root,split,count", DEV_COUNTS)
def test_real_splits_load_with_the_recorded_counts(task, root, split, count):
    data = need_data(f"{root}/{task}")
    dataset = load_task(task, split, data / root)
    assert len(dataset) == count
    labels = dataset["label"] if "label" in dataset.column_names else [len(a["text"]) for a in dataset["answers"]]
    assert min(labels) >= 0 and len(set(dataset["id"])) == count


TRAIN_COUNTS = [("afqmc", 34334), ("tnews", 53360), ("ocnli", 50437), ("cluewsc2020", 1244), ("csl", 20000),
                ("cmrc2018", 10142)]


@pytest.mark.parametrize("task,count", TRAIN_COUNTS)
def test_real_train_files_read_completely(task, count):
    data = need_data(f"clue/{task}")
    assert len(read_examples(task, task_file(task, data / "clue", "train"))) == count


TEST_COUNTS = [("afqmc", "test.json", 3861), ("iflytek", "test.json", 2600), ("ocnli", "test.json", 3000),
               ("cluewsc2020", "test.json", 2574), ("cluewsc2020", "test1.0.json", 290), ("csl", "test.json", 3000),
               ("cmrc2018", "test.json", 2000), ("c3", "test1.1.json", 1625), ("c3", "test1.0.json", 3892)]


@pytest.mark.parametrize("task,name,count", TEST_COUNTS)
def test_real_test_files_have_unique_official_ids_and_no_labels(task, name, count):
    data = need_data(f"clue/{task}/{name}")
    rows = read_examples(task, data / "clue" / task / name)
    assert len(rows) == count and len({r["id"] for r in rows}) == count
    assert all(r.get("label", -1) == -1 and not r.get("answers", {}).get("text") for r in rows)


def test_real_c3_train_is_both_halves_and_cmrc_repairs_are_counted(caplog):
    data = need_data("clue/c3", "clue/cmrc2018/dev.json")
    c3 = load_task("c3", "train", data / "clue", limit=5858)
    assert len(c3) == 5858 and c3[5856]["id"] == 5856  # d-train has 5,856 questions; m-train follows
    with caplog.at_level(logging.WARNING):
        read_examples("cmrc2018", data / "clue/cmrc2018/dev.json")
    assert "cmrc2018/dev.json: 7 answer_start(s)" in caplog.text and "dropped 193 answer(s)" in caplog.text
    assert len(load_task("ocnli", "train", data / "clue", limit=100)) == 100
