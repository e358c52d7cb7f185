"""BERT-style WordPiece: the 21128-entry Chinese vocab (or any `vocab.txt`) as a fast tokenizer, and training.

The tokenizer is transformers' own tokenizers-backed `BertTokenizer`, built from the vocab *contents* (in
transformers 5, `BertTokenizer(vocab_file=...)` silently ignores the file and yields a 5-token vocab). Its ids
match the pure-Python reference (`BertTokenizerLegacy`) and its offsets map back into the raw text; both are
tested on real CLUE and corpus lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from transformers import BertTokenizer

from .. import atomic

BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """`vocab.txt` as {token: id}, one token a line, the way BERT reads it. Duplicates are an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocab file not found: {path}")
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for index, line in enumerate(f):
            token = line.rstrip("\n")
            if token in vocab:
                raise ValueError(f"{path}:{index + 1}: token {token!r} repeats line {vocab[token] + 1}")
            vocab[token] = index
    if not vocab:
        raise ValueError(f"{path}: the vocab file is empty")
    missing = [t for t in BERT_SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"{path}: missing BERT special tokens {missing}")
    return vocab


def wordpiece_tokenizer(vocab: str | os.PathLike | dict[str, int], do_lower_case: bool = True,
                        model_max_length: int = 512) -> BertTokenizer:
    """A fast BERT tokenizer over `vocab` (a `vocab.txt` path or a {token: id} dict)."""
    vocab_dict = vocab if isinstance(vocab, dict) else read_vocab(vocab)
    return BertTokenizer(vocab=dict(vocab_dict), do_lower_case=do_lower_case, model_max_length=model_max_length)


def save_wordpiece(tokenizer: BertTokenizer, out_dir: str | os.PathLike) -> Path:
    """Save a loadable folder: tokenizer.json + tokenizer_config.json (AutoTokenizer) and vocab.txt (everything
    else, including BertTokenizerLegacy and Langboat-style loaders)."""
    out = Path(out_dir)
    tokenizer.save_pretrained(out)
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("vocab ids are not contiguous; cannot write vocab.txt")
    atomic.write_text(out / "vocab.txt", "".join(t + "\n" for t, _ in by_id))
    return out


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, do_lower_case: bool = True,
                    limit_alphabet: int = 20_000, show_progress: bool = True) -> BertTokenizer:
    """Train a domain WordPiece vocab with the `tokenizers` library (BERT normaliser and pre-tokeniser, so each CJK
    character stands alone as in the Google vocab). Special tokens come first: [PAD]=0 ... [MASK]=4."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, trainers
    from tokenizers.models import WordPiece

    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=do_lower_case)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=BERT_SPECIAL_TOKENS, limit_alphabet=limit_alphabet,
                                        continuing_subword_prefix="##", show_progress=show_progress)
    tok.train_from_iterator(texts, trainer=trainer)
    return wordpiece_tokenizer(tok.get_vocab(), do_lower_case=do_lower_case)
