"""Evidence for Oscar-style captioning and retrieval on the synthetic shape scenes (no real image pixels ship in
the shared data; region features are grid boxes + colour/texture statistics, NOT object-detector features).

Trains the tiny Oscar captioner and the tiny matching head with `oscar_train`, then measures on held-out scenes
(fresh seed, never trained on), each figure beside a baseline from the same run:

* captioning: character ROUGE-L / BLEU / exact match (mengzi.textgen.metrics) of greedy and beam-3 captions, vs
  the untrained model (same initial weights) and vs the trained model with its regions removed (tags only: shows
  how much of the caption, the colours and the relation, comes from the region features);
* retrieval: R@1 / R@5 text->image and image->text over distinct-caption scenes vs chance (1/N, 5/N) and vs the
  untrained head, plus the polluted-tag accuracy (true tags scored above another scene's tags) vs chance 0.5.

    python benchmarks/oscar_synthetic.py --steps 1200 --out runs/bench/oscar_synthetic.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--eval-size", type=int, default=200, help="captioning scenes; retrieval uses 50")
    parser.add_argument("--runs", default="runs/bench/oscar_synthetic")
    parser.add_argument("--out", default="runs/bench/oscar_synthetic.txt")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from mengzi import atomic
    from mengzi.models.load import load
    from mengzi.multimodal.oscar.evaluate import caption_metrics, distinct_captions, retrieval_metrics
    from mengzi.multimodal.oscar.train import OscarTrainConfig, build_model, load_examples, oscar_train

    lines = [f"# python benchmarks/oscar_synthetic.py --steps {args.steps} --train-size {args.train_size} "
             f"--eval-size {args.eval_size}", f"torch threads: {torch.get_num_threads()}"]

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    from mengzi.multimodal.oscar.config import OscarTrain

    common = dict(train_size=args.train_size, overwrite=True,
                  train=OscarTrain(max_steps=args.steps, batch_size=32, micro_batch_size=32, lr=1e-3, seed=0))
    caption_cfg = OscarTrainConfig(task="captioning", eval_size=args.eval_size, mask_prob=0.3, max_masked=20,
                                   out=f"{args.runs}/captioning", **common)
    t0 = time.time()
    run = oscar_train(caption_cfg)
    trained = json.loads((run / "metrics.json").read_text())
    say(f"region features: {trained['region_features']}")
    say(f"captioning: {args.train_size} training scenes, {args.steps} steps x 32, {time.time() - t0:.0f} s "
        f"(train + eval); held-out scenes: {trained['n']}")
    _, held = load_examples(caption_cfg)
    held = held[: args.eval_size]
    model, tokenizer = load(run / "model", task="captioning")
    fresh, _ = build_model(caption_cfg)  # the same seed: the weights training started from
    no_regions = [type(e)(caption=e.caption, tags=e.tags, regions=type(e.regions)(
        feats=e.regions.feats[:0], boxes=e.regions.boxes[:0], source="none"), name=e.name) for e in held]
    rows = [("untrained, greedy", *caption_metrics(fresh, tokenizer, held, caption_cfg.layout)),
            ("trained, greedy", *caption_metrics(model, tokenizer, held, caption_cfg.layout)),
            ("trained, beam 3", *caption_metrics(model, tokenizer, held, caption_cfg.layout, beams=3)),
            ("trained, greedy, regions removed (tags only)",
             *caption_metrics(model, tokenizer, no_regions, caption_cfg.layout))]
    say(f"{'captioning (held-out)':48s} {'ROUGE-L':>8s} {'BLEU':>8s} {'exact':>8s}")
    for name, scores, _ in rows:
        say(f"{name:48s} {scores['rouge-l']:8.3f} {scores['bleu']:8.3f} {scores['exact_match']:8.3f}")
    for example, prediction in zip(held[:4], rows[1][2], strict=False):
        say(f"  reference {example.caption} | greedy {prediction}")

    retrieval_cfg = OscarTrainConfig(task="retrieval", eval_size=50, out=f"{args.runs}/retrieval", **common)
    t0 = time.time()
    run = oscar_train(retrieval_cfg)
    say(f"retrieval: {args.train_size} training scenes, {args.steps} steps x 32 (half negatives: replaced "
        f"caption or polluted tags), {time.time() - t0:.0f} s")
    _, held = load_examples(retrieval_cfg)
    held = distinct_captions(held, retrieval_cfg.eval_size)
    model, tokenizer = load(run / "model", task="retrieval")
    fresh, _ = build_model(retrieval_cfg)
    say(f"{'retrieval (held-out, N=' + str(len(held)) + ')':32s} {'t2i R@1':>8s} {'t2i R@5':>8s} {'i2t R@1':>8s} "
        f"{'i2t R@5':>8s} {'polluted-tag acc':>17s}")
    n = len(held)
    say(f"{'chance':32s} {1 / n:8.3f} {5 / n:8.3f} {1 / n:8.3f} {5 / n:8.3f} {0.5:17.3f}")
    for name, m in (("untrained", fresh), ("trained", model)):
        r = retrieval_metrics(m.eval(), tokenizer, held, retrieval_cfg.layout, seed=0)
        say(f"{name:32s} {r['t2i_r1']:8.3f} {r['t2i_r5']:8.3f} {r['i2t_r1']:8.3f} {r['i2t_r5']:8.3f} "
            f"{r['polluted_tag_accuracy']:17.3f}")
    atomic.write_text(REPO / args.out if not Path(args.out).is_absolute() else args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
