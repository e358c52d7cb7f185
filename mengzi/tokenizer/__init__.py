"""The shared Chinese tokenizer layer: WordPiece, SentencePiece, normaliser, word segmentation.

`load_tokenizer(path)` opens any tokenizer a Mengzi checkpoint may carry: a saved HF folder, a Langboat folder
with only `vocab.txt` (BERT) or only a SentencePiece `.model` (T5 `spiece.model`, GPT-neo `mengzi_gpt.model`),
or a bare `vocab.txt` / `.model` file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .normalize import Normalizer, NormalizerConfig
from .segment import (
    SEGMENTERS,
    align_words_to_tokens,
    get_segmenter,
    register_segmenter,
    split_sentences,
    word_spans,
)

__all__ = [
    "Normalizer", "NormalizerConfig", "SEGMENTERS", "align_words_to_tokens", "get_segmenter", "register_segmenter",
    "split_sentences", "word_spans", "load_tokenizer", "wordpiece_tokenizer", "from_sentencepiece",
    "train_sentencepiece", "train_wordpiece",
]


def __getattr__(name: str):
    # transformers-backed parts load on first use so `import mengzi.tokenizer` stays light
    if name in ("wordpiece_tokenizer", "train_wordpiece", "save_wordpiece", "read_vocab"):
        from . import wordpiece

        return getattr(wordpiece, name)
    if name in ("from_sentencepiece", "train_sentencepiece", "save_sentencepiece"):
        from . import sentencepiece

        return getattr(sentencepiece, name)
    raise AttributeError(name)


def load_tokenizer(path: str | os.PathLike, kind: str | None = None):
    """Load a tokenizer from a folder or file (see module doc). `kind` ('t5'/'gpt') picks the SentencePiece layout
    when it cannot be inferred; by default `spiece.model` means T5 and any other `.model` means GPT."""
    from transformers import AutoTokenizer

    from .sentencepiece import from_sentencepiece
    from .wordpiece import wordpiece_tokenizer

    path = Path(path)
    if path.is_file():
        if path.suffix == ".model":
            return from_sentencepiece(path, kind or ("t5" if path.name == "spiece.model" else "gpt"))
        return wordpiece_tokenizer(path, do_lower_case=True)
    if not path.is_dir():
        raise FileNotFoundError(f"no tokenizer at {path}")
    if (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(path)
    if (path / "vocab.txt").is_file():
        # Langboat's BERT folders: vocab.txt (+ config.json); uncased Chinese vocab unless the config says otherwise
        lower = _config_value(path, "do_lower_case", True)
        return wordpiece_tokenizer(path / "vocab.txt", do_lower_case=lower)
    models = sorted(path.glob("*.model"))
    if models:
        chosen = path / "spiece.model" if (path / "spiece.model").is_file() else models[0]
        return from_sentencepiece(chosen, kind or ("t5" if chosen.name == "spiece.model" else "gpt"))
    raise FileNotFoundError(f"{path}: no tokenizer.json, tokenizer_config.json, vocab.txt or *.model found")


def _config_value(folder: Path, key: str, default):
    cfg = folder / "config.json"
    if cfg.is_file():
        try:
            return json.loads(cfg.read_text(encoding="utf-8")).get(key, default)
        except json.JSONDecodeError:
            return default
    return default
