"""`Predictor(DIR)`: batched prediction over an export folder with ONNX Runtime, tokenizers and numpy only.

    from mengzi.export import Predictor
    p = Predictor("exports/afqmc")
    p.predict([{"text": "花呗怎么还款", "text_pair": "花呗如何还钱"}])
    # [{"label": "1", "index": 1, "score": 0.93, "probabilities": {"0": 0.07, "1": 0.93}}]

Records by head: classification {"text", "text_pair"?}; multiple choice {"context", "question"?, "choices"};
question answering {"question", "context"}; fill-mask {"text" with [MASK]}; token classification {"text"};
T5 / GPT {"text"}. Features are built by `mengzi.finetune.encoding` (the functions fine-tuning evaluated with),
batched by length with padding to the longest in the batch, and decoded by the same code (labels, CMRC spans,
choices). `predict_dataset` returns the raw per-example predictions the CLUE submission writers take.

Texts that only count up to max_seq_len tokens are cut by characters before tokenising, keeping exactly the tokens
that count (`FastTokenizer.head`): a 900 kB record costs what its first few thousand characters cost. An export of
a run knows whether its model reads pairs; then a single text (or a pair given to a single-text model) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mengzi.finetune import encoding

from .heads import get_head
from .session import ExportError, choose_providers, make_session, read_manifest
from .tokenize import FastTokenizer

_DEFAULT_MAX_LEN = 512
# record fields per head kind (what `validate` reads); a `mengzi finetune` export maps them to its own column names
FIELDS = {"classification": ("text", "text_pair"), "multiple_choice": ("context", "question", "choices"),
          "span": ("question", "context")}
# text fields that only count up to max_seq_len tokens, cut by characters before tokenising (`FastTokenizer.head`);
# spans read their whole context in windows and choices centre on a blank, so those keep their text
CUT_FIELDS = {"classification": ("text", "text_pair"), "fill_mask": ("text",), "token_classification": ("text",)}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _need_str(record: dict, key: str, optional: bool = False, names: dict | None = None) -> None:
    value = record.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"{type(value).__name__} {value!r:.40}"
        raise ValueError(f"field {(names or {}).get(key, key)!r}: expected a non-empty string, got {got}")


class Predictor:
    def __init__(self, folder: str | os.PathLike, providers: str | list[str] | None = "auto", threads: int = 0,
                 batch_size: int = 32, **generation):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.head = get_head(self.manifest["head"])
        self.tokenizer = FastTokenizer(self.folder / "tokenizer.json", self.manifest.get("special"))
        self.batch_size = batch_size
        self._pad = self.tokenizer.pad_token_id or 0
        self.providers = choose_providers(providers)
        task = self.manifest.get("task") or {}
        self.max_seq_len = int(task.get("max_seq_len") or self.manifest.get("max_seq_len") or _DEFAULT_MAX_LEN)
        self.doc_stride = int(task.get("doc_stride") or 128)
        self.max_answer_len = int(task.get("max_answer_len") or 64)
        self.labels = self.manifest.get("labels")
        # the columns the model was fine-tuned on (`mengzi predict --input` reads those), and whether it reads pairs:
        # True (a single text is refused), False (a pair is refused) or None (unknown: either)
        self.fields = {f: f for f in FIELDS.get(self.head.kind, ("text",))} | (task.get("fields") or {})
        self.pair = task.get("pair")
        self.generation = generation
        if self.head.generative:
            from .generation import OnnxGenerator

            self.generator = OnnxGenerator(self.folder, self.manifest, self.tokenizer._tok, providers=self.providers,
                                           threads=threads)
            self.session = None
        else:
            files = self.manifest["files"]
            # TensorRT builds its own fused engines from the plain graph; ORT's contrib ops would fall back
            name = files.get("unfused", files["model"]) if self.providers[0] == "TensorrtExecutionProvider" \
                else files["model"]
            self.session = make_session(self.folder / name, self.providers, threads)
            self._inputs = [i.name for i in self.session.get_inputs()]

    # ------------------------------------------------------------------------------------------------ describe
    def info(self) -> dict:
        return {"head": self.head.name, "task": (self.manifest.get("task") or {}).get("name"),
                "labels": self.labels, "precision": self.manifest.get("precision"),
                "optimized": self.manifest.get("optimized"), "providers": self.providers,
                "max_seq_len": self.max_seq_len, "files": self.manifest["files"], "source": self.manifest.get("source"),
                "pair": self.pair}

    def validate(self, record, names: dict | None = None) -> None:
        """Raise ValueError naming the field when `record` is not what this head reads. `names`: record field ->
        the name to say in the message (a user file's column)."""
        if not isinstance(record, dict):
            raise ValueError(f"expected an object, got {type(record).__name__}")
        kind, names = self.head.kind, names or {}
        if kind == "classification":
            _need_str(record, "text", names=names)
            pair = names.get("text_pair", "text_pair")
            if self.pair and record.get("text_pair") is None:
                raise ValueError(f"field {pair!r} is missing: this model was fine-tuned on pairs of texts; a single "
                                 "text would be predicted wrongly")
            if self.pair is False and record.get("text_pair") is not None:
                raise ValueError(f"field {pair!r}: this model was fine-tuned on single texts, not pairs")
            _need_str(record, "text_pair", optional=True, names=names)
        elif kind == "multiple_choice":
            _need_str(record, "context", names=names)
            _need_str(record, "question", optional=True, names=names)
            choices = record.get("choices")
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise ValueError(f"field {names.get('choices', 'choices')!r}: expected a list of at least 2 strings, "
                                 f"got {choices!r:.60}")
        elif kind == "span":
            _need_str(record, "question", names=names)
            _need_str(record, "context", names=names)
        else:
            _need_str(record, "text", names=names)
            if kind == "fill_mask" and "[MASK]" not in record["text"]:
                raise ValueError(f"field {names.get('text', 'text')!r}: a fill-mask model needs at least one [MASK] "
                                 "in the text")

    # ------------------------------------------------------------------------------------------------- running
    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})

    def _batches(self, features: list[dict]):
        return length_batches(features, self.batch_size)

    def logits(self, encoded: encoding.Encoded) -> list[np.ndarray]:
        """Per feature, its logits without batch padding (see `own_logits`)."""
        out: list[np.ndarray | None] = [None] * len(encoded.features)
        for indices in self._batches(encoded.features):
            features = [encoded.features[i] for i in indices]
            outputs = self._run(pad_batch(features, self._pad))
            for i, f, row in zip(indices, features, batch_logits(self.head.kind, outputs)):
                out[i] = own_logits(self.head.kind, f, row)
        return out

    def predict_dataset(self, dataset) -> tuple[list, list[np.ndarray]]:
        """Predictions per example in the fine-tuning kinds' format (label index, choice index, answer text) and
        the logits per feature. `dataset`: a `datasets.Dataset` in the shared schema or `encoding.Columns`."""
        kind = self.head.kind
        if kind not in encoding.ENCODERS:
            raise ExportError(f"predict_dataset serves classification, multiple choice and span heads, not {kind}")
        encoded = encoding.encode(kind, dataset, self.tokenizer, self.max_seq_len, self.doc_stride)
        logits = self.logits(encoded) if encoded.features else []
        return encoding.predict(kind, logits, encoded, dataset, self.max_answer_len), logits

    def predict(self, records: list[dict]) -> list[dict]:
        """One result per record (see the module doc for record and result fields)."""
        if not records:
            return []
        for i, r in enumerate(records):
            try:
                self.validate(r)
            except ValueError as e:
                raise ValueError(f"record {i}: {e}") from None
        kind = self.head.kind
        records = [self._cut(r) for r in records]
        if self.head.generative:
            texts = self.generator.generate([r["text"] for r in records], **self.generation)
            return [{"text": t} for t in texts]
        if kind == "fill_mask":
            return self._fill_mask(records)
        if kind == "token_classification":
            return self._tag(records)
        if kind == "classification":
            # single texts and pairs encode differently ([CLS] a [SEP] vs [CLS] a [SEP] b [SEP]): each group alone,
            # so a record's answer never depends on what else shares its batch (the server mixes requests)
            paired = [i for i, r in enumerate(records) if r.get("text_pair")]
            if 0 < len(paired) < len(records):
                single = [i for i in range(len(records)) if i not in set(paired)]
                results = dict(zip(paired, self.predict([records[i] for i in paired])))
                results.update(zip(single, self.predict([records[i] for i in single])))
                return [results[i] for i in range(len(records))]
        columns = {"classification": ("text", "text_pair"), "multiple_choice": ("context", "question", "choices"),
                   "span": ("question", "context")}[kind]
        dataset = encoding.Columns({c: [r.get(c) or ("" if c != "choices" else []) for r in records]
                                    for c in columns})
        encoded = encoding.encode(kind, dataset, self.tokenizer, self.max_seq_len, self.doc_stride)
        logits = self.logits(encoded)
        if kind == "classification":
            out = []
            for row in logits:
                p = _softmax(row)
                i = int(p.argmax())
                names = [self._label(k) for k in range(len(p))]
                out.append({"label": names[i], "index": i, "score": float(p[i]),
                            "probabilities": {n: float(v) for n, v in zip(names, p)}})
            return out
        if kind == "multiple_choice":
            out = []
            for row, r in zip(logits, records):
                p = _softmax(row)
                i = int(p.argmax())
                out.append({"choice": i, "text": r["choices"][i], "score": float(p[i]), "scores": p.tolist()})
            return out
        spans = encoding.decode_span_answers(logits, encoded, dataset, self.max_answer_len)
        return [{"answer": s["text"], "score": s["score"],
                 "start": s["n_best"][0]["start"] if s["n_best"] else -1,
                 "end": s["n_best"][0]["end"] if s["n_best"] else -1} for s in spans]

    def _cut(self, record: dict) -> dict:
        """`record` with its long texts cut by characters, the same tokens kept (see `CUT_FIELDS`)."""
        fields = [f for f in CUT_FIELDS.get(self.head.kind, ()) if isinstance(record.get(f), str)]
        return record | {f: self.tokenizer.head(record[f], self.max_seq_len) for f in fields} if fields else record

    def _label(self, index: int) -> str:
        return str(self.labels[index]) if self.labels and index < len(self.labels) else str(index)

    def _plain(self, records: list[dict]):
        """Single texts through the tokenizer's own special tokens (fill-mask, tagging): encodings and logits."""
        enc = self.tokenizer([r["text"] for r in records], truncation=True, max_length=self.max_seq_len,
                             return_offsets_mapping=True)
        features = [{"input_ids": ids, "token_type_ids": types}
                    for ids, types in zip(enc["input_ids"], enc["token_type_ids"])]
        return enc, self.logits(encoding.Encoded(features))

    def _fill_mask(self, records: list[dict], top_k: int = 5) -> list[dict]:
        enc, logits = self._plain(records)
        out = []
        for ids, row in zip(enc["input_ids"], logits):
            masks, filled = [], list(ids)
            for pos in [i for i, t in enumerate(ids) if t == self.tokenizer.mask_token_id]:
                p = _softmax(row[pos])
                best = np.argsort(-p)[:top_k]
                masks.append([{"token": self.tokenizer.convert_ids_to_tokens([int(k)])[0], "id": int(k),
                               "score": float(p[k])} for k in best])
                filled[pos] = int(best[0])
            out.append({"masks": masks, "filled": self.tokenizer.decode(filled).replace(" ", "")})
        return out

    def _tag(self, records: list[dict]) -> list[dict]:
        enc, logits = self._plain(records)
        out = []
        for offsets, row, r in zip(enc["offset_mapping"], logits, records):
            p = _softmax(row)
            tokens = [{"text": r["text"][s:e], "label": self._label(int(k)), "score": float(q[k]), "start": s,
                       "end": e} for (s, e), q, k in zip(offsets, p, p.argmax(-1)) if e > s]
            out.append({"tokens": tokens, "entities": _entities(tokens, r["text"])})
        return out


