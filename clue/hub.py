"""Hugging Face hub rows of the `clue` dataset -> the shared schema, through the same readers as the files.

Each hub row is rebuilt as the official record it came from (field names are the same; the label goes back from
the hub's class index to CLUE's label string), then read by `examples.py`, so hub and file loading cannot drift.
Where the hub differs from the release:
- labels are class indices, in the hub's own order for OCNLI/CMNLI ("neutral", "entailment", "contradiction") and
  CLUEWSC2020 ("true", "false"); -1 on test rows;
- `idx` is the line number; CSL's official id is `corpus_id`;
- C3 rows are questions, `id` the document index on train/dev (we number questions instead, as the file loader
  does: d- then m-, the hub's order too) and the official question id on test, where `answer` is "";
- ChID `content` is one paragraph (older copies: the list), its answers {"text", "candidate_id"} in blank order.
"""

from __future__ import annotations

from . import examples as ex
from .readers import ClueDataError, Record, short

HUB_DATASET = "clue/clue"
HUB_LABEL_ORDER = {"ocnli": ("neutral", "entailment", "contradiction"),
                   "cmnli": ("neutral", "entailment", "contradiction"),
                   "cluewsc2020": ("true", "false")}  # elsewhere the hub's order is CLUE's (task.labels)


def _source(task) -> str:
    return f"hub {HUB_DATASET}/{task.name}"


def _classification_records(task, rows: list[dict]) -> list[Record]:
    names = HUB_LABEL_ORDER.get(task.name, task.labels)
    records = []
    for i, row in enumerate(rows):
        record = Record(dict(row), _source(task), item=f"row {i}")
        label = record.get("label", int, default=-1)
        if label == -1:
            record.data.pop("label", None)
        elif not 0 <= label < len(names):
            raise record.error("label", f"class index {label} outside the hub's {len(names)} classes")
        else:
            record.data["label"] = names[label]
        record.data["id"] = record.integer("corpus_id" if task.name == "csl" else "idx")
        records.append(record)
    return records


def _c3_items(task, rows: list[dict]) -> list:
    items = []
    for i, row in enumerate(rows):
        record = Record(row, _source(task), item=f"row {i}")
        question = {"question": record.text("question"), "choice": record.strings("choice")}
        answer = record.get("answer", str, default="")
        if answer:
            question["answer"] = answer
        else:
            question["id"] = record.integer("id")
        items.append([record.strings("context"), [question]])
    return items


def _chid_records(task, rows: list[dict]) -> tuple[list[Record], dict | None]:
    records, answers = [], {}
    for i, row in enumerate(rows):
        record = Record(row, _source(task), item=f"row {i}")
        content = record.get("content", str, list)
        paragraphs = [content] if isinstance(content, str) else record.strings("content")
        tags = [m.group() for paragraph in paragraphs for m in ex.CHID_TAG.finditer(paragraph)]
        given = record.get("answers", dict, default={}).get("candidate_id") or []
        if given and len(given) != len(tags):
            raise record.error("answers", f"{len(given)} candidate_id(s) for {len(tags)} blank(s)")
        answers.update(zip(tags, given))
        records.append(Record({"candidates": record.strings("candidates"), "content": paragraphs},
                              record.file, item=record.item))
    return records, answers or None


def _cmrc_document(task, rows: list[dict]) -> dict:
    paragraphs = []
    for i, row in enumerate(rows):
        record = Record(row, _source(task), item=f"row {i}")
        given = record.get("answers", dict, default={})
        texts, starts = given.get("text") or [], given.get("answer_start") or []
        if len(texts) != len(starts):
            raise record.error("answers", f"{len(texts)} text(s) but {len(starts)} answer_start(s): {short(given)}")
        answers = [{"text": t, "answer_start": s} for t, s in zip(texts, starts)]
        paragraphs.append({"context": record.text("context"), "qas": [
            {"id": record.text("id"), "question": record.text("question"), "answers": answers}]})
    return {"version": "hub", "data": [{"paragraphs": paragraphs}]}


def hub_rows_to_examples(task, rows: list[dict]) -> list[dict]:
    """`task` a ClueTask; `rows` as `datasets.load_dataset("clue", task.name, split=...)` gives them."""
    source = _source(task)
    if task.kind == "classification":
        return ex.classification_examples(task, _classification_records(task, rows), source, per_record_labels=True)
    if task.name == "c3":
        return ex.c3_examples(_c3_items(task, rows), source)
    if task.name == "chid":
        records, answers = _chid_records(task, rows)
        return ex.chid_examples(records, source, answers, f"{source} answers")
    if task.name == "cmrc2018":
        return ex.cmrc2018_examples(_cmrc_document(task, rows), source)
    raise ClueDataError(source, None, None, f"no hub mapping for task kind {task.kind!r}")
