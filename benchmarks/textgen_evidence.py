"""Evidence for generative fine-tuning, both halves measured in the same run:

(a) CSL keyword generation: the tiny T5 pre-trained by `recipes/pretrain/mengzi-t5-tiny.yaml` against the same
    architecture randomly initialised, each fine-tuned with the same budget (steps, data, learning rate, seed), then
    greedy-decoded on the same dev abstracts: keyword F1, character ROUGE-1/2/L, BLEU, exact match.
(b) The tiny GPT-Neo (random init: there is no pre-trained tiny GPT-Neo checkpoint) as a causal LM on the four
    classic novels: held-out perplexity (paragraphs held out by hash) before and after fine-tuning.

    python benchmarks/textgen_evidence.py --pretrained runs/pretrain/mengzi-t5-tiny/model
    # -> runs/bench/textgen_evidence.txt (and the run folders under runs/bench/textgen/)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from mengzi import atomic  # noqa: E402
from mengzi.textgen.config import GenerationOptions, TextGenConfig, TextGenData, TextGenTrainConfig  # noqa: E402
from mengzi.textgen.metrics import KEYWORD_METRICS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", default="runs/pretrain/mengzi-t5-tiny/model", help="pre-trained tiny T5")
    parser.add_argument("--steps", type=int, default=200, help="T5 fine-tuning steps (both models)")
    parser.add_argument("--lr", type=float, default=1e-3, help="T5 peak learning rate (both models)")
    parser.add_argument("--train-examples", type=int, default=3000, help="CSL training abstracts used")
    parser.add_argument("--dev-examples", type=int, default=300, help="CSL dev abstracts generated and scored")
    parser.add_argument("--gpt-steps", type=int, default=300, help="GPT-Neo fine-tuning steps")
    parser.add_argument("--work", default="runs/bench/textgen", help="run folders")
    parser.add_argument("--out", default="runs/bench/textgen_evidence.txt")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-t5", action="store_true")
    parser.add_argument("--skip-gpt", action="store_true")
    args = parser.parse_args()

    import torch

    from mengzi.textgen.train import train_textgen

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    lines = [f"# textgen evidence ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {args.threads} thread(s))",
             f"# python benchmarks/textgen_evidence.py --pretrained {args.pretrained} --steps {args.steps} --lr {args.lr:g} "
             f"--train-examples {args.train_examples} --dev-examples {args.dev_examples} --gpt-steps {args.gpt_steps}"]

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    if not args.skip_t5:
        budget = TextGenTrainConfig(max_steps=args.steps, batch_size=16, micro_batch_size=16, lr=args.lr,
                                    warmup_ratio=0.06, max_source_len=128, max_target_len=48,
                                    max_train_examples=args.train_examples, max_eval_examples=args.dev_examples,
                                    eval_batch_size=32, save_every=0, log_every=25, seed=42)
        generation = GenerationOptions(max_new_tokens=48)
        runs = {"pre-trained": TextGenConfig(model=args.pretrained),
                "random init": TextGenConfig(model="mengzi-t5-tiny", from_scratch=True)}
        results = {}
        for name, cfg in runs.items():
            cfg.task, cfg.out, cfg.overwrite = "csl-keywords", str(work / f"csl-t5-{name.replace(' ', '-')}"), True
            cfg.train, cfg.generation = budget, generation
            started = time.perf_counter()
            results[name] = train_textgen(cfg).metrics
            results[name]["seconds"] = time.perf_counter() - started
        say()
        say(f"(a) CSL keyword generation, tiny T5 (2+2 layers, d_model 128), {args.steps} steps x 16 of the first "
            f"{args.train_examples} train abstracts (cut to 128 tokens), lr {args.lr:g}, greedy decoding of {args.dev_examples} "
            "dev abstracts")
        say(f"    pre-trained: {args.pretrained}")
        say(f"{'metric':18} {'pre-trained':>12} {'random init':>12} {'difference':>11} {'ratio':>7}")
        for metric in ("loss",) + KEYWORD_METRICS:
            a, b = results["pre-trained"][metric], results["random init"][metric]
            ratio = f"{a / b:7.2f}" if b else "      -"
            say(f"{metric:18} {a:12.4f} {b:12.4f} {a - b:+11.4f} {ratio}")
        say(f"{'seconds':18} {results['pre-trained']['seconds']:12.0f} {results['random init']['seconds']:12.0f}")
        for name in runs:
            rows = [json.loads(x) for x in (work / f"csl-t5-{name.replace(' ', '-')}" / "predictions.jsonl")
                    .read_text(encoding="utf-8").splitlines()[:2]]
            for r in rows:
                say(f"    {name:12} reference {r['reference']!r} -> prediction {r['prediction']!r}")

    if not args.skip_gpt:
        cfg = TextGenConfig(model="mengzi-gpt-neo-tiny", from_scratch=True, task="corpus",
                            out=str(work / "classics-gpt-neo-tiny"), overwrite=True,
                            dataset=TextGenData(corpus=["data:corpus/classics/*.txt"], eval_fraction=0.02),
                            train=TextGenTrainConfig(max_steps=args.gpt_steps, batch_size=16, micro_batch_size=16,
                                                     lr=2e-3, weight_decay=0.1, warmup_ratio=0.05, schedule="cosine",
                                                     block_size=128, eval_at_start=True, max_eval_examples=0,
                                                     save_every=0, log_every=25, seed=42))
        started = time.perf_counter()
        result = train_textgen(cfg)
        seconds = time.perf_counter() - started
        summary = json.loads((result.out / "metrics.json").read_text(encoding="utf-8"))
        before, after = summary["dev_at_start"]["perplexity"], summary["dev"]["perplexity"]
        say()
        say(f"(b) tiny GPT-Neo (2 layers, d 128; random init: no pre-trained tiny GPT-Neo exists), causal LM on the four "
            f"classic novels, {args.gpt_steps} steps x 16 blocks of 128 tokens, lr 2e-3 cosine")
        say(f"    held-out perplexity (2% of paragraphs, by hash): before {before:.1f} -> after {after:.1f} "
            f"(x{before / after:.1f} lower), {seconds:.0f} s")
    atomic.write_text(args.out, "\n".join(lines) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
