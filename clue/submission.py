"""CLUE submission files: write a test split's predictions in the official format and file name, zip the files of
several run folders, and check a zip the way the leaderboard will read it, before uploading.

Formats (CLUE's submission guide; every file lists the test file's examples in its order):
- afqmc, tnews, iflytek, ocnli, cmnli, csl, cluewsc2020: JSON lines {"id": <id as in the test file>, "label": "<label>"}
  (tnews also "label_desc"); the leaderboard reads the labels by position, so order matters;
- c3: JSON lines {"id": id, "label": <choice index>};
- cmrc2018: one JSON object {query id: answer text}; chid: one JSON object {"#idiom000123#": candidate index}.
FewCLUE's ChID and IFLYTEK files stand in for missing CLUE data here; their predictions go to FewCLUE's own names and
formats (`chidf_predict.json` lines {"id", "answer"}, `iflytekf_predict.json` lines {"id", "label"}), which CLUE's
leaderboard does not score, so the validator reports them.

Pure Python (json, zipfile): no torch, no datasets.
"""

from __future__ import annotations

import io
import json
import logging
import operator
import os
import zipfile
import zlib
from collections import Counter
from pathlib import Path

from mengzi import atomic
from mengzi.tabular import deep_line

from .readers import ClueDataError, short
from .tasks import TASKS, TNEWS_LABEL_DESC, get_task, read_examples, task_file

log = logging.getLogger(__name__)

FEWCLUE_PREDICT_NAMES = {"chid": "chidf_predict.json", "iflytek": "iflytekf_predict.json"}
# Every FewCLUE prediction file name, so the validator can say what a stray one is.
FEWCLUE_NAMES = {"bustm_predict.json", "chidf_predict.json", "cluewscf_predict.json", "csldcp_predict.json",
                 "cslf_predict.json", "eprstmt_predict.json", "iflytekf_predict.json", "ocnlif_predict.json",
                 "tnewsf_predict.json"}
OBJECT_TASKS = ("cmrc2018", "chid")  # one JSON object; everything else JSON lines
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same predictions give the same zip bytes
SHOW = 5  # offending ids quoted per problem
MAX_MEMBER = 256 << 20  # bytes a prediction file may decompress to (the largest official one is a few MB)


def official_names() -> dict[str, tuple[str, list[str]]]:
    """Prediction file name -> (task, the test file names it answers, most recent first)."""
    names: dict[str, tuple[str, list[str]]] = {}
    for task in TASKS.values():
        for test_name, predict_name in task.test_files.items():
            names.setdefault(predict_name, (task.name, []))[1].append(test_name)
    return names


def _is_fewclue(task: str, test_path: Path, dataset) -> bool:
    if task == "chid":  # FewCLUE's ChID has int ids, the official one "#idiom...#" tags
        ids = _ids(dataset) if dataset is not None else [r["id"] for r in read_examples(task, test_path, limit=1)]
        return bool(ids) and not isinstance(ids[0], str)
    # FewCLUE's IFLYTEK files have their own names (test_public.json, ...) or sit in a fewclue folder.
    return test_path.name not in TASKS[task].test_files or "fewclue" in (p.lower() for p in test_path.parts)


def predict_name_for(task: str, test_path: str | os.PathLike, dataset=None) -> str:
    """The prediction file name for a test file: the official name, or FewCLUE's for its ChID/IFLYTEK copies."""
    task, test_path = get_task(task), Path(test_path)
    if task.name in FEWCLUE_PREDICT_NAMES and _is_fewclue(task.name, test_path, dataset):
        return FEWCLUE_PREDICT_NAMES[task.name]
    if test_path.name in task.test_files:
        return task.test_files[test_path.name]
    raise ValueError(f"{test_path}: not an official {task.name} test file (known: {', '.join(task.test_files)}); "
                     "pass the prediction file name yourself")


def _ids(dataset) -> list:
    return list(dataset["id"]) if hasattr(dataset, "column_names") else [row["id"] for row in dataset]


def _choice_counts(dataset) -> list[int] | None:
    if hasattr(dataset, "column_names"):
        return [len(c) for c in dataset["choices"]] if "choices" in dataset.column_names else None
    return [len(row["choices"]) for row in dataset] if dataset and "choices" in dataset[0] else None


