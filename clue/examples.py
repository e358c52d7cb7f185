"""Official CLUE records -> examples in the shared schema (one dict per example; `mengzi.clue.tasks` documents the
columns). Pure Python: files and hub rows both come through here, so both give the same examples.

What is repaired rather than refused, each counted and logged once per file:
- OCNLI/CMNLI lines whose label is "-" (annotators did not agree on a gold label) are skipped;
- a CLUEWSC2020 span whose index does not point at its text moves to the nearest occurrence of that text;
- a CMRC2018 answer whose `answer_start` does not point at its text moves to the nearest occurrence; an answer text
  that does not occur in its context at all (annotators' free-form answers, `answer_start` -1) is dropped;
  the test file's placeholder answers ("FAKE_ANSWER_1", start -1) are dropped silently.
Everything else that departs from the official layout raises `ClueDataError`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from itertools import islice

from .readers import ClueDataError, Record, short

log = logging.getLogger(__name__)

NO_GOLD_LABEL = "-"
NO_GOLD_TASKS = ("ocnli", "cmnli")
# The two text fields of each sentence(-pair) task; csl and cluewsc2020 build their texts in `_texts`.
TEXT_FIELDS = {"afqmc": ("sentence1", "sentence2"), "tnews": ("sentence", None), "iflytek": ("sentence", None),
               "ocnli": ("sentence1", "sentence2"), "cmnli": ("sentence1", "sentence2")}
CSL_KEYWORD_SEPARATOR = "；"
WSC_MARKERS = {"span1": ("[", "]"), "span2": ("<", ">")}  # entity in [ ], pronoun in < >

CHID_CONTEXT_CHARS = 128  # characters kept on each side of the blank (another blank counts as one)
CHID_BLANK = "[MASK]" * 4  # this example's blank: an idiom is four characters
CHID_OTHER_BLANK = "[UNK]"  # the other blanks of the paragraph, whose idioms the model must not see
CHID_TAG = re.compile(r"#idiom\d*#")  # official "#idiom000123#"; FewCLUE's single "#idiom#"
_PLACEHOLDER = "\uffff"  # stands for another blank while cutting, so a cut never splits "[UNK]"
CMRC_PLACEHOLDER_ANSWER = "FAKE_ANSWER"


def nearest_occurrence(text: str, part: str, near: int) -> int:
    """Start of the occurrence of `part` in `text` nearest to `near`, or -1 if it does not occur."""
    starts, found = [], text.find(part) if part else -1
    while found != -1:
        starts.append(found)
        found = text.find(part, found + 1)
    return min(starts, key=lambda start: (abs(start - near), start)) if starts else -1


def label_name(value) -> str:
    """Labels are strings in the official files; FewCLUE writes ints, some copies booleans."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _known(labels) -> str:
    return ", ".join(labels) if len(labels) <= 20 else f"{', '.join(labels[:10])}, ... ({len(labels)} labels)"


def _has_label(record: Record, field: str, file_labelled: bool | None, labelled: bool | None) -> bool:
    """Whether `record` is labelled, checked against the file: a training or dev file (`labelled`) labels every
    example; any other file is labelled throughout or not at all, as its first example says (`file_labelled`)."""
    has = field in record
    expected = labelled if labelled is not None else file_labelled
    if expected is None or has == expected:
        return has
    if has:
        raise record.error(field, "present, but the file's first example has none: a file is labelled throughout "
                                  "or not at all")
    why = "a training or dev file labels every example" if labelled else "the file's first example has one"
    raise record.error(field, f"missing ({why})")


def _unique(seen: dict | None, example_id, record: Record, field: str = "id") -> None:
    """Test files (`seen` is a dict): a prediction is keyed by its id, so an id may occur once."""
    if seen is None:
        return
    if example_id in seen:
        raise record.error(field, f"duplicate id {example_id!r} (first at {seen[example_id]}): a test file's ids "
                                  "must be unique")
    seen[example_id] = f"line {record.line}" if record.line else record.item