PER_TOKEN = ("fill_mask", "token_classification")  # logits [length, classes]


def batch_logits(kind: str, outputs: list[np.ndarray]) -> np.ndarray:
    """A batch's logits as one float32 array: [B, C], [B, choices], [B, 2, L] (span start/end), [B, L, C]."""
    return (np.stack(outputs[:2], axis=1) if kind == "span" else outputs[0]).astype(np.float32)


def own_logits(kind: str, feature: dict, row: np.ndarray) -> np.ndarray:
    """One feature's row of `batch_logits` cut to the feature itself: its real choices, or its real tokens."""
    if "choices" in feature:
        return row[: len(feature["choices"])]
    if kind == "span":
        return row[:, : len(feature["input_ids"])]
    if kind in PER_TOKEN:
        return row[: len(feature["input_ids"])]
    return row


def length_batches(features: list[dict], batch_size: int):
    """Feature indices in batches of similar length (less padding), longest first."""
    def length(f):
        return max(len(ids) for ids, _ in f["choices"]) if "choices" in f else len(f["input_ids"])

    order = sorted(range(len(features)), key=lambda i: -length(features[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def pad_batch(features: list[dict], pad: int) -> dict[str, np.ndarray]:
    """Features padded to the batch's longest: [batch, length], or [batch, choices, length] for multiple choice
    (padded choices fully masked), as fine-tuning's collate pads them."""
    if "choices" in features[0]:
        n = max(len(f["choices"]) for f in features)
        rows = [f["choices"] + [([pad], [0])] * (n - len(f["choices"])) for f in features]
        flat = [ids for row in rows for ids in row]
        real = [[1] * len(f["choices"]) + [0] * (n - len(f["choices"])) for f in features]
        mask_of = [r for row in real for r in row]
    else:
        flat = [(f["input_ids"], f["token_type_ids"]) for f in features]
        mask_of = [1] * len(flat)
    length = max(len(ids) for ids, _ in flat)
    ids = np.full((len(flat), length), pad, dtype=np.int64)
    types = np.zeros((len(flat), length), dtype=np.int64)
    mask = np.zeros((len(flat), length), dtype=np.int64)
    for i, ((row_ids, row_types), real) in enumerate(zip(flat, mask_of)):
        ids[i, : len(row_ids)] = row_ids
        types[i, : len(row_types)] = row_types
        mask[i, : len(row_ids)] = real
    if "choices" in features[0]:
        shape = (len(features), -1, length)
        return {"input_ids": ids.reshape(shape), "token_type_ids": types.reshape(shape),
                "attention_mask": mask.reshape(shape)}
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def _entities(tokens: list[dict], text: str) -> list[dict]:
    """BIO / BIOES tags merged into entities {"type", "text", "start", "end"}; other tag sets give none."""
    entities, current = [], None
    for t in tokens:
        prefix, _, kind = t["label"].partition("-")
        if prefix in ("B", "S") or (prefix in ("I", "E") and (current is None or current["type"] != kind)):
            current = {"type": kind, "start": t["start"], "end": t["end"]}
            entities.append(current)
        elif prefix in ("I", "E") and current is not None:
            current["end"] = t["end"]
        else:
            current = None
        if prefix in ("E", "S"):
            current = None
    for e in entities:
        e["text"] = text[e["start"] : e["end"]]
    return [e for e in entities if e["type"]]
