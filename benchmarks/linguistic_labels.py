"""How well do jieba-derived linguistic-injection labels agree with human annotation?

    python benchmarks/linguistic_labels.py [--data ../shared/data] [--limit 2000] [--segmenter jieba]

Prints, for the first `--limit` texts of each corpus:
  pos   coarse POS (first letter of the PKU flag) per character vs People's Daily 1998-01
        (ner/pos_peoples_daily_199801/199801.txt, one line = one paragraph): character accuracy, per-tag counts
  ner   PER/LOC/ORG BIO from jieba's nr/ns/nt vs MSRA NER dev (ner/msra_uer/dev.tsv): entity-level exact-span
        precision/recall/F1 and character accuracy, per type
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
POS_FILE = "ner/pos_peoples_daily_199801/199801.txt"
NER_FILE = "ner/msra_uer/dev.tsv"


def show(title: str, result: dict, seconds: float) -> None:
    print(f"\n== {title}: {result['texts']} texts, {result['chars']} chars, {seconds:.1f} s")
    print(f"char accuracy {result['char_accuracy']:.4f}")
    if "f1" in result:
        print(f"entities (exact span): P {result['precision']:.4f}  R {result['recall']:.4f}  F1 {result['f1']:.4f}")
        print(f"{'type':<6}{'gold':>7}{'pred':>7}{'correct':>9}{'P':>8}{'R':>8}{'F1':>8}")
        for kind, c in result["per_type"].items():
            print(f"{kind:<6}{c['gold']:>7}{c['pred']:>7}{c['correct']:>9}"
                  f"{c['precision']:>8.3f}{c['recall']:>8.3f}{c['f1']:>8.3f}")  # fmt: skip
    print(f"{'tag':<6}{'gold':>8}{'pred':>8}{'correct':>9}{'recall':>8}{'prec':>8}   (characters)")
    for tag, c in result["per_tag"].items():
        recall = c["correct"] / c["gold"] if c["gold"] else float("nan")
        precision = c["correct"] / c["pred"] if c["pred"] else float("nan")
        print(f"{tag:<6}{c['gold']:>8}{c['pred']:>8}{c['correct']:>9}{recall:>8.3f}{precision:>8.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DATA") or REPO.parent / "shared" / "data"))
    parser.add_argument("--limit", type=int, default=2000, help="texts per corpus (default 2000)")
    parser.add_argument("--segmenter", default="jieba")
    args = parser.parse_args(argv)
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))

    from mengzi.pretrain.linguistic import agreement, read_ner_bio, read_peoples_daily_pos
    from mengzi.tokenizer.segment import get_segmenter

    segmenter = get_segmenter(args.segmenter)
    segmenter.pos("预热")  # load the dictionary outside the timings
    for title, scheme, reader, rel in (
        (f"pos vs People's Daily 1998-01 ({POS_FILE})", "pos", read_peoples_daily_pos, POS_FILE),
        (f"ner vs MSRA NER dev ({NER_FILE})", "ner", read_ner_bio, NER_FILE),
    ):
        start = time.perf_counter()
        result = agreement(scheme, reader(args.data / rel, limit=args.limit), segmenter)
        show(title, result, time.perf_counter() - start)


if __name__ == "__main__":
    main()
