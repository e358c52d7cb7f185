"""Documents -> training examples of at most `max_seq_len` tokens.

* `SegmentPairPacker` (BERT family): BERT/ALBERT's document-aware packing. Sentences of one document (never two
  documents: SOP's segments must be consecutive text) fill
  `[CLS] A [SEP] B [SEP]` up to `max_seq_len` (10% of examples get a shorter random budget so the model also
  sees short inputs); A/B split at a random sentence boundary and, for sentence-order prediction, swapped half
  the time. It also stores what the objectives need per token: where each word starts (whole-word masking, from
  the shared segmenter) and per-token tag ids (POS/NE labels from the same segmenter).
  A short document makes a short example; batches pad to their longest (38% padding on a half-Weibo mix,
  against 50% for per-document truncate-and-pad to 128: benchmarks/pretrain_throughput.py).
* `ChunkPacker` (T5, GPT): documents tokenized, each followed by EOS, concatenated and cut into equal chunks
  (T5: the raw length that span corruption turns into exactly `max_seq_len` inputs): no padding at all.

Packers are called by `datasets.map(batched=True, with_indices=True)`; randomness is seeded by the batch's first
index, so a cached corpus and a streamed one pack identically.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..tokenizer.segment import align_words_to_tokens, get_segmenter, split_sentences, word_spans

IGNORE = -100


class _OneTextMemo:
    """Segmenter wrapper remembering the last text: POS labels, NE labels and word starts segment once."""

    def __init__(self, segmenter):
        self.segmenter = segmenter
        self._cut: tuple[str, list] = ("", [])
        self._pos: tuple[str, list] = ("", [])

    def cut(self, text):
        if self._pos[0] == text and text:
            return [w for w, _ in self._pos[1]]
        if self._cut[0] != text or not text:
            self._cut = (text, self.segmenter.cut(text))
        return self._cut[1]

    def pos(self, text):
        if self._pos[0] != text or not text:
            self._pos = (text, self.segmenter.pos(text))
        return self._pos[1]


class _Packer:
    def __init__(self, tokenizer, max_seq_len: int, seed: int):
        self.tokenizer = tokenizer
        self.max_seq_len = max_seq_len
        self.seed = seed

    def __getstate__(self):  # ship settings to `num_proc` workers, rebuild segmenters there
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k != "segmenter_memo"}

    def fingerprint(self) -> dict:
        """What determines the examples (part of the corpus cache key)."""
        import hashlib

        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        vocab = backend.to_str() if backend is not None else repr(sorted(self.tokenizer.get_vocab().items()))
        settings = {k: v for k, v in self.__getstate__().items() if k != "tokenizer"}
        return {"packer": type(self).__name__, "tokenizer": hashlib.sha256(vocab.encode()).hexdigest()[:16], **settings}


class SegmentPairPacker(_Packer):
    def __init__(self, tokenizer, max_seq_len: int = 512, seed: int = 0, short_seq_prob: float = 0.1,
                 sentence_order: bool = False, segmenter: str | None = "jieba", tag_schemes: tuple[str, ...] = ()):
        super().__init__(tokenizer, max_seq_len, seed)
        self.short_seq_prob = short_seq_prob
        self.sentence_order = sentence_order
        self.segmenter = segmenter
        self.tag_schemes = tuple(tag_schemes)

    @cached_property
    def _memo(self):
        return _OneTextMemo(get_segmenter(self.segmenter)) if self.segmenter else None

    @cached_property
    def _schemes(self):
        from .linguistic import TAG_SCHEMES

        return {name: TAG_SCHEMES[name] for name in self.tag_schemes}

    def features(self):
        import datasets

        seq = lambda dtype: datasets.Sequence(datasets.Value(dtype))  # noqa: E731
        feats = {"input_ids": seq("int32"), "token_type_ids": seq("int8"), "word_start": seq("int8"),
                 "sop_label": datasets.Value("int8")}
        feats |= {f"{name}_ids": seq("int16") for name in self.tag_schemes}
        return datasets.Features(feats)

    def _sentences(self, docs: list[str]) -> list[list[dict]]:
        """Per document, its sentences as token ids + per-token word starts + tag ids; long ones split."""
        from .linguistic import token_tag_ids

        per_doc = [split_sentences(d) for d in docs]
        flat = [s for sents in per_doc for s in sents]
        enc = self.tokenizer(flat, add_special_tokens=False, return_offsets_mapping=True,
                             return_attention_mask=False, return_token_type_ids=False, verbose=False) if flat else {"input_ids": []}
        budget = self.max_seq_len - 3
        out, k = [], 0
        for sents in per_doc:
            doc = []
            for text in sents:
                ids, offsets = enc["input_ids"][k], enc["offset_mapping"][k]
                k += 1
                if not ids:
                    continue
                item = {"input_ids": ids, "word_start": self._word_starts(text, offsets)}
                for name, scheme in self._schemes.items():
                    item[f"{name}_ids"] = token_tag_ids(scheme.char_tag_ids(text, self._memo), offsets)
                for start in range(0, len(ids), budget):  # a sentence longer than the budget becomes pieces
                    doc.append({key: v[start : start + budget] for key, v in item.items()})
            out.append(doc)
        return out

    def _word_starts(self, text: str, offsets) -> list[int]:
        if self._memo is None:
            return [1] * len(offsets)
        words = [w for w, _ in self._memo.pos(text)] if self.tag_schemes else self._memo.cut(text)
        try:
            word_of = align_words_to_tokens(word_spans(text, words), offsets)
        except ValueError:  # a segmenter that rewrote the text: fall back to token-level units
            return [1] * len(offsets)
        starts, previous = [], object()
        for w in word_of:
            starts.append(int(w is None or w != previous))
            previous = w
        return starts

    def __call__(self, batch: dict, indices: list[int]) -> dict:
        rng = np.random.default_rng([self.seed, indices[0] if indices else 0])
        columns = ["input_ids", "word_start"] + [f"{n}_ids" for n in self.tag_schemes]
        out: dict[str, list] = {k: [] for k in self.features()}
        budget = self.max_seq_len - 3
        for doc in self._sentences(batch["text"]):
            target = self._target_length(rng, budget)
            chunk, length = [], 0
            for i, sentence in enumerate(doc):
                chunk.append(sentence)
                length += len(sentence["input_ids"])
                if i == len(doc) - 1 or length >= target:
                    self._emit(chunk, budget, rng, columns, out)
                    chunk, length = [], 0
                    target = self._target_length(rng, budget)
        return out

    def _target_length(self, rng, budget: int) -> int:
        """The full budget, or (with `short_seq_prob`) a random shorter one, as BERT's create_instances does."""
        return budget if rng.random() >= self.short_seq_prob else int(rng.integers(2, budget + 1))

    def _emit(self, chunk: list[dict], budget: int, rng, columns: list[str], out: dict) -> None:
        join = lambda part, key: [x for s in part for x in s[key]]  # noqa: E731
        if len(chunk) >= 2:
            cut = int(rng.integers(1, len(chunk)))
            a = {key: join(chunk[:cut], key) for key in columns}
            b = {key: join(chunk[cut:], key) for key in columns}
            _truncate_pair(a, b, budget, rng)
            label = 0
            if self.sentence_order and rng.random() < 0.5:
                a, b, label = b, a, 1
        else:
            a = {key: join(chunk, key)[:budget + 1] for key in columns}  # one segment: room for budget + 1 tokens
            b, label = None, IGNORE
        tok = self.tokenizer
        cls, sep = tok.cls_token_id, tok.sep_token_id
        fill = {"input_ids": (cls, sep), "word_start": (1, 1)} | {c: (IGNORE, IGNORE) for c in columns[2:]}
        for key in columns:
            first, after = fill[key]
            seq = [first, *a[key], after] + ([*b[key], after] if b is not None else [])
            out[key].append(seq)
        n_a = len(a["input_ids"]) + 2
        out["token_type_ids"].append([0] * n_a + ([1] * (len(b["input_ids"]) + 1) if b is not None else []))
        out["sop_label"].append(label)