def mark_wsc(record: Record) -> tuple[str, int]:
    """The text with the entity (span1) in [ ] and the pronoun (span2) in < >, and how many spans were moved.
    Markers go in from the right so earlier indices stay valid; at one position a closing marker precedes an
    opening one ("]<")."""
    text = record.text("text")
    target = record.nested("target")
    inserts, moved = [], 0
    for span, (opening, closing) in WSC_MARKERS.items():
        part, start = target.text(f"{span}_text"), target.integer(f"{span}_index")
        if not part:
            raise target.error(f"{span}_text", "empty")
        if text[start : start + len(part)] != part:
            start = nearest_occurrence(text, part, start)
            if start < 0:
                raise target.error(f"{span}_text", f"'{short(part)}' does not occur in the text")
            moved += 1
        inserts += [(start, 1, opening), (start + len(part), 0, closing)]
    for position, _, marker in sorted(inserts, reverse=True):
        text = text[:position] + marker + text[position:]
    return text, moved


def _texts(task: str, record: Record) -> tuple[str, str, int]:
    if task == "csl":
        return CSL_KEYWORD_SEPARATOR.join(record.strings("keyword", allow_empty=True)), record.text("abst"), 0
    if task == "cluewsc2020":
        text, moved = mark_wsc(record)
        return text, "", moved
    first, second = TEXT_FIELDS[task]
    return record.text(first), record.text(second) if second else "", 0


def classification_examples(task, records: Iterable[Record], file: str, limit: int = 0,
                            per_record_labels: bool = False, labelled: bool | None = None,
                            unique_ids: bool = False) -> list[dict]:
    """{id, text, text_pair, label}. `labelled` (training and dev files): every record has a label; otherwise a file
    is labelled when its first record is, and then every record must be (`per_record_labels`: each record without
    one gets -1, as hub rows). `id` is the record's `id` (or `idx`) field, else its 0-based line index in the file;
    `unique_ids` (test files) refuses an id seen before."""
    index = {label: i for i, label in enumerate(task.labels)}
    examples, file_labelled, skipped, moved = [], None, 0, 0
    seen = {} if unique_ids else None
    for position, record in enumerate(records):
        has = "label" in record if per_record_labels else _has_label(record, "label", file_labelled, labelled)
        file_labelled = has if file_labelled is None else file_labelled
        label = -1
        if has:
            name = label_name(record.get("label", str, int, bool))
            if not name.strip():
                raise record.error("label", "empty")
            if name == NO_GOLD_LABEL and task.name in NO_GOLD_TASKS:
                skipped += 1
                continue
            if name not in index:
                raise record.error("label", f"unknown label '{name}' (known: {_known(task.labels)})")
            label = index[name]
        line_index = record.line - 1 if record.line else position
        example_id = record.integer("id") if "id" in record else record.integer("idx", default=line_index)
        _unique(seen, example_id, record, "id" if "id" in record else "idx")
        text, text_pair, repairs = _texts(task.name, record)
        moved += repairs
        examples.append({"id": example_id, "text": text, "text_pair": text_pair, "label": label})
        if limit and len(examples) >= limit:
            break
    if skipped:
        log.warning("%s: skipped %d line(s) with label '-' (no gold label)", file, skipped)
    if moved:
        log.warning("%s: %d span index(es) did not point at their text; moved to the nearest occurrence", file, moved)
    return examples


