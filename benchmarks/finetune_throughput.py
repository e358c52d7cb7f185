"""Fine-tuning throughput on AFQMC: the mengzi engine (what `mengzi clue run` trains with: length-grouped batches,
dynamic padding) vs Hugging Face `Trainer` padding every pair to 128 tokens (the CLUE baselines' setting).

Same model (a pre-trained checkpoint given by --model), same data, same epochs, lr, batch size and precision.
Runs alternate (mengzi, HF, mengzi, HF, ...) in one process, so machine drift hits both; prints training samples/s
(training time only), the ratio of medians, and each run's dev accuracy.

    python benchmarks/finetune_throughput.py --model runs/pretrain/mengzi-bert-tiny/model --train 16000 \
        --repeats 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def afqmc(data: Path, split: str, n: int) -> list[dict]:
    rows = []
    with open(data / "clue" / "afqmc" / f"{split}.json", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if n and i >= n:
                break
            r = json.loads(line)
            rows.append({"id": i, "text": r["sentence1"], "text_pair": r["sentence2"], "label": int(r["label"])})
    return rows


def run_mengzi(args, train, dev) -> tuple[float, float]:
    from datasets import Dataset

    from mengzi.finetune.config import FinetuneConfig, TrainConfig
    from mengzi.finetune.metrics import metric_for_kind
    from mengzi.finetune.run import finetune
    from mengzi.finetune.trainer import TaskSpec

    metric, main = metric_for_kind("classification")
    with tempfile.TemporaryDirectory() as out:
        cfg = FinetuneConfig(model=args.model, out=out, train=TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, micro_batch_size=args.batch_size, lr=args.lr,
            max_seq_len=128, mixed_precision=args.precision, log_every=10**9, seed=args.seed, warmup_ratio=0.1,
            eval_batch_size=128))
        result = finetune(cfg, TaskSpec("afqmc", "classification", ("0", "1"), metric, main),
                          {"train": Dataset.from_list(train), "dev": Dataset.from_list(dev)})
    return result.metrics["train_samples_per_s"], result.metrics["dev"]["accuracy"]


def run_hf_trainer(args, train, dev) -> tuple[float, float]:
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from mengzi.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.model)
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)

    def encode(rows):
        enc = tokenizer([r["text"] for r in rows], [r["text_pair"] for r in rows], truncation=True, max_length=128,
                        padding="max_length")
        return Dataset.from_dict({**enc, "labels": [r["label"] for r in rows]})

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(output_dir=out, per_device_train_batch_size=args.batch_size,
                                  per_device_eval_batch_size=128, num_train_epochs=args.epochs, learning_rate=args.lr,
                                  warmup_steps=int(0.1 * args.epochs * -(-len(train) // args.batch_size)),
                                  weight_decay=0.01, logging_steps=10**9, save_strategy="no",
                                  report_to=[], use_cpu=True, bf16=args.precision == "bf16", seed=args.seed,
                                  dataloader_num_workers=0, disable_tqdm=True)
        trainer = Trainer(model=model, args=targs, train_dataset=encode(train))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        logits = trainer.predict(encode(dev)).predictions
    accuracy = 100 * float(np.mean(np.argmax(logits, -1) == np.array([r["label"] for r in dev])))
    return len(train) * args.epochs / seconds, accuracy


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(REPO / "runs/pretrain/mengzi-bert-tiny/model"))
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--train", type=int, default=16000, help="training examples (0: all 34,334)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--precision", choices=["no", "bf16"], default="no")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()

    import logging

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("mengzi").setLevel(logging.WARNING)
    train, dev = afqmc(Path(args.data), "train", args.train), afqmc(Path(args.data), "dev", 0)
    results: dict[str, list[tuple[float, float]]] = {"mengzi": [], "hf_trainer": []}
    for r in range(args.repeats):
        for name, fn in (("mengzi", run_mengzi), ("hf_trainer", run_hf_trainer)):
            samples_per_s, accuracy = fn(args, train, dev)
            results[name].append((samples_per_s, accuracy))
            print(f"repeat {r + 1} {name:10} {samples_per_s:8.1f} train samples/s   dev accuracy {accuracy:.2f}",
                  flush=True)
    med = {k: statistics.median(s for s, _ in v) for k, v in results.items()}
    print(f"\nAFQMC, {len(train)} train x {args.epochs} epoch(s), batch {args.batch_size}, {args.precision}, "
          f"{args.threads} threads, {args.model}")
    for k, v in results.items():
        print(f"{k:10} median {med[k]:8.1f} samples/s; dev accuracy {', '.join(f'{a:.2f}' for _, a in v)}")
    print(f"ratio mengzi / HF Trainer (pad 128): {med['mengzi'] / med['hf_trainer']:.2f}x")


if __name__ == "__main__":
    main()
