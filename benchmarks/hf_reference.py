"""The reference for fine-tuning accuracy and speed: a plain Hugging Face `Trainer` on a CLUE sentence(-pair) task,
written the way a competent HF user would, reading the official JSON files itself (nothing from mengzi but the
tokenizer folder, which `AutoTokenizer` loads as any BERT folder).

Settings mirror `mengzi clue run` flag for flag: AdamW (eps 1e-8), linear schedule with int(ratio * steps) warmup
steps, weight decay 0.01 off biases and LayerNorm weights (HF's own grouping), clipping at 1.0, dynamic padding,
random sampling, evaluation each epoch; the figure is the best epoch's dev accuracy (mengzi keeps the best model).

    python benchmarks/hf_reference.py --task tnews --model runs/init/bert-tiny --train 8000 --max-len 48 --seed 1
    python benchmarks/hf_reference.py --task ocnli --model M --precision bf16 --sampling group_by_length

Prints one JSON line: task, seed, per-epoch dev accuracy, best, training samples/s (training time only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIELDS = {"tnews": ("sentence", None), "ocnli": ("sentence1", "sentence2"), "afqmc": ("sentence1", "sentence2")}


def read(data: Path, task: str, split: str, limit: int) -> list[dict]:
    """Official files; OCNLI's train file is train.50k.json and its '-' lines (no gold label) are dropped."""
    name = "train.50k.json" if task == "ocnli" and split == "train" else f"{split}.json"
    first, second = FIELDS[task]
    rows = []
    with open(data / "clue" / task / name, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if str(r["label"]) == "-":
                continue
            rows.append({"text": r[first], "text_pair": r[second] if second else None, "label": str(r["label"])})
            if limit and len(rows) >= limit:
                break
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(FIELDS), required=True)
    p.add_argument("--model", required=True, help="a BERT folder (weights + tokenizer)")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--train", type=int, default=8000, help="first N training examples (0: all)")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--max-len", type=int, default=48)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--precision", choices=["no", "bf16"], default="no")
    p.add_argument("--sampling", choices=["random", "group_by_length"], default="random")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import math

    import numpy as np
    import torch
    import transformers
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    data = Path(args.data)
    train, dev = read(data, args.task, "train", args.train), read(data, args.task, "dev", 0)
    labels = sorted({r["label"] for r in train} | {r["label"] for r in dev})
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(rows):
        texts = [r["text"] for r in rows]
        pairs = [r["text_pair"] for r in rows] if rows[0]["text_pair"] is not None else None
        enc = tokenizer(texts, pairs, truncation=True, max_length=args.max_len)
        return Dataset.from_dict({**enc, "labels": [labels.index(r["label"]) for r in rows]})

    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(labels))
    steps = math.ceil(args.epochs * math.ceil(len(train) / args.batch_size))
    accuracies: list[float] = []

    def compute_metrics(prediction):
        accuracies.append(100 * float(np.mean(np.argmax(prediction.predictions, -1) == prediction.label_ids)))
        return {"accuracy": accuracies[-1]}

    import tempfile

    with tempfile.TemporaryDirectory() as out:
        targs = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=128,
            num_train_epochs=args.epochs, learning_rate=args.lr, weight_decay=0.01, adam_epsilon=1e-8,
            max_grad_norm=1.0, lr_scheduler_type="linear", warmup_steps=int(args.warmup_ratio * steps),
            eval_strategy="epoch", save_strategy="no", logging_strategy="no", report_to="none", use_cpu=True,
            bf16=args.precision == "bf16", seed=args.seed, dataloader_num_workers=0, disable_tqdm=True,
            train_sampling_strategy=args.sampling, optim="adamw_torch")
        trainer = Trainer(model=model, args=targs, train_dataset=encode(train), eval_dataset=encode(dev),
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start  # includes the per-epoch evaluations
    print(json.dumps({"runner": "hf_trainer", "task": args.task, "seed": args.seed, "train": len(train),
                      "dev_by_epoch": [round(a, 2) for a in accuracies], "best": round(max(accuracies), 2),
                      "seconds": round(seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