def c3_examples(items, file: str, first_id: int = 0, limit: int = 0, labelled: bool | None = None,
                unique_ids: bool = False) -> list[dict]:
    """C3's JSON array of [dialogue lines, questions, doc id] items -> {id, context, question, choices, label}.
    `context` is the lines joined with no separator: each line already ends in punctuation and dialogue lines
    start with their speaker ("男：..."), so nothing is lost and character offsets stay simple.
    `id` is the question's `id` (test files), else `first_id` + its 0-based position among the questions read."""
    if not isinstance(items, list):
        raise ClueDataError(file, None, None, "expected a JSON array of [dialogue lines, questions, doc id] items")
    examples, file_labelled, seen = [], None, {} if unique_ids else None
    for i, item in enumerate(items):
        where = f"item {i}"
        if not isinstance(item, list) or len(item) not in (2, 3):
            raise ClueDataError(file, None, None, f"expected [dialogue lines, questions, doc id], got {short(item)}",
                                where)
        if len(item) == 3:
            where += f" (doc {short(item[2], 20)})"
        document = Record({"lines": item[0], "questions": item[1]}, file, item=where)
        context = "".join(document.strings("lines"))
        for q, question in enumerate(document.get("questions", list)):
            if not isinstance(question, dict):
                raise document.error(f"questions[{q}]", f"expected object, got {short(question)}")
            record = Record(question, file, item=f"{where}, question {q}")
            choices = record.strings("choice")
            has = _has_label(record, "answer", file_labelled, labelled)
            file_labelled = has if file_labelled is None else file_labelled
            label = -1
            if has:
                answer = record.text("answer")
                if answer not in choices:
                    raise record.error("answer", f"'{short(answer)}' is not one of the choices {choices}")
                label = choices.index(answer)
            example_id = record.integer("id") if "id" in record else first_id + len(examples)
            _unique(seen, example_id, record)
            examples.append({"id": example_id, "context": context, "question": record.text("question"),
                             "choices": choices, "label": label})
            if limit and len(examples) >= limit:
                return examples
    return examples


def chid_context(text: str, blank: re.Match) -> str:
    """`text` with this blank as four [MASK]s, other blanks as [UNK], cut to CHID_CONTEXT_CHARS each side."""
    left = CHID_TAG.sub(_PLACEHOLDER, text[: blank.start()])[-CHID_CONTEXT_CHARS:]
    right = CHID_TAG.sub(_PLACEHOLDER, text[blank.end() :])[:CHID_CONTEXT_CHARS]
    return (left + CHID_BLANK + right).replace(_PLACEHOLDER, CHID_OTHER_BLANK)


def chid_examples(records: Iterable[Record], file: str, answers: dict | None = None, answers_file: str = "",
                  limit: int = 0, labelled: bool | None = None, unique_ids: bool = False) -> list[dict]:
    """ChID lines -> one {id, context, question "", choices, label} per blank. Two layouts, told apart per line:
    - official CLUE: {"candidates": [10 idioms], "content": [paragraphs with #idiom000123# tags]}, answers in the
      `<stem>_answer.json` object {tag: candidate index} (None for test files); id = the tag;
    - FewCLUE: {"id": int, "candidates": [7], "content": "one paragraph with one #idiom#", "answer": int?}."""
    examples, file_labelled, seen = [], None, {} if unique_ids else None
    for record in records:
        candidates = record.strings("candidates")
        content = record.get("content", list, str)
        if isinstance(content, str):
            blanks = list(CHID_TAG.finditer(content))
            if len(blanks) != 1:
                raise record.error("content", f"FewCLUE ChID holds one #idiom# blank; found {len(blanks)}")
            has = _has_label(record, "answer", file_labelled, labelled)
            file_labelled = has if file_labelled is None else file_labelled
            label = record.integer("answer") if has else -1
            if has and not 0 <= label < len(candidates):
                raise record.error("answer", f"{label} is not an index into the {len(candidates)} candidates")
            _unique(seen, record.integer("id"), record)
            examples.append({"id": record.integer("id"), "context": chid_context(content, blanks[0]), "question": "",
                             "choices": candidates, "label": label})
        else:
            if labelled and answers is None:
                raise record.error("content", f"official-layout ChID keeps its answers in {answers_file}, which is "
                                              "missing; a training or dev file needs them")
            for p, paragraph in enumerate(record.strings("content")):
                for blank in CHID_TAG.finditer(paragraph):
                    tag, label = blank.group(), -1
                    _unique(seen, tag, record, f"content[{p}]")
                    if answers is not None:
                        if tag not in answers:
                            raise record.error(f"content[{p}]", f"blank {tag} has no entry in {answers_file}")
                        label = answers[tag]
                        if not 0 <= label < len(candidates):
                            line = f"{record.file}:{record.line}" if record.line else f"{record.file}, {record.item}"
                            raise ClueDataError(answers_file, None, tag, f"{label} is not an index into the "
                                                f"{len(candidates)} candidates of {line}")
                    examples.append({"id": tag, "context": chid_context(paragraph, blank), "question": "",
                                     "choices": candidates, "label": label})
        if limit and len(examples) >= limit:
            return examples[:limit]
    return examples


