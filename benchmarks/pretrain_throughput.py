"""Pre-training throughput: mengzi's `pretrain` loop vs the HF `Trainer` baseline, non-padding tokens per second.

    python benchmarks/pretrain_throughput.py [--data ../shared/data] [--threads 1] [--steps 20] [--repeats 2]

(HF's step is ~5 s on one thread: its MLM head computes 21128-way logits at all 64 x 128 positions, so 20 timed
steps x 2 runs per side keeps the whole benchmark near 5 minutes; pass --steps 60 where there is time.)

Both sides train the `mengzi-bert-tiny` preset from the same random init (seed 0) with masked-LM only, on the same
documents, with the same max_seq_len, batch size, optimizer (torch AdamW), lr schedule and thread count:

  ours  `mengzi.pretrain.trainer.pretrain(cfg)` with objectives {mlm: {whole_word: true}}: document-aware
        segment-pair packing (jieba word starts for whole-word masking), cached corpus, dynamic padding to the
        longest example of a batch, MLM head on the masked positions only.
  hf    `transformers.Trainer` + `BertForMaskedLM` (`init_model(..., task="masked-lm")`) +
        `DataCollatorForLanguageModeling(mlm_probability=0.15)`, one document per example truncated to max_seq_len
        and padded to max_length (no packing), the run_mlm.py way.

Data: the first `--docs` Weibo posts (corpus/weibo_smp2020_ewect/usual/train.tsv, column text_a; short) interleaved
one for one with the first `--docs` CLUECorpusSmall documents (corpus/uer_samples/CLUECorpusSmall_sampled.txt, one
a line; long), written to a temp file that is our run's only source; the HF side tokenizes exactly the documents
our corpus reader yields (normalised; 8 Weibo dev posts are the eval source, so no document is held out).

Timing excludes tokenization, segmentation and packing on both sides (ours: the corpus cache is built before the
loop's clock starts; HF: the dataset is tokenized before `Trainer.train`), and the first `--warmup` steps. It
includes everything per step: fetching examples, collating, masking, forward, backward, clipping, optimizer step.
  ours  the run's metrics.jsonl windows (log_every = warmup) after the first: non-padding tokens = the rows'
        `tokens_seen` difference, seconds = tokens / `tokens_per_s`; checkpoint writing is outside the windows.
  hf    a callback's clock from the end of the last warmup step to the end of the last step; non-padding tokens =
        attention_mask sums of the batches the collator produced for those steps (recorded in call order).
Padding (total tokens/s, padding share) of ours is replayed from the run's batch order (same seed), and its
non-padding count is checked against the run's own `tokens_seen`.

Sides alternate (ours, hf, ours, hf, ...) in one process: timings drift 15-25% between processes here.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
WEIBO = "corpus/weibo_smp2020_ewect/usual/train.tsv"
CLUE = "corpus/uer_samples/CLUECorpusSmall_sampled.txt"


def mixed_documents(data: Path, n: int, out: Path) -> Path:
    """The first `n` Weibo posts interleaved with the first `n` CLUECorpusSmall documents, one a line."""
    from mengzi.textfiles import ReadStats, Source, iter_file

    weibo = iter_file(data / WEIBO, Source(path=str(data / WEIBO), column="text_a"), ReadStats())
    clue = iter_file(data / CLUE, Source(path=str(data / CLUE)), ReadStats())
    lines = []
    for _ in range(n):
        for it in (weibo, clue):
            text = next(it, None)
            if text is not None:
                lines.append(text.replace("\n", " "))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # a few held-out posts as eval_sources, so no training document is held out (and the eval split is not
    # empty: cached_split fails on an empty split)
    dev = data / WEIBO.replace("train.tsv", "dev.tsv")
    held = [t for t, _ in zip(iter_file(dev, Source(path=str(dev), column="text_a"), ReadStats()), range(8))]
    out.with_name("eval.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
    return out


def our_config(args, source: Path, out: Path, cache: Path):
    from mengzi.config import from_dict
    from mengzi.pretrain.config import PretrainConfig

    return from_dict(PretrainConfig, {
        "out": str(out),
        "model": {"preset": "mengzi-bert-tiny"},
        "objectives": {"mlm": {"whole_word": True}},
        "corpus": {"sources": [{"path": str(source)}], "eval_sources": [{"path": str(source.with_name("eval.txt"))}],
                   "cache_dir": str(cache)},
        "packing": {"max_seq_len": args.max_seq_len},
        "train": {"max_steps": args.warmup + args.steps, "batch_size": args.batch_size,
                  "micro_batch_size": args.batch_size, "lr": args.lr, "warmup_steps": args.warmup,
                  "log_every": args.warmup, "eval_every": 0, "eval_batches": 0,
                  "save_every": 10 * (args.warmup + args.steps), "threads": args.threads, "seed": 0,
                  "mixed_precision": "no"},
        "data": str(args.data),
    })


def run_ours(args, source: Path, tmp: Path, cache: Path, index: int) -> dict:
    from mengzi.pretrain.trainer import pretrain

    out = tmp / f"ours-{index}"
    cfg = our_config(args, source, out, cache)
    pretrain(cfg)
    rows = [r for r in map(json.loads, (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines())
            if r.get("split") == "train"]
    first = rows[0]
    if first["step"] != args.warmup:
        raise RuntimeError(f"first log window ends at step {first['step']}, expected {args.warmup}")
    seconds = sum((r["tokens_seen"] - prev["tokens_seen"]) / r["tokens_per_s"] for prev, r in zip(rows, rows[1:]))
    tokens = rows[-1]["tokens_seen"] - first["tokens_seen"]
    steps = rows[-1]["step"] - first["step"]
    summary = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"seconds": seconds, "steps": steps, "examples": steps * args.batch_size, "real_tokens": tokens,
            "run_tokens_seen": summary["tokens_seen"], "train_seconds_all": summary["train_seconds"]}


def our_padding(args, source: Path, tmp: Path, cache: Path) -> dict:
    """Replay the run's batch order: per timed step, real tokens and the padded width (longest example)."""
    from mengzi.models.presets import get_preset
    from mengzi.pretrain.batches import StepBatches, example_order
    from mengzi.pretrain.corpus import cached_split
    from mengzi.pretrain.model import build_objectives
    from mengzi.pretrain.trainer import build_model, build_packer

    cfg = our_config(args, source, tmp / "replay", cache)
    model, tokenizer, family, _ = build_model(cfg)
    assert family == get_preset(cfg.model.preset).family
    objectives = build_objectives(cfg.objectives, tokenizer, model.config, family)
    packer = build_packer(family, tokenizer, objectives, cfg)
    train, _ = cached_split(cfg.corpus, "train", packer, cfg.data)
    batches = StepBatches(example_order(train, False, cfg.train.seed), args.batch_size, args.batch_size, 0, 1)
    real = padded = all_real = 0
    for step in range(1, args.warmup + args.steps + 1):
        lengths = [len(e["input_ids"]) for micro in batches.next_step() for e in micro]
        all_real += sum(lengths)
        if step > args.warmup:
            real += sum(lengths)
            padded += len(lengths) * max(lengths)
    return {"examples_in_corpus": len(train), "real": real, "padded": padded, "all_real": all_real}


