"""`mengzi clue run | submit | validate`: a CLUE task end to end on the shared fine-tuning engine.

    mengzi clue run afqmc --model runs/pretrain/mengzi-bert-tiny/model --recipe recipes/clue/afqmc-tiny.yaml \
        --out runs/clue/afqmc
    mengzi clue submit runs/clue/* --out clue_submission.zip
    mengzi clue validate clue_submission.zip

A run folder holds the resolved `config.yaml`, `metrics.json`, `dev_predictions.jsonl`, `predictions/` (every test
file of the data folder predicted in the official format and file name), `model/` (best dev checkpoint),
`train.log`, `metrics.jsonl` and `curves.png`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from mengzi import atomic
from mengzi.config import ConfigError, FieldError, option
from mengzi.finetune.config import FinetuneConfig

log = logging.getLogger("mengzi.clue")


@dataclass
class ClueRunConfig(FinetuneConfig):
    task: str = option("", "CLUE task: afqmc, tnews, iflytek, ocnli, cmnli, cluewsc2020, csl, cmrc2018, chid, c3")
    data_dir: str = option("data:clue", "CLUE root folder holding <task>/ with the official files")
    files: dict = option({}, "per-split file overrides, e.g. {train: data:fewclue/chid/train_few_all.json}; "
                             "keys: train, dev, or a test file name")

    def check_fields(self) -> None:
        """A known task; `files` keys it reads (a misspelt key would be ignored) and file names as values."""
        from .tasks import SPLIT_ALIASES, TASKS

        if self.task and self.task not in TASKS:
            raise FieldError("task", f"unknown CLUE task {self.task!r}; known: {', '.join(TASKS)}")
        known = ["train", "dev", *SPLIT_ALIASES, *(TASKS[self.task].test_files if self.task else ())]
        for key, value in self.files.items():
            if key not in known:
                raise FieldError(f"files.{key}", f"not a split of {self.task or 'the task'}; keys: {', '.join(known)}")
            if not isinstance(value, str) or not value.strip():
                raise FieldError(f"files.{key}", f"expected a file path, got {value!r}")


@dataclass
class SubmitConfig:
    runs: list[str] = option([], "run folders of `mengzi clue run` (their predictions/ are collected)")
    out: str = option("clue_submission.zip", "zip to write")
    data_dir: str = option("data:clue", "CLUE root used to validate the zip before it is written ('' to skip)")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")


@dataclass
class ValidateConfig:
    zip: str = option("", "submission zip to check")
    data_dir: str = option("data:clue", "CLUE root holding the test files the ids are checked against")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")


def _metric(task):
    from mengzi.finetune.metrics import metric_for_kind

    return metric_for_kind(task.kind)


def _root(spec: str, data: str) -> Path:
    from mengzi.data import resolve

    return Path(resolve(spec, data or None))


def load_splits(cfg: ClueRunConfig, task):
    """train, dev and every test file present, as datasets in the shared schema; test files are never cut."""
    from .tasks import load_task, task_file

    root = _root(cfg.data_dir, cfg.data)
    files = {k: str(_root(v, cfg.data)) for k, v in cfg.files.items()}
    t = cfg.train
    splits = {"train": load_task(task.name, "train", root, files, limit=t.max_train_examples),
              "dev": load_task(task.name, "dev", root, files, limit=t.max_eval_examples)}
    tests, paths = {}, {}
    for name in task.test_files:  # a file named in `files` must be there; the official ones where present
        path = Path(files[name]) if name in files else task_file(task.name, root, name)
        if path is not None:
            tests[name] = load_task(task.name, name, root, files)
            paths[name] = path
    if not tests:
        log.warning("%s: no test file under %s (looked for %s): no test predictions", task.name, root / task.name,
                    ", ".join(task.test_files))
    return splits, tests, paths


def clue_run(cfg: ClueRunConfig) -> Path:
    from mengzi.finetune.run import finetune
    from mengzi.finetune.techniques import build_techniques
    from mengzi.finetune.trainer import TaskSpec
    from mengzi.models.load import model_folder

    from .submission import predict_name_for, write_predictions
    from .tasks import get_task

    if not cfg.task:
        raise ConfigError("name the task: mengzi clue run TASK (afqmc, tnews, ...)")
    task = get_task(cfg.task)
    if not cfg.out:
        cfg.out = f"runs/clue/{task.name}"
    splits, tests, paths = load_splits(cfg, task)
    # what training would refuse later is refused before the run folder exists: techniques and the model's place
    build_techniques(cfg.techniques, task.kind)
    if not (cfg.init_from or cfg.model):
        raise ConfigError("name the model to fine-tune: --model FOLDER (e.g. runs/pretrain/mengzi-bert-tiny/model)")
    model_folder(cfg.init_from or cfg.model, None)  # a folder, a preset with a checkpoint or a hub id (fetched)
    log.info("%s: %d train, %d dev, test: %s", task.name, len(splits["train"]), len(splits["dev"]),
             ", ".join(f"{n} ({len(d)})" for n, d in tests.items()) or "none")
    out = Path(cfg.out)
    metric, main = _metric(task)
    spec = TaskSpec(name=task.name, kind=task.kind, labels=task.labels, metric=metric, main_metric=main)
    result = finetune(cfg, spec, splits, tests, data={"clue": task.name, "data_dir": cfg.data_dir,
                                                       "files": dict(cfg.files), "data": cfg.data},
                      command=f"mengzi clue run {task.name}")
    written = []
    for name, predictions in result.test_predictions.items():
        predict_name = predict_name_for(task.name, paths[name], tests[name])
        written.append(str(write_predictions(task.name, tests[name], predictions, out / "predictions", predict_name)))
    if result.metrics:
        metrics = dict(result.metrics, predictions=[Path(p).name for p in written])
        atomic.write_text(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=1))
        print(f"{task.name} dev {metrics['dev']}; predictions: {', '.join(metrics['predictions']) or 'none'} -> {out}")
    return out


def clue_submit(cfg: SubmitConfig) -> Path:
    from .submission import SubmissionError, build_submission, validate_submission

    if not cfg.runs:
        raise ConfigError("name the run folders: mengzi clue submit RUN... --out clue_submission.zip")
    out = Path(cfg.out)
    tmp = out.with_name(f".{out.name}.unchecked.zip")
    build_submission([Path(r) for r in cfg.runs], tmp)
    problems = validate_submission(tmp, _root(cfg.data_dir, cfg.data)) if cfg.data_dir else []
    errors = [p for p in problems if not p.startswith("warning:")]
    for p in problems:
        log.warning("%s", p)
    if errors:
        tmp.unlink(missing_ok=True)
        raise SubmissionError(f"submission not written, {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    tmp.replace(out)
    import zipfile

    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    print(f"{out}: {len(names)} files ({', '.join(sorted(names))})")
    return out


def clue_validate(cfg: ValidateConfig) -> list[str]:
    from .submission import SubmissionError, validate_submission

    if not cfg.zip:
        raise ConfigError("name the zip: mengzi clue validate clue_submission.zip")
    problems = validate_submission(Path(cfg.zip), _root(cfg.data_dir, cfg.data))
    errors = [p for p in problems if not p.startswith("warning:")]
    for p in problems:
        if p not in errors:
            print(p)
    if errors:
        raise SubmissionError(f"{cfg.zip}: {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    print(f"{cfg.zip}: OK" + (f" ({len(problems)} warning(s))" if problems else ""))
    return problems
