"""`mengzi finetune`: the CLUE engine on your own CSV / TSV / JSONL files, with your own column names.

    mengzi finetune --model runs/pretrain/mengzi-bert-tiny/model --out runs/my-task \
        --dataset.train train.csv --dataset.dev dev.csv --dataset.test test.csv \
        --dataset.kind classification --dataset.text review --dataset.label sentiment

Kinds and the columns they read (names configurable):
    classification   text (+ text_pair) -> label; labels are the strings found in train (or `labels`)
    multiple_choice  context, question, choices (a JSON list, or several columns "A,B,C,D") -> label (the index,
                     or the text of the right choice)
    span             context, question -> answer (text; `answer_start` optional, else its first occurrence)

A bad row stops with the file, line and field named. Test predictions go to `RUN/test_predictions.jsonl`.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import atomic
from ..config import ConfigError, option, save_yaml
from ..textfiles import json_objects
from .config import FinetuneConfig

log = logging.getLogger("mengzi.finetune")


class DataError(ValueError):
    """A row of a user file is unusable; the message names file, line and field."""


@dataclass
class DataFiles:
    train: str = option("", "training file (.csv, .tsv or .jsonl)")
    dev: str = option("", "dev file: best checkpoint and reported metrics")
    test: str = option("", "optional file to predict (labels not needed)")
    format: Literal["auto", "csv", "tsv", "jsonl"] = option("auto", "file format; auto: by extension")
    kind: Literal["classification", "multiple_choice", "span"] = option("classification", "what the task is")
    id: str = option("", "id column (default: the line number)")
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
def read_rows(path: Path, fmt: str = "auto") -> list[tuple[int, dict]]:
    """(line number, row) pairs of a CSV/TSV (header row) or JSONL file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if fmt == "auto":
        fmt = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}.get(path.suffix.lower(), "")
        if not fmt:
            raise DataError(f"{path}: cannot tell the format from the extension; set dataset.format")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start})") from None
    if fmt == "jsonl":
        return list(json_objects(path, text.splitlines(), DataError))
    reader = csv.DictReader(text.splitlines(), delimiter="," if fmt == "csv" else "\t")
    return [(reader.line_num, row) for row in reader]


def _field(path: Path, number: int, row: dict, name: str, kind=str):
    if name not in row or row[name] is None:
        raise DataError(f"{path}:{number}: field {name!r} is missing (columns: {sorted(row)})")
    value = row[name]
    if kind is str and not isinstance(value, str):
        value = str(value)
    return value


def _choices(path: Path, number: int, row: dict, spec: str) -> list[str]:
    if "," in spec:
        return [_field(path, number, row, name) for name in spec.split(",")]
    value = _field(path, number, row, spec, kind=list)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{number}: field {spec!r}: expected a JSON list of choices") from None
    if not isinstance(value, list) or len(value) < 2:
        raise DataError(f"{path}:{number}: field {spec!r}: expected a list of at least 2 choices, got {value!r}")
    return [str(v) for v in value]


def load_user_split(spec: DataFiles, path: Path, labels: list[str] | None, labelled: bool = True):
    """The shared schema (see `mengzi.clue.tasks`) from one user file, as a `datasets.Dataset`."""
    from datasets import Dataset

    out = []
    for index, (number, row) in enumerate(read_rows(path, spec.format)):
        example = {"id": str(row.get(spec.id, index)) if spec.id else str(index)}
        has_label = labelled and spec.label in row and row[spec.label] not in (None, "")
        if spec.kind == "classification":
            example["text"] = _field(path, number, row, spec.text)
            example["text_pair"] = _field(path, number, row, spec.text_pair) if spec.text_pair else ""
            example["label"] = _label_index(path, number, spec.label, row, labels) if has_label else -1
        elif spec.kind == "multiple_choice":
            example["context"] = _field(path, number, row, spec.context)
            example["question"] = _field(path, number, row, spec.question) if spec.question else ""
            example["choices"] = _choices(path, number, row, spec.choices)
            example["label"] = _choice_index(path, number, spec.label, row, example["choices"]) if has_label else -1
        else:
            example["context"] = _field(path, number, row, spec.context)
            example["question"] = _field(path, number, row, spec.question)
            texts, starts = [], []
            if labelled and row.get(spec.answer) not in (None, ""):
                answer = _field(path, number, row, spec.answer)
                start = int(row[spec.answer_start]) if spec.answer_start and row.get(spec.answer_start) not in (
                    None, "") else example["context"].find(answer)
                if start < 0 or example["context"][start : start + len(answer)] != answer:
                    raise DataError(f"{path}:{number}: field {spec.answer!r}: {answer!r} is not in the context"
                                    + (f" at {start}" if spec.answer_start else ""))
                texts, starts = [answer], [start]
            example["answers"] = {"text": texts, "answer_start": starts}
        out.append(example)
    if not out:
        raise DataError(f"{path}: no rows")
    return Dataset.from_list(out)


def _label_index(path, number, column, row, labels):
    value = str(row[column])
    if value not in labels:
        raise DataError(f"{path}:{number}: field {column!r}: unknown label {value!r} (known: {', '.join(labels)})")
    return labels.index(value)


def _choice_index(path, number, column, row, choices):
    value = row[column]
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        index = int(value)
        if not 0 <= index < len(choices):
            raise DataError(f"{path}:{number}: field {column!r}: choice index {index} out of range 0..{len(choices)-1}")
        return index
    if str(value) in choices:
        return choices.index(str(value))
    raise DataError(f"{path}:{number}: field {column!r}: {value!r} is neither a choice index nor one of the choices")


# --------------------------------------------------------------------------------------------------- the command
def finetune_user(cfg: UserFinetuneConfig) -> Path:
    from ..data import resolve
    from .metrics import metric_for_kind
    from .run import finetune, prepare_run_folder
    from .trainer import TaskSpec

    spec = cfg.dataset
    if not spec.train or not spec.dev:
        raise ConfigError("finetune needs --dataset.train FILE and --dataset.dev FILE")
    paths = {split: resolve(getattr(spec, split), cfg.data or None) for split in ("train", "dev", "test")
             if getattr(spec, split)}
    labels = list(spec.labels)
    if spec.kind == "classification" and not labels:
        labels = sorted({str(row[spec.label]) for _, row in read_rows(paths["train"], spec.format)
                         if row.get(spec.label) not in (None, "")})
        log.info("labels (from %s): %s", paths["train"], labels)
    splits = {s: load_user_split(spec, paths[s], labels) for s in ("train", "dev")}
    tests = {"test": load_user_split(spec, paths["test"], labels, labelled=False)} if "test" in paths else {}
    out = prepare_run_folder(cfg)
    save_yaml(cfg, out / "config.yaml", header="resolved config of this run (mengzi finetune --config this)")
    metric, main = metric_for_kind(spec.kind)
    task = TaskSpec(name=Path(cfg.out).name, kind=spec.kind, labels=tuple(labels), metric=metric, main_metric=main)
    result = finetune(cfg, task, splits, tests)
    if tests and result.test_predictions:
        rows = []
        for example_id, prediction in zip(tests["test"]["id"], result.test_predictions["test"]):
            value = labels[prediction] if spec.kind == "classification" else prediction
            rows.append(json.dumps({"id": example_id, "prediction": value}, ensure_ascii=False))
        atomic.write_text(out / "test_predictions.jsonl", "\n".join(rows) + "\n")
    print(f"dev {result.metrics.get('dev')} -> {out}")
    return out
