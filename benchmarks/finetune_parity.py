"""Accuracy parity: `mengzi clue run` against the plain HF `Trainer` in benchmarks/hf_reference.py, same checkpoint,
same data (first --train examples, full dev) and settings (lr, batch, epochs, length, warmup ratio, fp32, weight
decay 0.01 off biases/norms, clip 1.0, eps 1e-8, dynamic padding, no length grouping, no mengzi techniques), over
several seeds. Each run is its own process on --threads threads; the figure is the best epoch's dev accuracy.

    python benchmarks/finetune_parity.py --model runs/init/bert-tiny --tasks tnews:48 ocnli:64 afqmc:64 \
        --seeds 1 2 3 --train 8000

Prints a line per run as it ends and a table (mean ± sample standard deviation per task and runner); --json F
also writes every run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_mengzi(args, task: str, max_len: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / task
        command = [sys.executable, "-m", "mengzi", "clue", "run", task, "--model", args.model, "--out", str(out),
                   "--data", args.data, "--train.max-train-examples", str(args.train),
                   "--train.epochs", str(args.epochs), "--train.batch-size", str(args.batch_size),
                   "--train.micro-batch-size", str(args.batch_size), "--train.lr", str(args.lr),
                   "--train.max-seq-len", str(max_len), "--train.warmup-ratio", "0.1",
                   "--train.mixed-precision", "no", "--train.seed", str(seed), "--train.threads", str(args.threads),
                   "--train.eval-batch-size", "128", "--train.log-every", "1000"]
        subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if not args.verbose else None)
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    by_epoch = [round(r["accuracy"], 2) for r in rows if r.get("split") == "dev" and "accuracy" in r]
    return {"runner": "mengzi", "task": task, "seed": seed, "dev_by_epoch": by_epoch,
            "best": round(metrics["dev"]["accuracy"], 2), "seconds": metrics.get("train_seconds")}


def run_hf(args, task: str, max_len: int, seed: int) -> dict:
    command = [sys.executable, str(REPO / "benchmarks" / "hf_reference.py"), "--task", task, "--model", args.model,
               "--data", args.data, "--train", str(args.train), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--max-len", str(max_len),
               "--seed", str(seed), "--threads", str(args.threads)]
    done = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--tasks", nargs="+", default=["tnews:48", "ocnli:64", "afqmc:64"], help="TASK:MAX_LEN")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--runners", nargs="+", default=["mengzi", "hf_trainer"])
    p.add_argument("--train", type=int, default=8000)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="", help="also write every run to this JSON file")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()

    runners = {"mengzi": run_mengzi, "hf_trainer": run_hf}
    results = []
    for spec in args.tasks:
        task, max_len = spec.split(":")
        for seed in args.seeds:
            for name in args.runners:
                r = runners[name](args, task, int(max_len), seed)
                results.append(r)
                print(json.dumps(r), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"\n{args.model}: first {args.train} train, full dev, {args.epochs:g} epochs, batch {args.batch_size}, "
          f"lr {args.lr:g}, fp32, seeds {args.seeds}")
    for spec in args.tasks:
        task = spec.split(":")[0]
        cells = []
        for name in args.runners:
            best = [r["best"] for r in results if r["task"] == task and r["runner"] == name]
            sd = statistics.stdev(best) if len(best) > 1 else 0.0
            cells.append(f"{name} {statistics.mean(best):.2f} ± {sd:.2f} ({', '.join(f'{b:.2f}' for b in best)})")
        print(f"{task:8} " + "   ".join(cells))


if __name__ == "__main__":
    main()
