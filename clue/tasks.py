"""The ten CLUE tasks: one registry line each, and loaders that turn the official files into `datasets.Dataset`s
in one schema per kind, which fine-tuning, prediction and submission all read.

    classification   id (int), text, text_pair ("" for single sentences), label (index into task.labels; -1: none)
    multiple_choice  id (int, or the "#idiom000123#" tag for official ChID), context, question ("" if none),
                     choices (list of str), label (index into choices; -1: none)
    span             id (str query id), context, question, answers {"text": [...], "answer_start": [...]}

`id` is the official id where the file has one (test files always do), so predictions are written back under it.

    load_task("afqmc", "dev")                                # data:clue/afqmc/dev.json
    load_task("c3", "train")                                 # d-train.json then m-train.json
    load_task("iflytek", "train", files={"train": "data:fewclue/iflytek/train_few_all.json"})
    load_task("tnews", "test1.0.json", limit=100)            # a test file by name; the first 100 examples

How each layout is read, and what is repaired rather than refused, is in `examples.py`; problems raise
`ClueDataError` naming file, line and field. `datasets` is imported only inside the functions that build datasets.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from mengzi.data import MissingDataError, resolve, where_to_get

from . import examples as ex
from .hub import HUB_DATASET, hub_rows_to_examples
from .readers import ClueDataError, display_name, json_document, json_lines

__all__ = ["CHID_CONTEXT_CHARS", "TASKS", "TNEWS_LABEL_DESC", "ClueDataError", "ClueTask", "from_hub_rows",
           "get_task", "load_file", "load_hub", "load_task", "read_examples", "task_file", "to_dataset"]

log = logging.getLogger(__name__)
CHID_CONTEXT_CHARS = ex.CHID_CONTEXT_CHARS


@dataclass(frozen=True)
class ClueTask:
    name: str
    kind: str  # "classification" | "multiple_choice" | "span"
    labels: tuple[str, ...]  # classification: label vocabulary in index order; () otherwise
    metric: str  # "accuracy" | "cmrc2018"
    test_files: dict[str, str]  # official test file name -> official prediction file name

    def __hash__(self) -> int:  # the generated hash would fail on the dict field; a task is known by its name
        return hash(self.name)


TASKS: dict[str, ClueTask] = {}


def register(task: ClueTask) -> ClueTask:
    TASKS[task.name] = task
    return task


# TNEWS codes in the order of the official labels.json (105 and 111 are unused); descriptions for submissions.
TNEWS_LABEL_DESC = {"100": "news_story", "101": "news_culture", "102": "news_entertainment", "103": "news_sports",
                    "104": "news_finance", "106": "news_house", "107": "news_car", "108": "news_edu",
                    "109": "news_tech", "110": "news_military", "112": "news_travel", "113": "news_world",
                    "114": "news_stock", "115": "news_agriculture", "116": "news_game"}
NLI_LABELS = ("contradiction", "entailment", "neutral")

# Test file -> prediction file, as CLUE's submission guide names them: tnews/cluewsc2020/c3/chid carry the test set
# version (test.json or test1.1.json = 1.1, test1.0.json = 1.0). ChID's pre-1.1 release called its (1.0) test set
# test.json. FewCLUE stand-ins (ChID, IFLYTEK) are recognised by layout; see submission.predict_name_for.
register(ClueTask("afqmc", "classification", ("0", "1"), "accuracy", {"test.json": "afqmc_predict.json"}))
register(ClueTask("tnews", "classification", tuple(TNEWS_LABEL_DESC), "accuracy",
                  {"test.json": "tnews11_predict.json", "test1.0.json": "tnews10_predict.json"}))
register(ClueTask("iflytek", "classification", tuple(str(i) for i in range(119)), "accuracy",
                  {"test.json": "iflytek_predict.json"}))
register(ClueTask("ocnli", "classification", NLI_LABELS, "accuracy", {"test.json": "ocnli_50k_predict.json"}))
register(ClueTask("cmnli", "classification", NLI_LABELS, "accuracy", {"test.json": "cmnli_predict.json"}))
register(ClueTask("cluewsc2020", "classification", ("false", "true"), "accuracy",
                  {"test.json": "cluewsc11_predict.json", "test1.0.json": "cluewsc10_predict.json"}))
register(ClueTask("csl", "classification", ("0", "1"), "accuracy", {"test.json": "csl_predict.json"}))
register(ClueTask("cmrc2018", "span", (), "cmrc2018", {"test.json": "cmrc2018_predict.json"}))
register(ClueTask("chid", "multiple_choice", (), "accuracy",
                  {"test1.1.json": "chid11_predict.json", "test1.0.json": "chid10_predict.json",
                   "test.json": "chid10_predict.json"}))
register(ClueTask("c3", "multiple_choice", (), "accuracy",
                  {"test1.1.json": "c311_predict.json", "test1.0.json": "c310_predict.json"}))

# Official train/dev file names, first match wins; FewCLUE's names are the fallback (its ChID and IFLYTEK copies
# stand in for the missing official ones). C3's m- half is found beside the d- file by load_task.
SPLIT_FILES = {"train": {"ocnli": ("train.50k.json", "train.json"), "c3": ("d-train.json",)},
               "dev": {"c3": ("d-dev.json",)}}
FEWCLUE_SPLIT_FILES = {"train": "train_few_all.json", "dev": "dev_few_all.json"}
SPLIT_ALIASES = {"validation": "dev"}
LABEL_FILE_TASKS = ("tnews", "iflytek")  # tasks whose release has a labels.json to check the registry against


def get_task(name: str | ClueTask) -> ClueTask:
    if isinstance(name, ClueTask):
        return name
    if name not in TASKS:
        raise KeyError(f"unknown CLUE task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def _root(data_dir: str | os.PathLike) -> Path | None:
    try:
        return resolve(str(data_dir)) if str(data_dir).startswith("data:") else Path(data_dir).expanduser()
    except MissingDataError:
        return None


def _split_names(task: str, split: str) -> tuple[str, ...]:
    split = SPLIT_ALIASES.get(split, split)
    if split not in ("train", "dev"):
        return (split,)
    return SPLIT_FILES[split].get(task, (f"{split}.json",)) + (FEWCLUE_SPLIT_FILES[split],)


def task_file(task: str, data_dir: str | os.PathLike = "data:clue", split: str = "train") -> Path | None:
    """The file of `split` ("train", "dev", or a test file name such as "test1.0.json") under the CLUE root
    `data_dir` (which holds one folder a task), or None if absent."""
    task = get_task(task).name
    root = _root(data_dir)
    if root is None:
        return None
    for name in _split_names(task, split):
        if (root / task / name).is_file():
            return root / task / name
    return None


def check_label_file(task: ClueTask, path: Path) -> None:
    """TNEWS and IFLYTEK ship labels.json: it must list the registry's labels in the registry's order, or label
    indices here would not mean what a model trained elsewhere (or the submission writer) takes them to mean."""
    label_file = path.parent / "labels.json"
    if task.name not in LABEL_FILE_TASKS or not label_file.is_file():
        return
    records = list(json_lines(label_file))
    for i, record in enumerate(records):
        name = ex.label_name(record.get("label", str, int))
        if i >= len(task.labels) or name != task.labels[i]:
            expected = task.labels[i] if i < len(task.labels) else "nothing (the registry has fewer labels)"
            raise record.error("label", f"'{name}' where mengzi expects '{expected}': this labels.json lists "
                               f"labels in another order than CLUE's release")
    if len(records) != len(task.labels):
        raise ClueDataError(display_name(label_file), None, "label",
                            f"lists {len(records)} labels, CLUE's release {len(task.labels)}")


def read_examples(task: str | ClueTask, path: str | os.PathLike, limit: int = 0, labelled: bool | None = None,
                  unique_ids: bool = False) -> list[dict]:
    """One file -> example dicts in the shared schema (no `datasets`: the submission validator uses this).
    `labelled` (training and dev files): every example must have its label; `unique_ids` (test files, whose
    predictions are keyed by id): an id may occur once. A file with no examples is an error."""
    task = get_task(task)
    path = resolve(str(path))  # a missing data: path raises MissingDataError saying where to get it
    if not path.exists():
        raise MissingDataError(f"missing {task.name} file: {path}")
    name = display_name(path)
    checks = {"labelled": labelled, "unique_ids": unique_ids}
    if task.name == "c3":
        rows = ex.c3_examples(json_document(path), name, limit=limit, **checks)
    elif task.name == "cmrc2018":
        rows = ex.cmrc2018_examples(json_document(path), name, limit=limit, **checks)
    elif task.name == "chid":
        answer_path = path.with_name(f"{path.stem}_answer.json")
        answers = ex.chid_answers(json_document(answer_path), display_name(answer_path)) \
            if answer_path.is_file() else None
        if answers is None and labelled is None and not path.stem.startswith("test") and "_few" not in path.stem:
            log.warning("%s: no %s beside it; official-layout blanks get label -1", name, answer_path.name)
        rows = ex.chid_examples(json_lines(path), name, answers, display_name(answer_path), limit, **checks)
    else:
        check_label_file(task, path)
        rows = ex.classification_examples(task, json_lines(path), name, limit, **checks)
    return _not_empty(rows, name)


def _not_empty(rows: list[dict], name: str) -> list[dict]:
    if not rows:
        raise ClueDataError(name, None, None, "no examples in the file")
    return rows


def to_dataset(task: str | ClueTask, rows: list[dict]):
    """Example dicts -> `datasets.Dataset` with the kind's explicit features (so an empty split has columns too)."""
    from datasets import Dataset, Features, List, Value

    task = get_task(task)
    if task.kind == "classification":
        features = {"id": Value("int64"), "text": Value("string"), "text_pair": Value("string"),
                    "label": Value("int64")}
    elif task.kind == "multiple_choice":
        string_ids = bool(rows) and isinstance(rows[0]["id"], str)
        features = {"id": Value("string" if string_ids else "int64"), "context": Value("string"),
                    "question": Value("string"), "choices": List(Value("string")), "label": Value("int64")}
    else:
        features = {"id": Value("string"), "context": Value("string"), "question": Value("string"),
                    "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))}}
    if not rows:  # from_list cannot build an empty table with columns
        return Dataset.from_dict({name: [] for name in features}, features=Features(features))
    return Dataset.from_list(rows, features=Features(features))


def load_file(task: str | ClueTask, path: str | os.PathLike, limit: int = 0, **checks):
    """One file (official or FewCLUE layout, told apart by its content) -> `datasets.Dataset`; `checks` as
    `read_examples` takes them."""
    return to_dataset(task, read_examples(task, path, limit, **checks))


def load_task(task: str, split: str, data_dir: str | os.PathLike = "data:clue",
              files: dict[str, str] | None = None, limit: int = 0):
    """`split` ("train", "dev", or a test file name) of `task` under the CLUE root `data_dir`; `files` maps a split
    to a file that replaces the default (data: paths allowed). `limit` > 0 keeps the first `limit` examples.
    C3's train/dev are d-<split>.json then m-<split>.json, question ids numbered on across both."""
    task = get_task(task)
    split = SPLIT_ALIASES.get(split, split)
    checks = {"labelled": True} if split in ("train", "dev") else {"unique_ids": True}
    if files and files.get(split):
        return load_file(task, files[split], limit, **checks)
    path = task_file(task.name, data_dir, split)
    if path is None:
        root = _root(data_dir)
        raise MissingDataError(
            f"no {split} file of {task.name} under {root / task.name if root else data_dir} (looked for "
            f"{', '.join(_split_names(task.name, split))})\n  where to get it: {where_to_get('clue')}\n"
            f"  or point at a file: files={{{split!r}: 'path/to/file.json'}}")
    if task.name != "c3" or split not in ("train", "dev") or not path.name.startswith("d-"):
        return load_file(task, path, limit, **checks)
    rows = _not_empty(ex.c3_examples(json_document(path), display_name(path), limit=limit, **checks),
                      display_name(path))
    mixed_half = path.with_name(f"m-{split}.json")
    if not mixed_half.is_file():
        log.warning("%s: %s absent; only the dialogue half (d-) is loaded", task.name, mixed_half)
    elif not limit or len(rows) < limit:
        rows += _not_empty(ex.c3_examples(json_document(mixed_half), display_name(mixed_half), first_id=len(rows),
                                          limit=limit - len(rows) if limit else 0, **checks), display_name(mixed_half))
    return to_dataset(task, rows)


def from_hub_rows(task: str, rows: list[dict]) -> list[dict]:
    """Rows of the Hugging Face `clue` dataset (its schema, its label order) -> example dicts in ours."""
    return hub_rows_to_examples(get_task(task), rows)


def load_hub(task: str, split: str = "train", limit: int = 0):
    """The same schema from the Hugging Face hub copy (needs network or the HF cache). `split`: train, dev
    (= HF "validation"), test, or cmrc2018's "trial"."""
    from datasets import load_dataset

    task = get_task(task)
    rows = load_dataset(HUB_DATASET, task.name, split={"dev": "validation"}.get(split, split)).to_list()
    return to_dataset(task, from_hub_rows(task.name, rows[:limit] if limit else rows))
