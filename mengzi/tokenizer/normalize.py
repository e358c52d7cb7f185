"""Corpus normaliser: cleans raw web/news text before pre-training.

Each rule is a switch. The defaults are the pre-training choices; fine-tuning uses `NormalizerConfig.off()`
because CLUE predictions must be made on the text exactly as given (CMRC2018 answers are character offsets).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, fields
from functools import cached_property

from ..config import option

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>|<!--.*?-->", re.S)
_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s\u3000-\u303f\uff01-\uff5e<>\"']+", re.I)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
# full-width ASCII variants U+FF01..U+FF5E sit exactly 0xFEE0 above their ASCII forms; U+3000 is the ideographic space
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


@dataclass
class NormalizerConfig:
    """Which cleaning rules run, in the order listed."""

    strip_html: bool = option(True, "unescape HTML entities and drop tags/comments")
    strip_urls: bool = option(True, "drop http(s)/ftp/www URLs")
    strip_emails: bool = option(True, "drop e-mail addresses")
    strip_control: bool = option(True, "drop control and format characters (zero-width etc.), keep tab/newline")
    fullwidth_to_halfwidth: bool = option(True, "full-width ASCII (Ａ１，) and U+3000 to half-width")
    traditional_to_simplified: bool = option(True, "traditional to simplified Chinese with OpenCC t2s")
    collapse_whitespace: bool = option(True, "runs of spaces/tabs to one space; trim each line")

    @classmethod
    def off(cls) -> NormalizerConfig:
        """Every rule disabled (the fine-tuning default)."""
        return cls(**{f.name: False for f in fields(cls)})


class Normalizer:
    """`Normalizer(config)(text) -> text`; stateless apart from the lazily built OpenCC converter."""

    def __init__(self, config: NormalizerConfig | None = None):
        self.config = config or NormalizerConfig()

    def __getstate__(self):  # datasets hashes and pickles readers holding a normaliser; OpenCC cannot be pickled
        return {k: v for k, v in self.__dict__.items() if k != "_t2s"}

    @cached_property
    def _t2s(self):
        import opencc

        return opencc.OpenCC("t2s")

    def __call__(self, text: str) -> str:
        c = self.config
        if c.strip_html:
            text = _TAG.sub(" ", html.unescape(text)) if "<" in text or "&" in text else text
        if c.strip_urls:
            text = _URL.sub("", text)
        if c.strip_emails and "@" in text:
            text = _EMAIL.sub("", text)
        if c.strip_control:
            text = "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch)[0] != "C")
        if c.fullwidth_to_halfwidth:
            text = text.translate(_HALFWIDTH)
        if c.traditional_to_simplified:
            text = self._t2s.convert(text)
        if c.collapse_whitespace:
            text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        return text

    @property
    def active(self) -> bool:
        return any(getattr(self.config, f.name) for f in fields(self.config))