def _index(prediction, size: int | None, where: str) -> int:
    try:
        value = operator.index(prediction)  # ints and numpy integers; floats and strings are refused
    except TypeError:
        raise ValueError(f"{where}: prediction {prediction!r} is not an integer index") from None
    if value < 0 or (size is not None and value >= size):
        raise ValueError(f"{where}: prediction {value} outside 0..{(size or 1) - 1}")
    return value


def write_predictions(task: str, dataset, predictions, out_dir: str | os.PathLike, predict_name: str) -> Path:
    """Write `predictions` (label/choice indices, or answer strings for cmrc2018), in `dataset`'s order, to
    `out_dir/predict_name` in the official format; atomically. `dataset`: the loaded test split (its `id`s)."""
    task = get_task(task)
    ids, predictions = _ids(dataset), list(predictions)
    if len(ids) != len(predictions):
        raise ValueError(f"{task.name}: {len(predictions)} predictions for {len(ids)} test examples")
    fewclue = predict_name == FEWCLUE_PREDICT_NAMES.get(task.name)
    if task.name in OBJECT_TASKS and not fewclue:
        if len(set(ids)) != len(ids):
            raise ValueError(f"{task.name}: duplicate ids in the test split; one JSON object cannot hold them")
        if task.kind == "span":
            bad = [(i, p) for i, p in zip(ids, predictions) if not isinstance(p, str)]
            if bad:
                raise ValueError(f"{task.name}: answers must be strings; id {bad[0][0]} has {bad[0][1]!r}")
            answers = dict(zip(ids, predictions))
        else:
            sizes = _choice_counts(dataset) or [None] * len(ids)
            answers = {i: _index(p, n, f"id {i}") for i, p, n in zip(ids, predictions, sizes)}
        text = json.dumps(answers, ensure_ascii=False, indent=1) + "\n"
    else:
        sizes = _choice_counts(dataset) or [len(task.labels) or None] * len(ids)
        lines = []
        for example_id, prediction, size in zip(ids, predictions, sizes):
            index = _index(prediction, size, f"{task.name} id {example_id}")
            if task.kind == "multiple_choice":
                line = {"id": example_id, "answer" if fewclue else "label": index}
            else:
                line = {"id": example_id, "label": task.labels[index]}
                if task.name == "tnews":
                    line["label_desc"] = TNEWS_LABEL_DESC[task.labels[index]]
            lines.append(json.dumps(line, ensure_ascii=False))
        text = "\n".join(lines) + "\n" if lines else ""
    return atomic.write_text(Path(out_dir) / predict_name, text)


def build_submission(run_dirs, out_zip: str | os.PathLike) -> Path:
    """Zip every `RUN/predictions/*_predict.json` of `run_dirs` (files at the zip root), refusing a name that two
    runs both have. The zip is written to a temporary file beside `out_zip`, then renamed over it."""
    found: dict[str, Path] = {}
    for run in map(Path, run_dirs):
        if not run.is_dir():
            raise FileNotFoundError(f"run folder {run} does not exist")
        paths = sorted((run / "predictions").glob("*_predict.json"))
        if not paths:
            log.warning("%s: no predictions/*_predict.json", run)
        for path in paths:
            if path.name in found:
                raise ValueError(f"{path.name} comes from two runs: {found[path.name]} and {path}; keep one")
            found[path.name] = path
    if not found:
        raise ValueError(f"no predictions/*_predict.json in {', '.join(map(str, run_dirs)) or 'no run folders'}")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(found):
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE), found[name].read_bytes(), zipfile.ZIP_DEFLATED)
    return atomic.write_bytes(out_zip, buffer.getvalue())  # the user's umask, like every other output


# ---------------------------------------------------------------------------------------------------- validation


class SubmissionError(ValueError):
    """A submission zip with problems; the message names the zip and, for each problem, the member and line."""


class _Pairs(list):
    """A JSON object as its (key, value) pairs: `json.loads` would keep only the last of duplicate keys."""


def _first(items, show: int = SHOW) -> str:
    return ", ".join(map(repr, items[:show])) + (", ..." if len(items) > show else "")


def _loads(name: str, text: str, line: int | None = None, **kwargs):
    """(document, None), or (None, the problem naming the member and the line)."""
    try:
        return json.loads(text, **kwargs), None
    except json.JSONDecodeError as e:
        return None, f"{name}: bad JSON at line {line or e.lineno}: {e.msg} (column {e.colno})"
    except RecursionError:
        return None, f"{name}: line {line or deep_line(text) + 1}: JSON nested too deeply to read"
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        return None, f"{name}: line {line or 1}: not valid JSON ({e})"


