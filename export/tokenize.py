"""A transformers-compatible face over a bare `tokenizers.Tokenizer`, so the deployment runtime encodes without
transformers (or torch) and still goes through the same encoding functions as fine-tuning
(`mengzi.finetune.encoding`, `mengzi.finetune.spans`).

Only what those functions call is offered: batched `__call__` with pairs, offsets, truncation with stride and
overflowing windows; the special ids; `num_special_tokens_to_add`. It mirrors transformers 5's fast-tokenizer path
(enable truncation on the Rust tokenizer, `encode_batch`, each encoding followed by its `overflowing` windows), and
a test checks the features are identical on real CMRC2018 text.
"""

from __future__ import annotations

import os
from pathlib import Path

CHARS_PER_TOKEN = 8  # first cut for `FastTokenizer.head`: Chinese is ~1 character a token, English words ~2-6


class Encodings(dict):
    """What a transformers `BatchEncoding` offers the encoders: keys, and `sequence_ids(i)`."""

    def __init__(self, data: dict, encodings: list):
        super().__init__(data)
        self._encodings = encodings

    def sequence_ids(self, index: int) -> list[int | None]:
        return self._encodings[index].sequence_ids


class FastTokenizer:
    def __init__(self, path: str | os.PathLike, special: dict | None = None):
        from tokenizers import Tokenizer

        self.path = Path(path)
        self._tok = Tokenizer.from_file(str(self.path))
        self._tok.no_padding()
        self._tok.no_truncation()
        special = special or {}
        vocab = self._tok.get_vocab()

        def sid(key: str, *tokens: str) -> int | None:
            if special.get(key) is not None:
                return int(special[key])
            return next((vocab[t] for t in tokens if t in vocab), None)

        self.cls_token_id = sid("cls", "[CLS]")
        self.sep_token_id = sid("sep", "[SEP]")
        self.pad_token_id = sid("pad", "[PAD]", "<pad>")
        self.mask_token_id = sid("mask", "[MASK]")
        self.unk_token_id = sid("unk", "[UNK]", "<unk>")
        self.eos_token_id = sid("eos", "</s>")
        self.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tok.post_processor.num_special_tokens_to_add(pair) if self._tok.post_processor else 0

    def head(self, text: str, tokens: int) -> str:
        """A prefix of `text` whose encoding begins with the whole text's first `tokens` tokens (and holds at least
        that many), so that truncating either to `tokens` or fewer gives the same ids; `text` itself when short.
        Cutting by characters first keeps a 900 kB text from being tokenised whole. A cut can split only the last
        word, whose tokens are not counted; text with few tokens per character (runs of spaces, one endless word)
        widens the cut until it holds enough, at worst to the whole text."""
        limit = tokens * CHARS_PER_TOKEN + 64
        while limit < len(text):
            head = text[:limit]
            words = self._tok.encode(head, add_special_tokens=False).word_ids
            if words and sum(w != words[-1] for w in words) >= tokens:
                return head
            limit *= 4
        return text

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self._tok.id_to_token(int(i)) for i in ids]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def __call__(self, text, text_pair=None, add_special_tokens: bool = True, return_offsets_mapping: bool = False,
                 truncation: bool | str = False, max_length: int | None = None, stride: int = 0,
                 return_overflowing_tokens: bool = False, padding: bool = False, **unused) -> Encodings:
        if padding:
            raise ValueError("FastTokenizer does not pad: the encoders pad per batch")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        pairs = None if text_pair is None else ([text_pair] if single else list(text_pair))
        batch = texts if pairs is None else list(zip(texts, pairs))
        if truncation and max_length:
            strategy = "longest_first" if truncation is True else truncation
            self._tok.enable_truncation(max_length, stride=stride, strategy=strategy, direction="right")
        try:
            encoded = self._tok.encode_batch(batch, add_special_tokens=add_special_tokens) if batch else []
        finally:
            self._tok.no_truncation()
        windows, sample = [], []
        for i, enc in enumerate(encoded):
            group = [enc, *enc.overflowing] if return_overflowing_tokens else [enc]
            windows.extend(group)
            sample.extend([i] * len(group))
        data = {"input_ids": [e.ids for e in windows], "token_type_ids": [e.type_ids for e in windows],
                "attention_mask": [e.attention_mask for e in windows]}
        if return_offsets_mapping:
            data["offset_mapping"] = [e.offsets for e in windows]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample
        if single and not return_overflowing_tokens:
            data = {k: v[0] for k, v in data.items()}
        return Encodings(data, windows)
