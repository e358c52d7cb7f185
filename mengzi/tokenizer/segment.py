"""Chinese word segmentation for whole-word masking and POS labels, behind a small pluggable interface.

A segmenter turns text into words (and words with POS tags) whose concatenation is the text itself, so word
boundaries can be aligned to tokenizer offsets: `align_words_to_tokens` gives each token the index of its word,
which is what whole-word masking masks together and what per-token POS labels are read from.

Add a segmenter with `@register_segmenter("name")` on a class with `cut` and `pos`; `get_segmenter("name")`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Protocol

SEGMENTERS: dict[str, Callable[..., Segmenter]] = {}


class Segmenter(Protocol):
    def cut(self, text: str) -> list[str]: ...

    def pos(self, text: str) -> list[tuple[str, str]]: ...


def register_segmenter(name: str):
    def wrap(cls):
        SEGMENTERS[name] = cls
        return cls

    return wrap


def get_segmenter(name: str = "jieba", **kwargs) -> Segmenter:
    if name not in SEGMENTERS:
        raise KeyError(f"unknown segmenter {name!r}; registered: {sorted(SEGMENTERS)}")
    return SEGMENTERS[name](**kwargs)


@register_segmenter("jieba")
class JiebaSegmenter:
    """jieba's precise mode (HMM for unseen words) and its POS tagger (PKU/ICTCLAS tag set: n, v, nr, ns, nt ...).

    Each instance owns its own jieba dictionary, so a user dictionary added here changes no global state.
    """

    def __init__(self, user_dict: str | None = None, hmm: bool = True):
        self.user_dict = user_dict
        self.hmm = hmm

    @cached_property
    def _jieba(self):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        if self.user_dict:
            tokenizer.load_userdict(self.user_dict)
        return tokenizer

    @cached_property
    def _posseg(self):
        import jieba.posseg

        return jieba.posseg.POSTokenizer(self._jieba)

    def cut(self, text: str) -> list[str]:
        return list(self._jieba.cut(text, HMM=self.hmm))

    def pos(self, text: str) -> list[tuple[str, str]]:
        return [(p.word, p.flag) for p in self._posseg.cut(text, HMM=self.hmm)]


@register_segmenter("char")
class CharSegmenter:
    """Every character its own word (turns whole-word masking back into character masking; tag `x`)."""

    def cut(self, text: str) -> list[str]:
        return list(text)

    def pos(self, text: str) -> list[tuple[str, str]]:
        return [(ch, "x") for ch in text]


def word_spans(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """Character [start, end) of each word; words must appear in order (segmenters may drop nothing but spaces)."""
    spans, pos = [], 0
    for w in words:
        start = text.find(w, pos)
        if start < 0:
            raise ValueError(f"word {w!r} not found in text after offset {pos}: {text[:80]!r}")
        spans.append((start, start + len(w)))
        pos = start + len(w)
    return spans


def align_words_to_tokens(spans: Sequence[tuple[int, int]], offsets: Sequence[tuple[int, int]]) -> list[int | None]:
    """For each token (offset pair from the tokenizer) the index of the word holding its first character.

    Special tokens (empty offsets) get None. Tokens of one word share an index, so masking by index masks whole
    words; a token that straddles two words (rare: an English word piece over a segmenter boundary) goes with
    the word where it starts.
    """
    out: list[int | None] = []
    w = 0
    for start, end in offsets:
        if end <= start:
            out.append(None)
            continue
        while w < len(spans) and spans[w][1] <= start:
            w += 1
        out.append(w if w < len(spans) and spans[w][0] <= start else None)
    return out


_SENTENCE_END = re.compile(r"([。！？!?；;…]+[”’」』）)\"']*|\n+)")


def split_sentences(text: str) -> list[str]:
    """Split Chinese text after 。！？；… (keeping closing quotes with their sentence) and at newlines."""
    parts = _SENTENCE_END.split(text)
    out: list[str] = []
    for i in range(0, len(parts), 2):
        sentence = parts[i] + (parts[i + 1] if i + 1 < len(parts) else "")
        if sentence.strip():
            out.append(sentence.rstrip("\n"))
    return out
