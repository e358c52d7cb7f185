"""What a run leaves for people: metrics as JSON lines (one per logged step or evaluation) and a PNG loss curve."""

from __future__ import annotations

import json
from pathlib import Path

from .. import atomic


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


def plot(rows: list[dict], png: Path, title: str = "") -> Path | None:
    """Training losses (total and per objective) and held-out losses against the step; accuracies beside."""
    train = [r for r in rows if r.get("split") == "train"]
    evals = [r for r in rows if r.get("split") == "eval"]
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    for rows_, style, prefix in ((train, "-", "train "), (evals, "o--", "eval ")):
        keys = sorted({k for r in rows_ for k in r if k == "loss" or k.endswith("_loss")})
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows_ if key in r]
            ax_loss.plot(*zip(*pts), style, label=prefix + key, markersize=3)
        keys = sorted({k for r in rows_ for k in r if k.endswith("_acc")})
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows_ if key in r]
            ax_acc.plot(*zip(*pts), style, label=prefix + key, markersize=3)
    ax_loss.set(xlabel="step", ylabel="loss", title=title or "loss")
    ax_loss.set_yscale("log")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = png.with_name(f".{png.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(png)
    return png
