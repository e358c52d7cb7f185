"""A fine-tuning run: one or several seeds, their logit-averaged ensemble, and the run folder.

    result = finetune(cfg, task, {"train": ds, "dev": ds}, tests={"test.json": ds})

Run folder (the contract with `mengzi clue submit` and `mengzi export`): `run.json` (task, kind, labels, how the
data was read, max_seq_len, doc_stride; read through `mengzi.engine.runfolder.read_run`), `config.yaml`,
`train.log`, `metrics.jsonl`, `metrics.json` (best dev metrics; per seed, mean, spread and ensemble when several
seeds), `dev_predictions.jsonl`, `curves.png`, `model/` (the best checkpoint in plain transformers format, labels in
its config), and with several seeds `seed-N/` folders of their own. Test predictions are returned to the caller, which writes them in its own format (CLUE: `predictions/`).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import atomic
from ..config import ConfigError
from ..engine import loop, runfolder
from .config import FinetuneConfig
from .kinds import get_kind
from .trainer import SeedResult, TaskSpec, predict_logits, train_seed

log = logging.getLogger("mengzi.finetune")


@dataclass
class RunResult:
    out: Path
    metrics: dict
    dev_predictions: list
    test_predictions: dict[str, list] = field(default_factory=dict)  # split name -> predictions in dataset order


def finetune(cfg: FinetuneConfig, task: TaskSpec, splits: dict, tests: dict | None = None, data: dict | None = None,
             command: str = "mengzi finetune") -> RunResult:
    """Prepare the run folder (`cfg.resume` / `cfg.overwrite`; config.yaml says `command`), train every seed,
    evaluate the best checkpoints (and their ensemble) on dev, predict the test splits. `data`: how the caller read
    the data (run.json's `data`, from which export rebuilds the dev set and the input fields)."""
    from transformers.utils import logging as hf_logging

    if not cfg.out:
        raise ConfigError("name the run folder: --out RUN")
    hf_logging.disable_progress_bar()  # per-file load/save bars would drown the run's own progress bar
    if cfg.train.batch_size % cfg.train.micro_batch_size and cfg.train.micro_batch_size < cfg.train.batch_size:
        log.warning("batch_size %d is not a multiple of micro_batch_size %d: the last micro-batch of a step is smaller",
                    cfg.train.batch_size, cfg.train.micro_batch_size)
    info = runfolder.RunInfo("finetune", task=task.name, kind=task.kind, labels=[str(x) for x in task.labels],
                             data=data or {}, model=cfg.init_from or cfg.model, max_seq_len=cfg.train.max_seq_len,
                             seeds=cfg.seeds or [cfg.train.seed], main_metric=task.main_metric,
                             extra={"doc_stride": cfg.train.doc_stride, "max_answer_len": cfg.train.max_answer_len})
    with loop.session(cfg, cfg.train, Path(cfg.out), command) as accelerator:
        return _run(cfg, task, splits, tests or {}, Path(cfg.out), accelerator, info)


def _run(cfg, task, splits, tests, out, accelerator, info) -> RunResult:
    from ..models.load import load

    seeds = cfg.seeds or [cfg.train.seed]
    kind = get_kind(task.kind)
    results: list[SeedResult] = []
    logits: dict[str, list[list[np.ndarray]]] = {}
    encoded = {}
    for seed in seeds:
        seed_out = out if len(seeds) == 1 else out / f"seed-{seed}"
        seed_out.mkdir(parents=True, exist_ok=True)
        done = seed_out / "seed_done.json"
        if cfg.resume and done.is_file():  # a finished seed of a resumed ensemble
            result = SeedResult(**{**json.loads(done.read_text(encoding="utf-8")), "model_dir": seed_out / "model"})
            log.info("seed %d: already finished (dev %s)", seed, result.best)
        else:
            result = train_seed(cfg, task, splits, seed, seed_out, accelerator, copy.deepcopy(info))
            if accelerator.is_main_process:
                atomic.write_text(done, json.dumps({"seed": seed, "best": result.best,
                                                    "train_seconds": result.train_seconds,
                                                    "train_samples": result.train_samples}))
        results.append(result)
        if accelerator.is_main_process:  # the best checkpoint's logits on dev and every test split
            model, tokenizer = load(result.model_dir, task=kind.model_task)
            model.to(accelerator.device)
            for name, dataset in {"dev": splits["dev"], **tests}.items():
                if name not in encoded:
                    encoded[name] = kind.encode(dataset, tokenizer, cfg.train)
                logits.setdefault(name, []).append(predict_logits(model, encoded[name], kind, tokenizer.pad_token_id
                                                                  or 0, cfg.train.eval_batch_size, accelerator))
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return RunResult(out, {}, [])

    averaged = {name: [np.mean(rows, axis=0) for rows in zip(*per_seed)] for name, per_seed in logits.items()}
    dev_predictions = kind.predict(averaged["dev"], encoded["dev"], splits["dev"], cfg.train)
    final = task.metric(dev_predictions, splits["dev"])
    metrics = {"task": task.name, "kind": task.kind, "main_metric": task.main_metric, "dev": final,
               "dev_examples": len(splits["dev"]), "train_examples": len(splits["train"]),
               "seeds": {r.seed: r.best for r in results},
               "train_seconds": round(sum(r.train_seconds for r in results), 1),
               "train_samples_per_s": round(sum(r.train_samples for r in results) /
                                            max(sum(r.train_seconds for r in results), 1e-9), 1)}
    if len(results) > 1:
        scores = [r.best[task.main_metric] for r in results]
        metrics["seed_mean"] = round(statistics.mean(scores), 5)
        metrics["seed_std"] = round(statistics.stdev(scores), 5)
        metrics["ensemble"] = final
        best = max(results, key=lambda r: r.best[task.main_metric])
        _copy_folder(best.model_dir, out / "model")
        metrics["model_from_seed"] = best.seed
    atomic.write_text(out / "metrics.json", json.dumps(metrics, ensure_ascii=False, indent=1))
    _write_dev_predictions(out / "dev_predictions.jsonl", splits["dev"], dev_predictions, task)
    runfolder.plot({f"seed {s}" if len(seeds) > 1 else "": runfolder.MetricsLog(
        (out if len(seeds) == 1 else out / f"seed-{s}") / "metrics.jsonl").rows() for s in seeds}, out / "curves.png",
        title=task.name)
    info.status = "finished"
    runfolder.write_run(out, info)
    log.info("%s dev %s: %s -> %s", task.name, "ensemble" if len(results) > 1 else "best",
             ", ".join(f"{k} {v:.4f}" for k, v in final.items()), out)
    tests_out = {name: kind.predict(averaged[name], encoded[name], dataset, cfg.train) for name, dataset in tests.items()}
    return RunResult(out, metrics, dev_predictions, tests_out)


def _copy_folder(src: Path, dst: Path) -> None:
    with atomic.folder(dst, overwrite=True) as tmp:
        for f in src.iterdir():
            shutil.copy2(f, tmp / f.name)


def _write_dev_predictions(path: Path, dataset, predictions: list, task: TaskSpec) -> None:
    rows = []
    ids = dataset["id"] if "id" in dataset.column_names else list(range(len(dataset)))
    gold = dataset["label"] if "label" in dataset.column_names else None
    for i, (example_id, prediction) in enumerate(zip(ids, predictions)):
        row = {"id": example_id, "prediction": prediction}
        if task.labels and isinstance(prediction, int):
            row["prediction_label"] = task.labels[prediction]
        if gold is not None:
            row["label"] = gold[i]
            row["correct"] = gold[i] == prediction
        rows.append(json.dumps(row, ensure_ascii=False))
    atomic.write_text(path, "\n".join(rows) + "\n")