class _Recorder:
    """Wraps the HF collator: attention_mask sums of every batch it builds, in call order."""

    def __init__(self, collator):
        self.collator, self.tokens, self.shapes = collator, [], []

    def __call__(self, features):
        batch = self.collator(features)
        self.tokens.append(int(batch["attention_mask"].sum()))
        self.shapes.append(tuple(batch["input_ids"].shape))
        return batch


def hf_dataset(args, texts: list[str], tokenizer):
    import datasets

    enc = tokenizer(texts, truncation=True, max_length=args.max_seq_len, padding="max_length")
    return datasets.Dataset.from_dict({k: enc[k] for k in ("input_ids", "token_type_ids", "attention_mask")})


def run_hf(args, dataset, tmp: Path, index: int) -> dict:
    import torch
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from mengzi.models.load import init_model

    torch.set_num_threads(args.threads)
    model, tokenizer = init_model("mengzi-bert-tiny", task="masked-lm", seed=0, data=args.data)
    recorder = _Recorder(DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15))
    clock: list[float] = []
    threads: list[int] = []

    class Clock(TrainerCallback):
        def on_step_end(self, targs, state, control, **kw):
            clock.append(time.perf_counter())
            threads.append(torch.get_num_threads())

    targs = TrainingArguments(
        output_dir=str(tmp / f"hf-{index}"), use_cpu=True, report_to="none", save_strategy="no",
        logging_strategy="no", eval_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
        dataloader_drop_last=True, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
        max_steps=args.warmup + args.steps, learning_rate=args.lr, warmup_steps=args.warmup,
        lr_scheduler_type="linear", weight_decay=0.01, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-6,
        max_grad_norm=1.0, optim=args.hf_optim, seed=0, bf16=False, fp16=False)
    trainer = Trainer(model=model, args=targs, train_dataset=dataset, data_collator=recorder, callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)  # disable_tqdm=True prints the final train metrics otherwise
    trainer.train()
    if len(clock) != args.warmup + args.steps:
        raise RuntimeError(f"HF ran {len(clock)} steps, expected {args.warmup + args.steps}")
    if set(threads) != {args.threads}:
        raise RuntimeError(f"torch threads during HF training: {sorted(set(threads))}")
    timed = slice(args.warmup, args.warmup + args.steps)  # batch i is consumed by step i + 1
    shapes = recorder.shapes[timed]
    return {"seconds": clock[-1] - clock[args.warmup - 1], "steps": args.steps,
            "examples": sum(s[0] for s in shapes), "real_tokens": sum(recorder.tokens[timed]),
            "padded_tokens": sum(s[0] * s[1] for s in shapes)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DATA") or REPO.parent / "shared" / "data"))
    parser.add_argument("--docs", type=int, default=1000, help="documents from each of Weibo and CLUECorpusSmall")
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run (HF: ~5 s a step on 1 thread)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (also our log window)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, alternating")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (torch.set_num_threads)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hf-optim", default="adamw_torch",
                        help="HF optim (default adamw_torch: torch.optim.AdamW, as ours; HF's own default is "
                             "adamw_torch_fused)")
    args = parser.parse_args(argv)
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)

    import logging

    import torch
    import transformers

    from mengzi.models.load import init_model
    from mengzi.pretrain.corpus import Documents

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    logging.getLogger("mengzi").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="mengzi-throughput-") as name:
        tmp = Path(name)
        cache = tmp / "corpus-cache"
        source = mixed_documents(args.data, args.docs, tmp / "mixed.txt")
        cfg = our_config(args, source, tmp / "unused", cache)
        texts = list(Documents(cfg.corpus, "train", cfg.data).iter())
        _, tokenizer = init_model("mengzi-bert-tiny", task="masked-lm", seed=0, data=args.data)
        dataset = hf_dataset(args, texts, tokenizer)
        start = time.perf_counter()
        padding = our_padding(args, source, tmp, cache)  # builds our corpus cache: not timed
        print(f"corpus: {len(texts)} train documents ({sum(map(len, texts)):,} chars) = first {args.docs} Weibo "
              f"posts ({WEIBO}, text_a) interleaved with first {args.docs} CLUECorpusSmall docs ({CLUE}); "
              f"our corpus cache built in {time.perf_counter() - start:.0f} s (untimed)", flush=True)
        print(f"ours: {padding['examples_in_corpus']} packed examples; HF: {len(dataset)} examples (1 per document, "
              f"truncated + padded to {args.max_seq_len})", flush=True)
        print(f"mengzi-bert-tiny, MLM only, max_seq_len {args.max_seq_len}, batch {args.batch_size}, "
              f"{args.warmup} warmup + {args.steps} timed steps per run, {args.threads} torch thread(s), "
              f"{args.repeats} runs per side alternating, fp32 CPU, torch {torch.__version__}, "
              f"transformers {transformers.__version__}, HF optim {args.hf_optim}, {os.cpu_count()} cores",
              flush=True)

        results: dict[str, list[dict]] = {"ours": [], "hf": []}
        for r in range(args.repeats):
            for side in ("ours", "hf"):
                res = run_ours(args, source, tmp, cache, r) if side == "ours" else run_hf(args, dataset, tmp, r)
                if side == "ours":
                    if (res["real_tokens"], res["run_tokens_seen"]) != (padding["real"], padding["all_real"]):
                        print(f"WARNING: run tokens {res['real_tokens']}/{res['run_tokens_seen']} != replayed "
                              f"{padding['real']}/{padding['all_real']}")
                    res["padded_tokens"] = padding["padded"]
                results[side].append(res)
                print(f"  run {r + 1} {side:4}: {res['seconds']:6.2f} s, {res['real_tokens'] / res['seconds']:9,.0f} "
                      f"non-padding tokens/s", flush=True)

        print("\nmedians over runs of each figure; padding = share of the batches' positions that are padding")
        print(f"{'side':5} {'median s':>9} {'examples/s':>11} {'tokens/s':>10} {'non-pad tok/s':>14} "
              f"{'padding':>8}")
        medians = {}
        for side, runs in results.items():
            rate = {key: statistics.median(r[key] / r["seconds"] for r in runs)
                    for key in ("examples", "padded_tokens", "real_tokens")}
            medians[side] = rate["real_tokens"]
            padding_share = 1 - sum(r["real_tokens"] for r in runs) / sum(r["padded_tokens"] for r in runs)
            print(f"{side:5} {statistics.median(r['seconds'] for r in runs):9.2f} {rate['examples']:11.1f} "
                  f"{rate['padded_tokens']:10,.0f} {rate['real_tokens']:14,.0f} {padding_share:8.1%}")
        print(f"ratio ours/hf (non-padding tokens/s, medians): {medians['ours'] / medians['hf']:.2f}x "
              "(target >= 1.5x)")


if __name__ == "__main__":
    main()
