"""The run folder every stage writes through the engine, and the one API that reads it.

    out/
      run.json          typed: stage, status (running | finished), task, kind, labels, fields, model, seeds ...
      config.yaml       the resolved config (`mengzi <command> --config out/config.yaml` repeats the run)
      train.log         the run's INFO log, whatever the console shows
      metrics.jsonl     one line per logged step or evaluation: {"split": "train" | "eval" | "dev", "step": N, ...}
      metrics.json      the summary of the finished run
      curves.png        losses and metrics against the step
      model/            plain Hugging Face format, with a model card (README.md)
      checkpoints/      step-N/ while training (resumable); removed when the run finishes unless kept

Export, `predict --clue` and `clue submit` read `run.json` through `read_run`, never raw config keys.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import atomic

RUN_FILE = "run.json"
OUTPUTS = ("checkpoints", "model", "metrics.jsonl", "metrics.json", "curves.png", "train.log", "trainer_state.json",
           RUN_FILE, "best.json", "seed_done.json", "predictions.jsonl", "dev_predictions.jsonl", "predictions",
           "corpus_stats.json")  # what --overwrite deletes (and seed-*/): never a folder's other files


@dataclass
class RunInfo:
    """What later stages need to know about a run, written by the engine as `run.json`."""

    stage: str  # pretrain | finetune | textgen | oscar | video
    status: str = "running"  # running | finished
    task: str = ""
    kind: str = ""  # finetune: classification | multiple_choice | span
    labels: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # how the data was read: {"clue": TASK, "data_dir", "files", "data"}
    #                                           or {"dataset": users' files and columns (DataFiles), "data"}
    model: str = ""  # what training started from
    max_seq_len: int = 0
    seeds: list[int] = field(default_factory=list)
    main_metric: str = ""
    extra: dict = field(default_factory=dict)


def write_run(out: Path, info: RunInfo) -> Path:
    return atomic.write_text(Path(out) / RUN_FILE, json.dumps(asdict(info), ensure_ascii=False, indent=1) + "\n")


def read_run(out: str | Path) -> RunInfo | None:
    """The run's `run.json`; for a run folder written before run.json existed, what its `config.yaml` says; None
    when neither is there."""
    path = Path(out) / RUN_FILE
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(RunInfo)}
        return RunInfo(**{k: v for k, v in data.items() if k in known})
    import yaml  # a run folder written before run.json: the one place that reads its raw config keys

    config = Path(out) / "config.yaml"
    raw = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
    if not isinstance(raw, dict):
        return None
    spec = ({"clue": raw["task"], "data_dir": raw["data_dir"], "files": raw.get("files") or {}}
            if raw.get("task") and "data_dir" in raw else {"dataset": raw["dataset"]}
            if isinstance(raw.get("dataset"), dict) and "kind" in raw["dataset"] else {})
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    return RunInfo("finetune" if spec else "", task=str(raw.get("task", "")),
                   data=spec | ({"data": raw.get("data", "")} if spec else {}),
                   max_seq_len=int(train.get("max_seq_len") or 0),
                   extra={k: train[k] for k in ("doc_stride", "max_answer_len") if k in train})


def prepare(out: Path, resume: bool, overwrite: bool) -> Path:
    """Make the run folder. A folder holding a run needs `resume` (continue it) or `overwrite` (start afresh: the
    run's outputs are deleted, other files stay). Under `accelerate launch` only the main process (RANK 0) does it."""
    if int(os.environ.get("RANK", "0")) != 0:
        return out
    holds = any((out / name).exists() for name in (RUN_FILE, "checkpoints", "metrics.json")) or any(out.glob("seed-*"))
    if holds and not resume and not overwrite:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue or --overwrite to start "
                              "again")
    if overwrite and not resume:
        for target in [out / name for name in OUTPUTS] + sorted(out.glob("seed-*")):
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def log_to(path: Path) -> logging.Handler:
    """The run's INFO log goes to `train.log` whatever the console shows; remove the handler when done."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("mengzi")
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


class MetricsLog:
    """Append-only `metrics.jsonl`, flushed per line; `truncate(step)` drops lines a killed run wrote after its
    last checkpoint, so a resumed run's log has each step once."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, row: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill
                continue
        return out

    def truncate(self, step: int) -> None:
        kept = [r for r in self.rows() if r.get("step", 0) <= step]
        atomic.write_text(self.path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def _is_loss(key: str) -> bool:
    return key == "loss" or key.endswith("_loss")


NOT_PLOTTED = {"step", "epoch", "lr", "samples_per_s", "tokens_per_s", "examples_seen", "tokens_seen", "samples_seen",
               "batches", "n"}


def plot(runs: dict[str, list[dict]], png: Path, title: str = "") -> Path | None:
    """Losses (log scale) and the other numeric metrics against the step, training lines solid and evaluations
    dashed; `runs` maps a label (a seed, or "") to its metrics rows."""
    if not any(runs.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, rows in runs.items():
        for split in sorted({r.get("split", "train") for r in rows}):
            part = [r for r in rows if r.get("split", "train") == split]
            keys = sorted({k for r in part for k, v in r.items() if isinstance(v, int | float) and k not in NOT_PLOTTED
                           and not isinstance(v, bool)})
            for key in keys:
                pts = [(r["step"], r[key]) for r in part if key in r and "step" in r]
                if pts:
                    ax = ax_loss if _is_loss(key) else ax_metric
                    ax.plot(*zip(*pts), "-" if split == "train" else "o--", markersize=3,
                            label=" ".join(x for x in (label, split, key) if x))
    ax_loss.set(xlabel="step", ylabel="loss", title=title or "loss")
    if ax_loss.lines and all(min(line.get_ydata()) > 0 for line in ax_loss.lines):
        ax_loss.set_yscale("log")
    ax_metric.set(xlabel="step", ylabel="metric", title="metrics")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png)
    atomic.share(png)
    return png


def model_card(folder: Path, info: RunInfo, metrics: dict, train: dict) -> Path:
    """`model/README.md`: what the model is for, what it was trained on and how, and what it scored."""
    tags = ["mengzi", info.stage] + ([info.kind] if info.kind else [])
    lines = ["---", "library_name: transformers", "language: zh", "tags:", *[f"- {t}" for t in tags], "---", "",
             f"# {info.task or info.stage} ({info.stage})", "",
             f"Trained by mengzi ({info.stage}) from `{info.model or 'a random init'}`.", ""]
    if info.task:
        lines += [f"- task: {info.task}" + (f" ({info.kind})" if info.kind else "")]
    if info.labels:
        lines += [f"- labels ({len(info.labels)}): " + ", ".join(map(str, info.labels))]
    if info.data:
        lines += [f"- data: {json.dumps(info.data, ensure_ascii=False)}"]
    if info.max_seq_len:
        lines += [f"- max sequence length: {info.max_seq_len}"]
    lines += ["", "## Metrics", "", "```json", json.dumps(metrics, ensure_ascii=False, indent=1), "```", "",
              "## Training", "", "```json", json.dumps(train, ensure_ascii=False, indent=1), "```", ""]
    return atomic.write_text(folder / "README.md", "\n".join(lines))