def _parse_object(name: str, text: str) -> tuple[list, list, list[str]]:
    document, problem = _loads(name, text, object_pairs_hook=_Pairs)
    if problem:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and all(line.startswith("{") and line.endswith("}") for line in lines):
            return [], [], [f"{name}: wrong shape: JSON lines, but this task takes one JSON object {{id: answer}}"]
        return [], [], [problem]
    if not isinstance(document, _Pairs):
        return [], [], [f"{name}: wrong shape: a JSON {type(document).__name__}, expected one object {{id: answer}}"]
    return [key for key, _ in document], [value for _, value in document], []


def _parse_lines(name: str, text: str) -> tuple[list, list, list[str]]:
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    ids, records, problems = [], [], []
    for number, line in lines:
        record, problem = _loads(name, line, number)
        if problem:
            if _loads(name, text)[1] is None:
                return [], [], [f"{name}: wrong shape: one JSON object, but this task takes JSON lines {{id, label}}"]
            return [], [], [problem]
        if not isinstance(record, dict) or "id" not in record or "label" not in record:
            if len(lines) == 1 and isinstance(record, dict):
                return [], [], [f"{name}: wrong shape: one JSON object, but this task takes JSON lines {{id, label}}"]
            problems.append(f"{name}: line {number}: expected {{\"id\": ..., \"label\": ...}}, got "
                            f"{short(line.strip(), 60)}")
            continue
        if isinstance(record["id"], bool) or not isinstance(record["id"], int | str):
            problems.append(f"{name}: line {number}: field 'id': expected an integer or string, got "
                            f"{short(record['id'])}")
            continue
        ids.append(record["id"])
        records.append(record)
    return ids, records, problems


def _bad_value(task, value, n_choices: int | None) -> bool:
    label = value["label"] if isinstance(value, dict) else value
    if task.kind == "span":
        return not isinstance(label, str)
    if task.kind == "multiple_choice":
        return isinstance(label, bool) or not isinstance(label, int) or label < 0 or \
            (n_choices is not None and label >= n_choices)
    if not isinstance(label, str) or label not in task.labels:
        return True
    return task.name == "tnews" and value.get("label_desc", TNEWS_LABEL_DESC[label]) != TNEWS_LABEL_DESC[label]


def _check_values(name: str, task, ids: list, values: list, test_rows: list | None) -> list[str]:
    """Labels inside the task's vocabulary, choice indices inside the question's choices, answers strings."""
    choices = {r["id"]: len(r["choices"]) for r in test_rows or () if "choices" in r}
    bad = [f"id {i!r}: {short(v, 200)}" for i, v in zip(ids, values)
           if _bad_value(task, v, choices.get(i))]
    if not bad:
        return []
    if task.kind == "classification":
        known = ", ".join(task.labels) if len(task.labels) <= 20 else f"'0'..'{len(task.labels) - 1}'"
        what = f"label(s) outside {task.name}'s vocabulary (strings: {known}"
        what += "; label_desc must match)" if task.name == "tnews" else ")"
    elif task.kind == "multiple_choice":
        what = "label(s) that are not an int index into the question's choices"
    else:
        what = "answer(s) that are not strings"
    return [f"{name}: {len(bad)} {what}; first: {'; '.join(bad[:SHOW])}"]


def _check_ids(name: str, test_name: str, ids: list, expected: list, ordered: bool) -> list[str]:
    have, want = set(ids), set(expected)
    missing, extra = [i for i in expected if i not in have], [i for i in ids if i not in want]
    if missing and extra and {str(i) for i in missing} == {str(i) for i in extra}:
        return [f"{name}: ids are {type(extra[0]).__name__} where {test_name} has {type(missing[0]).__name__} "
                f"(e.g. {extra[0]!r} vs {missing[0]!r})"]
    problems = []
    if missing:
        problems.append(f"{name}: {len(missing)} id(s) of {test_name} missing: {_first(missing)}")
    if extra:
        problems.append(f"{name}: {len(extra)} id(s) not in {test_name}: {_first(extra)}")
    if ordered and not (missing or extra) and len(ids) == len(expected) and ids != expected:
        moved = [f"line {n} has id {got!r} where {test_name} has {want_id!r}"
                 for n, (got, want_id) in enumerate(zip(ids, expected), 1) if got != want_id]
        problems.append(f"{name}: out of order vs {test_name} (labels are read by position): {len(moved)} line(s) "
                        f"differ; first: {'; '.join(moved[:SHOW])}")
    return problems


