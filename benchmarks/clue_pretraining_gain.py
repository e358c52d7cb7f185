"""Does pre-training help? `mengzi clue run` with the tiny recipes on the real CLUE data, full dev sets, 3 seeds:
the tiny BERT pre-trained by recipes/pretrain/mengzi-bert-tiny.yaml vs the same architecture randomly initialised.

    python benchmarks/clue_pretraining_gain.py --tasks afqmc tnews ocnli csl cluewsc2020 --seeds 0 1 2 \
        --max-train 20000 --workers 2

Each (task, model) is one `mengzi clue run ... --seeds 0 1 2` (so each seed's best-dev score, their mean and spread,
and the 3-seed ensemble come from the run's metrics.json). Runs go to runs/clue-gain/<task>-<model>/; the table
is printed at the end (and re-printed from existing runs with --summary-only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(task: str, name: str, model: str, args) -> Path:
    out = REPO / "runs" / "clue-gain" / f"{task}-{name}"
    if (out / "metrics.json").is_file():
        return out
    cmd = [sys.executable, "-m", "mengzi", "clue", "run", task, "--recipe", str(REPO / f"recipes/clue/{task}-tiny.yaml"),
           "--model", model, "--out", str(out), "--seeds", *map(str, args.seeds), "--train.threads", "1",
           "--overwrite"]
    if args.max_train:
        cmd += ["--train.max-train-examples", str(args.max_train)]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{task}-{name}.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    return out


def summary(tasks: list[str]) -> None:
    print(f"\n{'task':12} {'model':11} {'train':>6} {'dev':>6} {'seeds (best dev)':22} {'mean':>6} {'std':>5} "
          f"{'ensemble':>8} {'train s':>8}")
    for task in tasks:
        for name in ("pretrained", "random"):
            path = REPO / "runs" / "clue-gain" / f"{task}-{name}" / "metrics.json"
            if not path.is_file():
                print(f"{task:12} {name:11} (missing)")
                continue
            m = json.loads(path.read_text())
            key = m["main_metric"]
            seeds = " ".join(f"{v[key]:.2f}" for v in m["seeds"].values())
            print(f"{task:12} {name:11} {m['train_examples']:6d} {m['dev_examples']:6d} {seeds:22} "
                  f"{m.get('seed_mean', m['dev'][key]):6.2f} "
                  f"{m.get('seed_std', 0):5.2f} {m['dev'][key]:8.2f} {m['train_seconds']:8.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["afqmc", "tnews", "ocnli", "csl", "cluewsc2020"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--pretrained", default=str(REPO / "runs/pretrain/mengzi-bert-tiny/model"))
    p.add_argument("--random", default=str(REPO / "runs/init/mengzi-bert-tiny-random"))
    p.add_argument("--max-train", type=int, default=20000, help="first N training examples (0: all)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args()
    if not args.summary_only:
        if not Path(args.random, "config.json").is_file():
            subprocess.run([sys.executable, "-m", "mengzi", "init", "mengzi-bert-tiny", args.random, "--seed", "0"],
                           check=True, cwd=REPO)
        jobs = [(t, n, m) for t in args.tasks for n, m in (("pretrained", args.pretrained), ("random", args.random))]
        with ThreadPoolExecutor(args.workers) as pool:
            for out in pool.map(lambda job: run(*job, args), jobs):
                print("done", out, flush=True)
    summary(args.tasks)


if __name__ == "__main__":
    main()
