"""Prompt-based and text-to-text CLUE classification with the tiny models pre-trained here, beside the encoder
fine-tuning results of benchmarks/clue_pretraining_gain.py.

    python benchmarks/clue_prompts.py --tasks tnews ocnli afqmc --examples 300 \
        --bert runs/pretrain/mengzi-bert-tiny/model --t5 runs/pretrain/mengzi-t5-tiny/model

Measured in this run, on the first `--examples` dev examples of each task:
- zero-shot accuracy of every template (`mengzi.clue.prompts.TEMPLATES`) for the BERT tiny (cloze) and the T5 tiny
  (sentinel), best and mean over templates;
- few-shot: the BERT PET-tuned on `--bert-shots` examples a class, the T5 with `--t5-shots` in-context
  demonstrations a class;
- the majority-class (the subset's most frequent label) and uniform-random baselines of the same examples;
- a text-to-text fine-tune of the T5 tiny on TNEWS (`--t2t-steps` steps of 16 on `--t2t-train` examples), both
  decodes (constrained label-word scoring and free generation).
Then the encoder fine-tuning tables of runs/bench/clue_gain*.txt are printed unchanged (full dev sets, 8000 training
examples, 3 seeds: not the same examples, so compare orders of magnitude, not decimals). The report goes to stdout
and `--report` (default runs/bench/clue_prompts.txt).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def prompt_run(task: str, model: str, name: str, shots: int, args) -> dict:
    from mengzi.clue.prompts import PromptConfig, clue_prompt

    cfg = PromptConfig(model=model, task=task, shots=shots, max_examples=args.examples, seed=args.seed,
                       max_length=args.max_length, out=str(Path(args.runs) / f"{task}-{name}-{shots}shot"),
                       overwrite=True, threads=1, pet_steps=args.pet_steps)
    started = time.perf_counter()
    out = clue_prompt(cfg)
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    metrics["seconds"] = time.perf_counter() - started
    return metrics


def text2text_run(args) -> dict:
    from mengzi.clue.text2text import Text2TextConfig, clue_text2text

    from mengzi.textgen.config import GenerationOptions, TextGenTrainConfig

    train = TextGenTrainConfig(max_steps=args.t2t_steps, batch_size=16, micro_batch_size=16, lr=1e-3,
                               max_source_len=64, max_target_len=8, max_train_examples=args.t2t_train,
                               max_eval_examples=args.examples, eval_batch_size=32, save_every=0, threads=1)
    cfg = Text2TextConfig(task="tnews", model=args.t5, train=train, generation=GenerationOptions(max_new_tokens=6),
                          predict_test=False, out=str(Path(args.runs) / "tnews-t5-text2text"), overwrite=True)
    started = time.perf_counter()
    out = clue_text2text(cfg)
    metrics = json.loads((out / "metrics.json").read_text("utf-8"))
    metrics["seconds"] = time.perf_counter() - started
    return metrics


def row(m: dict, label: str) -> str:
    per = " ".join(f"{t['accuracy']:5.1f}({t['labels_predicted']:>2})" for t in m["templates"])
    return (f"{m['task']:<7} {label:<20} {m['shots']:>5} {per:<29} {m['best']:6.2f} {m['mean']:6.2f} "
            f"{m['majority_class']:8.2f} {m['uniform_random']:7.2f} {m['seconds']:6.0f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["tnews", "ocnli", "afqmc"])
    p.add_argument("--examples", type=int, default=300, help="dev examples per task (the first N)")
    p.add_argument("--bert", default="runs/pretrain/mengzi-bert-tiny/model")
    p.add_argument("--t5", default="runs/pretrain/mengzi-t5-tiny/model")
    p.add_argument("--bert-shots", type=int, default=8, help="PET: examples a class")
    p.add_argument("--t5-shots", type=int, default=1, help="in-context demonstrations a class")
    p.add_argument("--pet-steps", type=int, default=30)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--t2t-steps", type=int, default=1500)
    p.add_argument("--t2t-train", type=int, default=24000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default="runs/clue-prompts-bench")
    p.add_argument("--report", default="runs/bench/clue_prompts.txt")
    args = p.parse_args(argv)

    import torch
    from mengzi.clue.tasks import TASKS

    from mengzi import atomic

    torch.set_num_threads(1)
    started = time.perf_counter()
    models = [("bert", args.bert, args.bert_shots), ("t5", args.t5, args.t5_shots)]
    lines = ["$ python benchmarks/clue_prompts.py " + " ".join(sys.argv[1:] if argv is None else argv),
             f"dev subset: the first {args.examples} examples of each task; accuracy %, 1 CPU thread", "",
             "per template: accuracy (number of distinct labels it predicted; 1 = a constant answer)", "",
             f"{'task':<7} {'model':<20} {'shots':>5} {'per template':<29} {'best':>6} {'mean':>6} "
             f"{'majority':>8} {'uniform':>7} {'sec':>6}"]
    for task in args.tasks:
        for name, model, k in models:
            if not (Path(model) / "config.json").is_file():
                lines.append(f"{task:<7} {name:<20} skipped: no model at {model}")
                continue
            how = {"bert": "cloze", "t5": "sentinel"}[name]
            lines.append(row(prompt_run(task, model, name, 0, args), f"{name}-tiny {how}"))
            few = {"bert": "PET", "t5": "in-context"}[name]
            lines.append(row(prompt_run(task, model, name, k, args), f"{name}-tiny {few}"))
            print("\n".join(lines[-2:]), flush=True)
    lines.append("")
    if args.t2t_steps and (Path(args.t5) / "config.json").is_file():
        m = text2text_run(args)
        d = m["dev"]
        lines += [f"text-to-text T5 tiny on tnews: {args.t2t_steps} steps of 16 on {m['train_examples']} training "
                  f"examples, template {m['template']!r}, {m['seconds']:.0f} s",
                  f"  dev ({d['examples']} examples): constrained {d['accuracy_constrained']:.2f}, generated "
                  f"{d['accuracy_generated']:.2f} (exact label words {d['exact_words']:.1f}% of generations), "
                  f"majority class {d['majority_class']:.2f}, uniform random {100 / len(TASKS['tnews'].labels):.2f}"]
    lines += ["", "Encoder fine-tuning of the same BERT tiny (benchmarks/clue_pretraining_gain.py; full dev sets, "
              "8000 training examples, 3 seeds):"]
    for name in ("clue_gain.txt", "clue_gain2.txt"):
        path = REPO / "runs" / "bench" / name
        if path.is_file():
            table = [x for x in path.read_text("utf-8").splitlines() if x.strip() and not x.startswith(("done", "Writ"))
                     and "->" not in x]
            lines += [f"--- runs/bench/{name}", *(table or ["(no result table in this file)"])]
    lines += ["", "Tiny models (3M-parameter BERT, 9M-parameter T5, minutes of pre-training) are weak: zero-shot "
              "accuracy near the uniform-random or majority baseline is the expected, honest result; prompts only "
              "become useful with base-size pre-trained models.",
              f"total {time.perf_counter() - started:.0f} s"]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic.write_text(REPO / args.report if not Path(args.report).is_absolute() else args.report, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