def _test_rows(name: str, task: str, test_names: list[str], data_dir, files: dict | None):
    """(test file as shown, its examples) for a prediction file, or (None, None) when none is there."""
    if files and name in files:
        candidates = [Path(files[name])]
    else:
        candidates = [p for p in (task_file(task, data_dir, t) for t in test_names) if p is not None]
    for path in candidates:
        rows = read_examples(task, path, unique_ids=True)
        if predict_name_for(task, path, rows) == name:  # skip a FewCLUE copy that has an official file name
            return f"{task}/{path.name}", rows
    return None, None


def validate_submission(zip_path: str | os.PathLike, data_dir: str | os.PathLike = "data:clue",
                        files: dict[str, str] | None = None) -> list[str]:
    """Problems with a submission zip, each saying exactly what is wrong (empty: ready to upload). Ids are checked
    against the matching test file under the CLUE root `data_dir`, or `files` ({prediction file name: test file});
    where that is absent, a line starting "warning:" says so, and shape and labels are still checked."""
    if Path(zip_path).is_dir():
        return [f"{zip_path}: is a folder, not a zip"]
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError, EOFError) as e:
        return [f"{zip_path}: not a readable zip ({e.strerror if isinstance(e, OSError) and e.strerror else e})"]
    official, problems = official_names(), []
    with archive:
        members = archive.infolist()
        if not members:
            return [f"{zip_path}: the zip is empty"]
        for name, count in Counter(m.filename for m in members).items():
            if count > 1:
                problems.append(f"{name}: {count} copies in the zip")
        for member in members:
            name = member.filename
            if member.is_dir() or "/" in name:
                problems.append(f"{name}: not at the zip root (CLUE reads top-level files only)")
            elif name in FEWCLUE_NAMES:
                problems.append(f"{name}: not a CLUE file (FewCLUE stand-in): CLUE's leaderboard does not score it")
            elif name not in official:
                problems.append(f"{name}: unknown file name (known: {', '.join(sorted(official))})")
            else:
                data, problem = _read_member(archive, member)
                problems += [problem] if problem else _check_member(name, data, *official[name], data_dir, files)
    return problems


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> tuple[bytes, str | None]:
    """(bytes, None), or (b"", the problem): damaged data, a bad CRC, encryption or a member too large to be a
    prediction file are reported, not raised."""
    if member.file_size > MAX_MEMBER:
        return b"", f"{member.filename}: {member.file_size:,} bytes; a prediction file is far smaller"
    try:
        with archive.open(member) as f:
            data = f.read(MAX_MEMBER + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError) as e:
        return b"", f"{member.filename}: damaged member, cannot be read ({e})"
    if len(data) > MAX_MEMBER:
        return b"", f"{member.filename}: more than {MAX_MEMBER:,} bytes once decompressed"
    return data, None


def _check_member(name: str, data: bytes, task_name: str, test_names: list[str], data_dir, files) -> list[str]:
    task = get_task(task_name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        return [f"{name}: line {line}: not UTF-8 (byte {e.start} of the file: {data[e.start:e.start + 4]!r})"]
    parse = _parse_object if task_name in OBJECT_TASKS else _parse_lines
    ids, values, problems = parse(name, text)
    if not ids:
        return problems or [f"{name}: no predictions in the file"]
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    if duplicates:
        problems.append(f"{name}: {len(duplicates)} duplicate id(s): {_first(duplicates)}")
    try:
        shown, rows = _test_rows(name, task_name, test_names, data_dir, files)
    except (ClueDataError, OSError) as e:
        return problems + [f"{name}: could not read its test file: {e}"]
    problems += _check_values(name, task, ids, values, rows)
    if rows is None:
        return problems + [f"warning: {name}: no {' or '.join(test_names)} of {task_name} under {data_dir}; "
                           "ids not checked (shape and labels were)"]
    return problems + _check_ids(name, shown, ids, [r["id"] for r in rows], task_name not in OBJECT_TASKS)
