"""`mengzi finetune`: the CLUE engine on your own CSV / TSV / JSONL files, with your own column names.

    mengzi finetune --model runs/pretrain/mengzi-bert-tiny/model --out runs/my-task \
        --dataset.train train.csv --dataset.dev dev.csv --dataset.test test.csv \
        --dataset.kind classification --dataset.text review --dataset.label sentiment

Kinds and the columns they read (names configurable):
    classification   text (+ text_pair) -> label; labels are the strings found in train (or `labels`)
    multiple_choice  context, question, choices (a JSON list, or several columns "A,B,C,D") -> label (the index,
                     or the text of the right choice)
    span             context, question -> answer (text; `answer_start` optional, else its first occurrence)

Files are read by `mengzi.tabular` (quoted CSV cells, TSV without quoting, BOM, CRLF, `dataset.encoding`); a bad row
stops with the file, line and field named, before the run folder exists. Train and dev rows must be labelled; test
labels are optional. Test predictions go to `RUN/test_predictions.jsonl`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import atomic
from ..config import ConfigError, option, to_dict
from ..tabular import DataError, cell, present, read_records, short, where
from .config import FinetuneConfig

log = logging.getLogger("mengzi.finetune")


@dataclass
class DataFiles:
    train: str = option("", "training file (.csv, .tsv or .jsonl)")
    dev: str = option("", "dev file: best checkpoint and reported metrics")
    test: str = option("", "optional file to predict (labels not needed)")
    format: Literal["auto", "csv", "tsv", "tsv-quoted", "jsonl", "json"] = option(
        "auto", "file format; auto: by extension (.csv, .tsv: no quoting, .jsonl, .json: lines or one array)")
    encoding: str = option("utf-8", "the files' text encoding (utf-8, gbk, gb18030, big5, ...); a BOM is accepted")
    kind: Literal["classification", "multiple_choice", "span"] = option("classification", "what the task is")
    id: str = option("", "id column, unique in each file (default: the row's position, from 0)")
    text: str = option("text", "classification: text column")
    text_pair: str = option("", "classification: second text column for pair tasks")
    label: str = option("label", "classification / multiple_choice: label column")
    labels: list[str] = option([], "label vocabulary in order (default: sorted labels found in train)")
    context: str = option("context", "multiple_choice / span: passage column")
    question: str = option("question", "multiple_choice / span: question column ('' for none)")
    choices: str = option("choices", "multiple_choice: a list column, or comma-separated columns 'A,B,C,D'")
    answer: str = option("answer", "span: answer text column")
    answer_start: str = option("", "span: answer character offset column (default: first occurrence)")


@dataclass
class UserFinetuneConfig(FinetuneConfig):
    dataset: DataFiles = option(DataFiles(), "your files and their columns")


# ------------------------------------------------------------------------------------------------------- reading
def read_rows(path: Path, spec: DataFiles) -> list[tuple[int, dict]]:
    """(line number, row) pairs of a user file, as `mengzi.tabular` reads them."""
    return read_records(path, spec.format, spec.encoding)


def _choices(path: Path, number: int, row: dict, spec: str) -> list[str]:
    if "," in spec:
        return [cell(path, number, row, name, empty_ok=False, what="a choice") for name in spec.split(",")]
    value = present(path, number, row, spec)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise DataError(f"{where(path, number, spec)}: expected a JSON list of choices, got {short(value)}") \
                from None
    if not isinstance(value, list) or len(value) < 2:
        raise DataError(f"{where(path, number, spec)}: expected a list of at least 2 choices, got {short(value)}")
    return [cell(path, number, {f"{spec}[{i}]": v}, f"{spec}[{i}]", empty_ok=False, what="a choice")
            for i, v in enumerate(value)]


def load_user_split(spec: DataFiles, path: Path, labels: list[str] | None, labelled: bool = True,
                    rows: list[tuple[int, dict]] | None = None):
    """The shared schema (see `mengzi.clue.tasks`) from one user file (or its `rows`, already read), as a
    `datasets.Dataset`. In a `labelled` split (train, dev) every row needs its label (its answer, for spans); a
    test file's labels are not read. Texts must be text (a list is refused, never stringified) and not empty."""
    from datasets import Dataset

    out, seen = [], {}
    for index, (number, row) in enumerate(read_rows(path, spec) if rows is None else rows):
        example = {"id": cell(path, number, row, spec.id, empty_ok=False, what="an id") if spec.id else str(index)}
        if example["id"] in seen:
            raise DataError(f"{where(path, number, spec.id)}: id {example['id']!r} repeats line {seen[example['id']]}")
        seen[example["id"]] = number
        label = cell(path, number, row, spec.label, empty_ok=False, what="a label") if labelled and \
            spec.kind != "span" else None
        if spec.kind == "classification":
            example["text"] = cell(path, number, row, spec.text, empty_ok=False)
            example["text_pair"] = cell(path, number, row, spec.text_pair) if spec.text_pair else ""
            example["label"] = _label_index(path, number, spec.label, label, labels) if label is not None else -1
        elif spec.kind == "multiple_choice":
            example["context"] = cell(path, number, row, spec.context, empty_ok=False)
            example["question"] = cell(path, number, row, spec.question) if spec.question else ""
            example["choices"] = _choices(path, number, row, spec.choices)
            example["label"] = _choice_index(path, number, spec.label, label, example["choices"]) \
                if label is not None else -1
        else:
            example["context"] = cell(path, number, row, spec.context, empty_ok=False)
            example["question"] = cell(path, number, row, spec.question, empty_ok=False)
            texts, starts = [], []
            if labelled:
                answer = cell(path, number, row, spec.answer, empty_ok=False, what="the answer text")
                texts, starts = [answer], [_answer_start(path, number, row, spec, example["context"], answer)]
            example["answers"] = {"text": texts, "answer_start": starts}
        out.append(example)
    return Dataset.from_list(out)


