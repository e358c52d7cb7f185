"""Peak memory of the streaming pre-training corpus: does it grow with the corpus? (1x vs 10x the same text)

    python benchmarks/stream_memory.py [--data ../shared/data] [--scale 10] [--segmenter char] [--modes stream,cached]

One epoch of `streaming_split(CorpusConfig(stream=True, sources=[...]), "train", packer, seed=0)` is iterated to
the end, every packed example touched, for a 1x corpus and for the same file listed `--scale` times as that many
sources (no data is copied). The 1x corpus is `--file`, a file or glob (default: the four classic novels,
corpus/classics/*.txt, 8.9 MB, one paragraph a line: 30k examples, more than the shuffle buffer holds);
the packer is `SegmentPairPacker(tokenizer, 128, segmenter=--segmenter)` with the mengzi-bert-tiny WordPiece
tokenizer and no POS/NE tags; `--segmenter char` (default) keeps the 10x run short, `jieba` adds word starts for
whole-word masking. The shuffle buffer is `--shuffle-buffer` examples (CorpusConfig's default 10,000): the 1x
corpus should pack to more examples than that, or the 1x run never fills its buffer and the comparison shows the
buffer filling up, not growth with the corpus.

Each measurement runs in a fresh subprocess (one tokenizer thread) and reports the peak RSS of the whole process
(`getrusage(RUSAGE_SELF).ru_maxrss`), the RSS before iterating (interpreter, tokenizer, segmenter) and the highest
VmRSS sampled from /proc/self/status every `--sample-every` examples during the epoch (and its value a quarter,
half, three quarters of the way through). `--modes stream,cached` adds the cached (non-streaming) mode for
contrast: Arrow cache built in a temp dir (its seconds include the build), then one epoch iterated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = "corpus/classics/*.txt"  # the four classic novels, one paragraph a line


def vm_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args) -> None:
    """One measurement: build the corpus of `args.scale` copies, iterate one epoch, print a JSON line."""
    from mengzi.data import resolve
    from mengzi.models.presets import get_preset
    from mengzi.pretrain.corpus import CorpusConfig, cached_split, streaming_split
    from mengzi.pretrain.packing import SegmentPairPacker
    from mengzi.textfiles import Source
    from mengzi.tokenizer import load_tokenizer

    path = str(args.data / args.file)
    tokenizer = load_tokenizer(resolve(get_preset("mengzi-bert-tiny").tokenizer, args.data))
    packer = SegmentPairPacker(tokenizer, args.max_seq_len, seed=0, segmenter=args.segmenter)
    packer({"text": ["预热。"]}, [0])  # load the segmenter's dictionary before the baseline
    cfg = CorpusConfig(sources=[Source(path=path) for _ in range(args.scale)], stream=args.mode == "stream",
                       shuffle_buffer=args.shuffle_buffer, cache_dir=args.cache_dir)
    before = vm_rss_mb()
    start = time.perf_counter()
    if args.mode == "stream":
        dataset, stats = streaming_split(cfg, "train", packer, seed=0)
        dataset.set_epoch(0)
    else:
        dataset, stats = cached_split(cfg, "train", packer)
    examples = tokens = 0
    samples = [vm_rss_mb()]
    for example in dataset:
        examples += 1
        tokens += len(example["input_ids"])
        if examples % args.sample_every == 0:
            samples.append(vm_rss_mb())
    samples.append(vm_rss_mb())
    quarters = [samples[min(len(samples) - 1, round(q * (len(samples) - 1) / 4))] for q in (1, 2, 3, 4)]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"examples": examples, "tokens": tokens, "documents": stats.documents, "files": stats.files,
                      "chars": stats.chars, "seconds": seconds, "rss_before_mb": before, "rss_sampled_mb": max(samples),
                      "rss_quarters_mb": quarters,
                      "peak_mb": peak}))


def measure(args, mode: str, scale: int, cache_dir: str) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               TOKENIZERS_PARALLELISM="false", HF_DATASETS_DISABLE_PROGRESS_BARS="1")
    cmd = [sys.executable, __file__, "--child", "--mode", mode, "--scale", str(scale), "--data", str(args.data),
           "--file", args.file, "--segmenter", args.segmenter, "--max-seq-len", str(args.max_seq_len),
           "--shuffle-buffer", str(args.shuffle_buffer), "--sample-every", str(args.sample_every),
           "--cache-dir", cache_dir]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"measurement {mode} x{scale} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DATA") or REPO.parent / "shared" / "data"))
    parser.add_argument("--file", default=DEFAULT_FILE, help="the 1x corpus: file or glob under --data, a doc a line")
    parser.add_argument("--scale", type=int, default=10, help="the large corpus: the file listed this many times")
    parser.add_argument("--segmenter", default="char", help="word starts from: char (fast) or jieba")
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    parser.add_argument("--sample-every", type=int, default=500, help="examples between VmRSS samples")
    parser.add_argument("--threads", type=int, default=1, help="tokenizer (Rayon) threads in the subprocesses")
    parser.add_argument("--modes", default="stream", help="comma-separated: stream, cached (non-streaming, for contrast)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.scale = max(1, args.scale)
        child(args)
        return
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    from mengzi.textfiles import expand

    files = expand([args.data / args.file])
    print(f"1x = {args.file} ({len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB); {args.scale}x "
          f"= the same as {args.scale} sources; SegmentPairPacker(max_seq_len {args.max_seq_len}, segmenter "
          f"{args.segmenter!r}, no tags); shuffle buffer {args.shuffle_buffer:,}; each run a fresh subprocess, "
          f"{args.threads} tokenizer thread(s)", flush=True)
    print(f"{'mode':7} {'corpus':>6} {'documents':>10} {'examples':>9} {'seconds':>8} {'RSS before':>11} "
          f"{'RSS at 1/4, 1/2, 3/4, end of epoch':>35} {'sampled max':>12} {'peak RSS':>9}   (MB)", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="mengzi-stream-memory-") as tmp:
        runs = [(mode, scale) for mode in args.modes.split(",") for scale in (1, args.scale)]
        for mode, scale in runs:
            r = measure(args, mode, scale, tmp)
            results[mode, scale] = r
            print(f"{mode:7} {f'{scale}x':>6} {r['documents']:10,} {r['examples']:9,} {r['seconds']:8.1f} "
                  f"{r['rss_before_mb']:11.0f} {', '.join(f'{q:.0f}' for q in r['rss_quarters_mb']):>35} "
                  f"{r['rss_sampled_mb']:12.0f} {r['peak_mb']:9.0f}", flush=True)
    for mode in ("stream", "cached"):
        if (mode, 1) in results:
            small, large = results[mode, 1], results[mode, args.scale]
            grow = lambda r: r["peak_mb"] - r["rss_before_mb"]  # noqa: E731
            print(f"{mode}: peak RSS {args.scale}x/1x = {large['peak_mb'] / small['peak_mb']:.2f} "
                  f"(peak - RSS before: {grow(small):.0f} MB at 1x, {grow(large):.0f} MB at {args.scale}x)")


if __name__ == "__main__":
    main()
