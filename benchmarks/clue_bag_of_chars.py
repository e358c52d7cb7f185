"""The floor any CLUE model must clear: bag-of-characters logistic regression on the classification tasks.

Features: character counts of `text` and, in a separate block, of `text_pair` (log(1 + count)); a linear softmax
model trained with Adam and L2 (an EmbeddingBag is exactly a linear model over sparse counts). Also printed: the
majority-class accuracy. Same loaders and dev sets as `mengzi clue run`.

    python benchmarks/clue_bag_of_chars.py --tasks afqmc tnews iflytek ocnli csl cluewsc2020
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FILES = {"iflytek": {"train": "data:fewclue/iflytek/train_few_all.json", "dev": "data:fewclue/iflytek/dev_few_all.json"}}


def featurize(rows, vocab: dict[str, int], grow: bool):
    import torch

    indices, offsets, weights = [], [], []
    for text, pair in rows:
        offsets.append(len(indices))
        for block, s in ((0, text), (1, pair)):
            for ch, n in Counter(s).items():
                key = f"{block}{ch}"
                if key not in vocab:
                    if not grow:
                        continue
                    vocab[key] = len(vocab)
                indices.append(vocab[key])
                weights.append(math.log1p(n))
    return torch.tensor(indices), torch.tensor(offsets), torch.tensor(weights)


def run_task(task: str, args) -> tuple[float, float, int, int]:
    import torch
    from mengzi.clue.tasks import get_task, load_task

    from mengzi.data import resolve

    files = {k: str(resolve(v)) for k, v in FILES.get(task, {}).items()}
    train = load_task(task, "train", resolve("data:clue"), files)
    dev = load_task(task, "dev", resolve("data:clue"), files)
    n_labels = len(get_task(task).labels)
    vocab: dict[str, int] = {}
    xi, xo, xw = featurize(zip(train["text"], train["text_pair"]), vocab, grow=True)
    di, do, dw = featurize(zip(dev["text"], dev["text_pair"]), vocab, grow=False)
    y, dy = torch.tensor(train["label"]), torch.tensor(dev["label"])
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(len(vocab), n_labels, mode="sum")
    torch.nn.init.zeros_(bag.weight)
    bias = torch.nn.Parameter(torch.zeros(n_labels))
    opt = torch.optim.Adam([*bag.parameters(), bias], lr=args.lr)
    n = len(y)
    best = 0.0
    for _ in range(args.epochs):
        order = torch.randperm(n)
        for start in range(0, n, 256):
            batch = order[start : start + 256].tolist()
            idx = torch.cat([xi[xo[i] : (xo[i + 1] if i + 1 < n else len(xi))] for i in batch])
            w = torch.cat([xw[xo[i] : (xo[i + 1] if i + 1 < n else len(xw))] for i in batch])
            lens = torch.tensor([(xo[i + 1] if i + 1 < n else len(xi)) - xo[i] for i in batch])
            offs = torch.cat([torch.zeros(1, dtype=torch.long), lens.cumsum(0)[:-1]])
            logits = bag(idx, offs, per_sample_weights=w) + bias
            loss = torch.nn.functional.cross_entropy(logits, y[batch]) + args.l2 * bag.weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():  # the floor reports its best epoch on dev, as the fine-tuned runs do
            accuracy = float(((bag(di, do, per_sample_weights=dw) + bias).argmax(-1) == dy).float().mean()) * 100
        best = max(best, accuracy)
    majority = Counter(train["label"]).most_common(1)[0][0]
    return best, float((dy == majority).float().mean()) * 100, len(train), len(dev)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["afqmc", "tnews", "iflytek", "ocnli", "csl", "cluewsc2020"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--l2", type=float, default=1e-6)
    args = p.parse_args()
    print(f"{'task':12} {'train':>6} {'dev':>6} {'bag-of-chars LR':>16} {'majority':>9}")
    for task in args.tasks:
        accuracy, majority, n_train, n_dev = run_task(task, args)
        print(f"{task:12} {n_train:6d} {n_dev:6d} {accuracy:16.2f} {majority:9.2f}", flush=True)


if __name__ == "__main__":
    main()
