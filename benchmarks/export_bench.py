"""PyTorch eager vs ONNX Runtime (plain, fused, fused INT8, ...) on the CPU, measured interleaved in one process.

    python benchmarks/export_bench.py                       # BERT-base config (vocab 21128) + tiny, seq 128
    python benchmarks/export_bench.py --sizes tiny --reps 20
    python benchmarks/export_bench.py --afqmc 2000          # + real-text throughput on AFQMC dev (dynamic lengths)
    python benchmarks/export_bench.py --gate-run runs/clue/tnews   # + the INT8 task gate on a CLUE run's dev set

For each size: latency at batch 1 and throughput at batch 32 (sequence length 128, every token real), the median of
`--reps` interleaved rounds (A, B, C, A, B, C, ...: machine drift hits every variant alike), printed with the
ratio to eager fp32 measured in the same rounds. Exports are built once under --work (reused on reruns; --fresh
rebuilds) through `mengzi export`, so every variant passed the numeric gate. Weights are random: speed does not
depend on them; accuracy is the task gate's job (--gate-run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

# Both runtimes share 2 cores in one process: OpenMP threads that busy-wait after a torch call would steal the
# cores from the next ORT call (and ORT's spinning threads from torch's). Passive waiting on both sides is fair.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mengzi.export.heads import get_head  # noqa: E402
from mengzi.export.onnx_export import EncoderHead, load_model  # noqa: E402
from mengzi.export.run import ExportConfig, export_model  # noqa: E402
from mengzi.export.session import make_session  # noqa: E402

from mengzi.models.load import init_model, save_pretrained  # noqa: E402

PRESETS = {"base": "mengzi-bert-base", "tiny": "mengzi-bert-tiny"}
# variant -> export options (each becomes its own export folder)
VARIANTS = {
    "ort-fp32": {},
    "ort-fused": {"optimize": True},
    "ort-int8": {"quantize": "int8"},
    "ort-fused-int8": {"optimize": True, "quantize": "int8"},
    "ort-fused-int8-pc": {"optimize": True, "quantize": "int8", "per_channel": True},
}


def build(size: str, work: Path, fresh: bool, variants: list[str]) -> dict[str, Path]:
    model_dir = work / f"{size}-model"
    if fresh or not (model_dir / "config.json").is_file():
        overrides = {"num_labels": 2, "id2label": {0: "0", 1: "1"}, "label2id": {"0": 0, "1": 1}}
        model, tok = init_model(PRESETS[size], task="sequence-classification", overrides=overrides)
        save_pretrained(model, tok, model_dir, overwrite=True)
    out = {"model": model_dir}
    for name in variants:
        folder = work / f"{size}-{name}"
        if fresh or not (folder / "mengzi_export.json").is_file():
            t = time.perf_counter()
            export_model(ExportConfig(model=str(model_dir), out=str(folder), overwrite=True, **VARIANTS[name]))
            print(f"  built {folder.name} in {time.perf_counter() - t:.0f}s")
        out[name] = folder
    return out


def feeds(batch: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(670, 21000, size=(batch, length), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    types = np.zeros_like(ids)
    types[:, length // 2 :] = 1
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}


def interleaved(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds per call of each function, measured round-robin after one warm-up call each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def bench_size(size: str, paths: dict, threads: int, reps: int, length: int, variants: list[str]) -> list[dict]:
    head = get_head("sequence-classification")
    model, _ = load_model(paths["model"], head)
    wrapper = EncoderHead(model, head).eval()
    sessions = {name: make_session(paths[name] / "model.onnx", "cpu", threads, spin=False) for name in variants}
    rows = []
    for batch, n in ((1, reps * 5), (32, reps)):
        f = feeds(batch, length)
        t = {k: torch.from_numpy(v) for k, v in f.items()}

        def eager(t=t):
            with torch.inference_mode():
                wrapper(t["input_ids"], t["attention_mask"], t["token_type_ids"])

        fns = {"eager-fp32": eager} | {name: (lambda s=s, f=f: s.run(None, f)) for name, s in sessions.items()}
        medians = interleaved(fns, n)
        for name, sec in medians.items():
            rows.append({"size": size, "batch": batch, "variant": name, "ms": sec * 1e3,
                         "per_s": batch / sec, "speedup": medians["eager-fp32"] / sec})
        print(f"\n{size} batch {batch}, seq {length}, {threads} threads, median of {n} interleaved rounds")
        print(f"  {'variant':20} {'ms/batch':>10} {'seq/s':>9} {'vs eager':>9}")
        for r in rows[-len(medians):]:
            print(f"  {r['variant']:20} {r['ms']:10.2f} {r['per_s']:9.1f} {r['speedup']:8.2f}x")
    return rows


def bench_afqmc(paths: dict, n: int, threads: int, variant: str, reps: int) -> dict:
    """Real text: AFQMC dev pairs at their own lengths, batches of 32 sorted by length, as the Predictor runs."""
    from mengzi.clue.tasks import load_task
    from mengzi.export import Predictor
    from mengzi.export.gates import torch_predictions

    ds = load_task("afqmc", "dev", "data:clue", limit=n)
    head = get_head("sequence-classification")
    model, tok = load_model(paths["model"], head)
    predictor = Predictor(paths[variant], providers="cpu", threads=threads, batch_size=32)
    fns = {"eager-fp32": lambda: torch_predictions(model, head, ds, tok, 128, 128, 64, batch_size=32),
           variant: lambda: predictor.predict_dataset(ds)}
    medians = interleaved(fns, reps)
    print(f"\nAFQMC dev, {len(ds)} real pairs (dynamic lengths, max 128), batch 32, median of {reps} rounds")
    for name, sec in medians.items():
        print(f"  {name:20} {len(ds) / sec:9.1f} pairs/s {medians['eager-fp32'] / sec:8.2f}x")
    return {name: len(ds) / sec for name, sec in medians.items()}


def gate_run(run: str, work: Path, mode: str, per_channel: bool) -> dict:
    out = work / f"gate-{Path(run).name}-{mode}{'-pc' if per_channel else ''}"
    export_model(ExportConfig(model=run, out=str(out), optimize=True, quantize="int8", int8_mode=mode,
                              per_channel=per_channel, check_data="dev", overwrite=True, allow_metric_drop=True))
    return json.loads((out / "mengzi_export.json").read_text())["gates"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["base", "tiny"], choices=list(PRESETS))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5, help="rounds at batch 32 (batch 1 runs 5x as many)")
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--afqmc", type=int, default=0, help="AFQMC dev pairs for the real-text run (0: skip)")
    p.add_argument("--gate-run", default="", help="a `mengzi clue run` folder: INT8 task gates on its dev set")
    p.add_argument("--work", default="runs/bench/export")
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--json", default="", help="write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    rows, extra = [], {}
    for size in args.sizes:
        paths = build(size, work, args.fresh, args.variants)
        rows += bench_size(size, paths, args.threads, args.reps, args.length, args.variants)
        if args.afqmc and size == "base":
            best = max((r for r in rows if r["size"] == size and r["batch"] == 32 and r["variant"] != "eager-fp32"),
                       key=lambda r: r["per_s"])["variant"]
            extra["afqmc"] = bench_afqmc(paths, args.afqmc, args.threads, best, max(1, args.reps // 2))
    if args.gate_run:
        for mode, pc in (("dynamic", False), ("dynamic", True), ("static", False)):
            g = gate_run(args.gate_run, work, mode, pc)["task"]["int8"]
            extra[f"gate-{mode}{'-pc' if pc else ''}"] = g
            print(f"\ntask gate int8 {mode}{' per-channel' if pc else ''} on {args.gate_run}: {g['metric']} pytorch "
                  f"{g['pytorch'][g['metric']]:.2f} onnx {g['onnx'][g['metric']]:.2f} ratio {g['ratio']:.4f} "
                  f"({g['examples']} dev examples) {'passed' if g['passed'] else 'FAILED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, **extra}, indent=1))


if __name__ == "__main__":
    main()
