"""Tokenizer-layer throughput in characters per second on the shared general corpus.

    python benchmarks/tokenizer_bench.py [--data ../shared/data] [--chars 3000000] [--repeats 3]

Measures, interleaved round-robin in one process (timings drift 15-25% between processes here), median of
`--repeats` rounds:
  wordpiece-fast      mengzi's WordPiece (tokenizers-backed), batch encode with offsets, as Python lists
  wordpiece-backend   the same tokenizer's Rust backend alone (Encoding objects, no conversion to lists)
  wordpiece-python    transformers' pure-Python BertTokenizerLegacy (the baseline the ratio is against)
  t5-fast / spm       the converted SentencePiece tokenizer vs the sentencepiece library on the same model
  jieba               word segmentation (precise mode + HMM)
  normalizer          the pre-training corpus normaliser, every rule on
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def corpus_sample(data: Path, chars: int) -> list[str]:
    from mengzi.textfiles import iter_texts

    files = [data / "corpus/uer_samples", data / "corpus/mnbvc_samples", data / "corpus/thucnews_cnews",
             data / "corpus/weibo_smp2020_ewect/usual/train.tsv"]
    out, total = [], 0
    for text in iter_texts(files):
        for start in range(0, len(text), 2000):  # BERT-length pieces; long documents would dominate otherwise
            out.append(text[start:start + 2000])
            total += len(out[-1])
        if total >= chars:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("DATA", "../shared/data"))
    parser.add_argument("--chars", type=int, default=3_000_000, help="characters of corpus text to process")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = Path(args.data)

    import sentencepiece as spm
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    from mengzi.tokenizer import Normalizer, get_segmenter
    from mengzi.tokenizer.sentencepiece import from_sentencepiece
    from mengzi.tokenizer.wordpiece import wordpiece_tokenizer

    texts = corpus_sample(data, args.chars)
    n_chars = sum(map(len, texts))
    vocab = data / "vocab/google_zh_vocab.txt"
    spiece = data / "vocab/chinese_xlnet_spiece.model"
    fast = wordpiece_tokenizer(vocab)
    fast.model_max_length = 10**9  # measure tokenization, not the over-length warning
    python = BertTokenizerLegacy(vocab_file=str(vocab))
    t5 = from_sentencepiece(spiece, "t5")
    sp = spm.SentencePieceProcessor(model_file=str(spiece))
    seg = get_segmenter("jieba")
    seg.cut("预热")  # dictionary load is start-up, not throughput
    norm = Normalizer()
    norm("預熱")

    def batched(fn, size=256):
        return lambda: [fn(texts[i:i + size]) for i in range(0, len(texts), size)]

    cases = {
        "wordpiece-fast": batched(lambda b: fast(b, return_offsets_mapping=True)),
        "wordpiece-backend": batched(lambda b: fast.backend_tokenizer.encode_batch(b)),  # Rust only, no lists
        "wordpiece-python": lambda: [python.tokenize(t) for t in texts],
        "t5-fast": batched(lambda b: t5(b)),
        "spm": lambda: [sp.encode(t) for t in texts],
        "jieba": lambda: [seg.cut(t) for t in texts],
        "normalizer": lambda: [norm(t) for t in texts],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["wordpiece-python"])
    print(f"{len(texts)} texts, {n_chars:,} characters, {args.repeats} interleaved rounds, {os.cpu_count()} cores")
    print(f"{'case':18} {'median s':>9} {'chars/s':>12} {'vs python WordPiece':>20}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:18} {med:9.2f} {n_chars / med:12,.0f} {base / med:19.1f}x")


if __name__ == "__main__":
    main()