def _truncate_pair(a: dict, b: dict, budget: int, rng) -> None:
    """BERT's truncate_seq_pair: trim the longer side, from the front or the back at random."""
    while len(a["input_ids"]) + len(b["input_ids"]) > budget:
        side = a if len(a["input_ids"]) > len(b["input_ids"]) else b
        front = rng.random() < 0.5
        for key in side:
            side[key] = side[key][1:] if front else side[key][:-1]


class ChunkPacker(_Packer):
    """EOS-separated documents concatenated and cut into `chunk_len` tokens (the tail of each map batch is
    carried nowhere: it is dropped, as in the HF and T5 references)."""

    def __init__(self, tokenizer, chunk_len: int, seed: int = 0):
        super().__init__(tokenizer, chunk_len, seed)
        if tokenizer.eos_token_id is None:
            raise ValueError("chunk packing needs a tokenizer with an EOS token")

    def features(self):
        import datasets

        return datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))})

    def __call__(self, batch: dict, indices: list[int]) -> dict:
        enc = self.tokenizer(batch["text"], add_special_tokens=False, return_attention_mask=False,
                             verbose=False)["input_ids"]
        eos = self.tokenizer.eos_token_id
        stream = [t for ids in enc for t in (*ids, eos)]
        n = len(stream) // self.max_seq_len * self.max_seq_len
        return {"input_ids": [stream[i : i + self.max_seq_len] for i in range(0, n, self.max_seq_len)]}
