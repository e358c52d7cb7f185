"""HAIC QA on synthetic stick-figure clips for the tiny Mavors video LM, against chance and a blank-video control.

Train: the tiny `MavorsVideoLM` (VideoLMConfig.tiny reading 64px clips at 32px) learns, on synthetic clips, both to
caption a clip (the HAIC caption without times) and to answer its questions (target = the correct option).
Then, on held-out clips (another seed), two settings:
  1. direct QA: the option with the highest `model.score` given the clip and the question;
  2. caption-only: the model writes a caption, the "schema" answerer parses it and answers from it.
Each is measured with the real frames and with blank (all-zero, black) frames of the same length, so a gain
over the blank control comes from the video, not from priors over the options the model picked up in training;
a seeded random answerer on the same questions gives the chance row, and the "schema" answerer reading the
ground-truth captions gives the ceiling of the caption-only setting.

    python benchmarks/haic_qa.py            # about 11 min on one CPU thread; writes runs/bench/haic_qa.txt
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mengzi.multimodal.haic.benchmark import (  # noqa: E402  (after the sys.path line)
    CAPTION_PROMPT,
    model_captions,
    model_choices,
    video_clips,
)


def build(args):
    from mengzi.multimodal.haic.benchmark import BenchmarkSizes, make_benchmark
    from mengzi.multimodal.haic.synthetic import SyntheticConfig

    synthetic = SyntheticConfig(size=args.size, fps=args.fps, max_people=args.max_people, max_events=args.max_events)
    train = make_benchmark(BenchmarkSizes(args.train_clips, args.train_clips * args.questions_per_clip), seed=1,
                           lang="zh", synthetic=synthetic)
    test = make_benchmark(BenchmarkSizes(args.test_clips, args.test_qa), seed=2, lang="zh", synthetic=synthetic)
    return train, test


def train(model, bench, clips, steps: int, batch_size: int, lr: float, seed: int, caption_share: float) -> list[float]:
    import torch
    from tqdm.auto import tqdm

    from mengzi.multimodal.haic.render import render
    from mengzi.multimodal.video.stages import set_stage

    captions = [(cid, CAPTION_PROMPT, render(c, "zh", times=False)) for cid, c in bench.captions.items()]
    answers = [(q.clip_id, q.text, q.options[q.answer]) for q in bench.questions]
    n_captions = round(caption_share * batch_size)  # a caption has ~10x the tokens of an answer: keep QA in the loss
    set_stage(model, "all")
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    rng, losses = random.Random(seed), []
    bar = tqdm(range(steps), desc="train", mininterval=5)
    for step in bar:
        batch = rng.sample(captions, n_captions) + rng.sample(answers, batch_size - n_captions)
        for group in optimizer.param_groups:  # warm-up then linear decay
            group["lr"] = lr * min(1.0, (step + 1) / 20) * (1 - step / steps)
        loss = model([clips[b[0]] for b in batch], [b[1] for b in batch], [b[2] for b in batch]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    model.eval()
    return losses


def table(rows: dict[str, dict]) -> list[str]:
    from mengzi.multimodal.haic.qa import CATEGORIES

    head = f"{'setting':<34}" + "".join(f"{c:>17}" for c in CATEGORIES) + f"{'overall':>10}"
    lines = [head]
    for name, m in rows.items():
        cells = "".join(f"{m['categories'][c]['accuracy']:>17.3f}" if c in m["categories"] else f"{'-':>17}"
                        for c in CATEGORIES)
        lines.append(f"{name:<34}{cells}{m['overall']['accuracy']:>10.3f}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-clips", type=int, default=200)
    p.add_argument("--questions-per-clip", type=int, default=8)
    p.add_argument("--test-clips", type=int, default=40)
    p.add_argument("--test-qa", type=int, default=250)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--model-size", type=int, default=32, help="the model reads frames resized to this (at 64px the "
                   "tiny model ignored the video within 2000 steps: 16 visual tokens per chunk vs 4)")
    p.add_argument("--fps", type=float, default=2.0, help="clips are drawn and read at this rate")
    p.add_argument("--max-people", type=int, default=2)
    p.add_argument("--max-events", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--caption-share", type=float, default=0.25, help="fraction of each batch that is captions")
    p.add_argument("--max-new-tokens", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench/haic_qa.txt")
    p.add_argument("--save-model", default="", help="also save the trained model here (for `mengzi haic bench --model`)")
    args = p.parse_args()

    import torch

    from mengzi import atomic
    from mengzi.multimodal.haic.answerers import get_answerer
    from mengzi.multimodal.haic.parse import parse
    from mengzi.multimodal.haic.qa import evaluate
    from mengzi.multimodal.haic.render import render
    from mengzi.multimodal.video.config import VideoLMConfig
    from mengzi.multimodal.video.model import MavorsVideoLM

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    began = time.time()
    train_bench, test = build(args)
    config = VideoLMConfig.tiny(image_size=args.model_size or args.size, lm_overrides={
        "hidden_size": 64, "num_heads": 4, "max_position_embeddings": 512, "window_size": 64}, seed=args.seed,
        fps=args.fps)
    model = MavorsVideoLM(config)
    train_clips = video_clips(model, train_bench)
    losses = train(model, train_bench, train_clips, args.steps, args.batch_size, args.lr, args.seed,
                   args.caption_share)
    if args.save_model:
        model.save(args.save_model)
    rows, parsed, scores = {}, {}, {}
    random_pick = get_answerer("random", seed=args.seed)
    rows["chance (random answerer)"] = evaluate(test.questions, [random_pick("", q) for q in test.questions])
    for video in ("video", "blank"):
        clips = video_clips(model, test, blank=video == "blank")
        choices, scores[video] = model_choices(model, clips, test.questions)
        rows[f"direct QA, {video}"] = evaluate(test.questions, choices)
        texts = model_captions(model, clips, "zh", args.max_new_tokens)
        schema = get_answerer("schema", seed=args.seed)
        rows[f"caption-only (schema), {video}"] = evaluate(test.questions, [schema(texts[q.clip_id], q)
                                                                             for q in test.questions])
        readable = [parse(t, "zh", strict=False) for t in texts.values()]
        exact = sum(t == render(test.captions[c], "zh", times=False) for c, t in texts.items())
        parsed[video] = (sum(bool(c.people) for c in readable), exact, next(iter(texts.values())))
    truth = {c: render(cap, "zh", times=False) for c, cap in test.captions.items()}
    schema = get_answerer("schema", seed=args.seed)
    rows["caption-only, ground-truth caption"] = evaluate(test.questions, [schema(truth[q.clip_id], q)
                                                                           for q in test.questions])
    minutes = (time.time() - began) / 60
    lines = [f"HAIC QA on synthetic stick-figure clips: tiny MavorsVideoLM ({sum(p.numel() for p in model.parameters())}"
             f" parameters, {args.size}px clips read at {config.image_size}px, fps {config.fps}, {config.chunk_frames}-frame chunks), 1 CPU thread",
             f"command: python benchmarks/haic_qa.py {' '.join(sys.argv[1:])}",
             f"train: {len(train_bench.captions)} clips (seed 1), {len(train_bench.questions)} QA + one caption each; "
             f"{args.steps} steps x {args.batch_size}; loss {sum(losses[:20]) / len(losses[:20]):.3f} (first 20) -> "
             f"{sum(losses[-20:]) / len(losses[-20:]):.3f} (last 20)",
             f"test: {len(test.captions)} held-out clips (seed 2), {len(test.questions)} questions, 4 options "
             f"(chance 0.25); blank = all-zero frames, same length", ""]
    lines += table(rows)
    lines += [""] + [f"generated captions ({v} frames): {n}/{len(test.captions)} readable, {e} exact; e.g. {ex!r}"
                     for v, (n, e, ex) in parsed.items()]
    counts = {c: r["n"] for c, r in rows["direct QA, video"]["categories"].items()}
    shift = sum(abs(a - b) for sv, sb in zip(scores["video"], scores["blank"], strict=True)
                for a, b in zip(sv, sb, strict=True)) / sum(len(s) for s in scores["video"])
    lines += [f"mean |option log-prob(video) - log-prob(blank)|: {shift:.4f} nats (0: the model ignores the video)",
              f"questions per category: {counts}", f"wall time: {minutes:.1f} min"]
    text = "\n".join(lines) + "\n"
    print(text)
    atomic.write_text(REPO / args.out if not Path(args.out).is_absolute() else args.out, text)


if __name__ == "__main__":
    main()