def chid_answers(document, file: str) -> dict[str, int]:
    """A `<stem>_answer.json` object {"#idiom000123#": candidate index}, checked."""
    if not isinstance(document, dict):
        raise ClueDataError(file, None, None, "expected one JSON object {\"#idiom000123#\": candidate index}")
    for tag, index in document.items():
        if isinstance(index, bool) or not isinstance(index, int):
            raise ClueDataError(file, None, tag, f"expected integer, got {short(index)}")
    return document


def _cmrc_answers(record: Record, context: str, counts: dict, labelled: bool | None) -> dict:
    texts, starts = [], []
    if labelled and not record.get("answers", list):
        raise record.error("answers", "empty list (a training or dev file answers every question)")
    for i, answer in enumerate(record.get("answers", list, default=[])):
        if not isinstance(answer, dict):
            raise record.error(f"answers[{i}]", f"expected object, got {short(answer)}")
        entry = Record(answer, record.file, item=record.item, prefix=f"answers[{i}].")
        text, start = entry.text("text"), entry.integer("answer_start")
        if start == -1 and text.startswith(CMRC_PLACEHOLDER_ANSWER):
            continue  # the unlabelled test file's stand-in answers
        found = nearest_occurrence(context, text, start)
        if found < 0:
            counts["dropped"] += 1
            continue
        counts["repaired"] += found != start
        texts.append(text)
        starts.append(found)
    return {"text": texts, "answer_start": starts}


def _cmrc_questions(document, file: str, counts: dict, labelled: bool | None, seen: dict | None) -> Iterator[dict]:
    if not isinstance(document, dict):
        raise ClueDataError(file, None, None, "expected a SQuAD-style object {\"version\", \"data\": [...]}")
    for a, article in enumerate(Record(document, file).get("data", list)):
        if not isinstance(article, dict):
            raise ClueDataError(file, None, None, f"expected object, got {short(article)}", f"data[{a}]")
        for p, paragraph in enumerate(Record(article, file, item=f"data[{a}]").get("paragraphs", list)):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise ClueDataError(file, None, None, f"expected object, got {short(paragraph)}", where)
            paragraph = Record(paragraph, file, item=where)
            context = paragraph.text("context")
            for q, qa in enumerate(paragraph.get("qas", list)):
                if not isinstance(qa, dict):
                    raise paragraph.error(f"qas[{q}]", f"expected object, got {short(qa)}")
                qa_id = qa.get("id")
                record = Record(qa, file, item=f"qa {qa_id}" if isinstance(qa_id, str) else f"{where}.qas[{q}]")
                _unique(seen, record.text("id"), record)
                yield {"id": record.text("id"), "context": context, "question": record.text("question"),
                       "answers": _cmrc_answers(record, context, counts, labelled)}


def cmrc2018_examples(document, file: str, limit: int = 0, labelled: bool | None = None,
                      unique_ids: bool = False) -> list[dict]:
    """SQuAD-style {"version", "data": [{"paragraphs": [{"context", "qas": [...]}]}]} -> {id, context, question,
    answers: {text: [...], answer_start: [...]}} (empty lists for the test file). Problems name the qa id."""
    counts = {"repaired": 0, "dropped": 0}
    questions = _cmrc_questions(document, file, counts, labelled, {} if unique_ids else None)
    examples = list(islice(questions, limit or None))
    if counts["repaired"]:
        log.warning("%s: %d answer_start(s) did not point at the answer text; moved to the nearest occurrence",
                    file, counts["repaired"])
    if counts["dropped"]:
        log.warning("%s: dropped %d answer(s) whose text does not occur in the context", file, counts["dropped"])
    return examples