def _answer_start(path, number, row, spec, context: str, answer: str) -> int:
    """Where `answer` starts in `context`: the `answer_start` field when there is one, else its first occurrence."""
    start = context.find(answer)
    if spec.answer_start:
        value = cell(path, number, row, spec.answer_start, empty_ok=False, what="a character offset")
        if not value.strip().isdigit():
            raise DataError(f"{where(path, number, spec.answer_start)}: {value!r} is not a character offset")
        start = int(value)
    if start < 0 or context[start : start + len(answer)] != answer:
        raise DataError(f"{where(path, number, spec.answer)}: {answer[:60]!r} is not in the context"
                        + (f" at {start}" if spec.answer_start else ""))
    return start


def _label_index(path, number, column, value: str, labels):
    if value not in labels:
        raise DataError(f"{where(path, number, column)}: unknown label {value!r} (known: {', '.join(labels)})")
    return labels.index(value)


def _choice_index(path, number, column, value: str, choices):
    if value.isdigit():
        index = int(value)
        if not 0 <= index < len(choices):
            raise DataError(f"{where(path, number, column)}: choice index {index} out of range 0..{len(choices)-1}")
        return index
    if value in choices:
        return choices.index(value)
    raise DataError(f"{where(path, number, column)}: {value!r} is neither a choice index nor one of the choices")


# --------------------------------------------------------------------------------------------------- the command
def finetune_user(cfg: UserFinetuneConfig) -> Path:
    from ..data import resolve
    from .metrics import metric_for_kind
    from .run import finetune
    from .trainer import TaskSpec

    spec = cfg.dataset
    if not spec.train or not spec.dev:
        raise ConfigError("finetune needs --dataset.train FILE and --dataset.dev FILE")
    paths = {split: resolve(getattr(spec, split), cfg.data or None) for split in ("train", "dev", "test")
             if getattr(spec, split)}
    rows = {split: read_rows(path, spec) for split, path in paths.items()}  # every file checked before training
    labels = list(spec.labels)
    if spec.kind == "classification" and not labels:
        labels = sorted({cell(paths["train"], n, row, spec.label, empty_ok=False, what="a label")
                         for n, row in rows["train"]})
        log.info("labels (from %s): %s", paths["train"], labels)
    splits = {s: load_user_split(spec, paths[s], labels, rows=rows[s]) for s in ("train", "dev")}
    tests = {"test": load_user_split(spec, paths["test"], labels, labelled=False, rows=rows["test"])} \
        if "test" in paths else {}
    out = Path(cfg.out or "")
    metric, main = metric_for_kind(spec.kind)
    task = TaskSpec(name=Path(cfg.out).name, kind=spec.kind, labels=tuple(labels), metric=metric, main_metric=main)
    result = finetune(cfg, task, splits, tests, data={"dataset": to_dict(spec), "data": cfg.data})
    if tests and result.test_predictions:
        rows = []
        for example_id, prediction in zip(tests["test"]["id"], result.test_predictions["test"]):
            value = labels[prediction] if spec.kind == "classification" else prediction
            rows.append(json.dumps({"id": example_id, "prediction": value}, ensure_ascii=False))
        atomic.write_text(out / "test_predictions.jsonl", "\n".join(rows) + "\n")
    print(f"dev {result.metrics.get('dev')} -> {out}")
    return out
