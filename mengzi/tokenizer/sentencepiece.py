"""SentencePiece for the generative variants: train unigram models, and turn any `.model` into a fast HF tokenizer.

Two layouts, matching the released checkpoints:

* `t5`  — pad=0, eos=1, unk=2, no bos; 100 sentinels `<extra_id_N>` appended with `<extra_id_0>` as the *last*
  id (T5's convention, which Mengzi-T5's 32128-entry vocab follows). Loaded through transformers' T5Tokenizer.
* `gpt` — unk=0, bos=1, eos=2, pad=3; a plain fast tokenizer (`tokenizer.json`). Langboat's GPT-neo ships only a
  raw `mengzi_gpt.model` that transformers cannot load; `from_sentencepiece(path, "gpt")` makes it loadable.

The fast tokenizer reproduces SentencePiece's segmentation (NFKC charsmap, whitespace handling, `▁` prefix); the
only differences are between segmentations of *equal* score, where the two Viterbi implementations break ties
differently (tested: every mismatch on real text is such a tie).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from transformers import PreTrainedTokenizerFast, T5Tokenizer

from .segment import split_sentences

Kind = Literal["t5", "gpt"]
T5_SENTINELS = 100
# ids the trainer reserves, per layout
LAYOUTS = {
    "t5": dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1),
    "gpt": dict(unk_id=0, bos_id=1, eos_id=2, pad_id=3),
}
MODEL_FILE = {"t5": "spiece.model", "gpt": "sentencepiece.model"}


def load_proto(model_file: str | os.PathLike):
    """The SentencePiece ModelProto (pieces, scores, trainer and normaliser specs)."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    data = Path(model_file).read_bytes()
    try:
        proto.ParseFromString(data)
    except Exception as e:  # protobuf raises DecodeError, a plain Exception subclass
        raise ValueError(f"{model_file}: not a SentencePiece model ({e})") from e
    if not proto.pieces:
        raise ValueError(f"{model_file}: not a SentencePiece model (no pieces)")
    return proto


def _training_sentences(texts: Iterable[str], max_chars: int) -> Iterator[str]:
    """SentencePiece skips lines longer than its limit; cut long documents at sentence ends instead."""
    for text in texts:
        if len(text) <= max_chars:
            yield text
            continue
        chunk = ""
        for sentence in split_sentences(text):
            if chunk and len(chunk) + len(sentence) > max_chars:
                yield chunk
                chunk = ""
            chunk += sentence[:max_chars]
        if chunk:
            yield chunk


def train_sentencepiece(texts: Iterable[str], out_dir: str | os.PathLike, kind: Kind, vocab_size: int,
                        model_type: Literal["unigram", "bpe"] = "unigram", character_coverage: float = 0.9995,
                        input_sentence_size: int = 2_000_000, seed: int = 0,
                        num_threads: int | None = None) -> PreTrainedTokenizerFast:
    """Train a SentencePiece model on `texts` and save a tokenizer folder that AutoTokenizer loads.

    `vocab_size` is the final size: for `t5` it includes the 100 sentinels (Mengzi-T5: 32128 = 32028 + 100).
    """
    import sentencepiece as spm

    sp_size = vocab_size - T5_SENTINELS if kind == "t5" else vocab_size
    if sp_size < 100:
        raise ValueError(f"vocab_size {vocab_size} is too small for a {kind} tokenizer")
    spm.set_random_generator_seed(seed)  # sampling of input sentences
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            sentence_iterator=_training_sentences(texts, max_chars=1500), model_prefix=prefix,
            vocab_size=sp_size, model_type=model_type, character_coverage=character_coverage,
            input_sentence_size=input_sentence_size, shuffle_input_sentence=True, seed_sentencepiece_size=1_000_000,
            num_threads=num_threads or os.cpu_count() or 1, minloglevel=2,
            **LAYOUTS[kind],
        )
        return save_sentencepiece(prefix + ".model", out_dir, kind)


def from_sentencepiece(model_file: str | os.PathLike, kind: Kind) -> PreTrainedTokenizerFast:
    """A fast HF tokenizer equivalent to the SentencePiece model in `model_file`."""
    proto = load_proto(model_file)
    if kind == "t5":
        return _t5_tokenizer(model_file, proto)
    return _gpt_tokenizer(proto)


def save_sentencepiece(model_file: str | os.PathLike, out_dir: str | os.PathLike, kind: Kind) -> PreTrainedTokenizerFast:
    """Convert `model_file`, save the HF folder, and keep the raw `.model` beside it for sentencepiece users."""
    tokenizer = from_sentencepiece(model_file, kind)
    out = Path(out_dir)
    tokenizer.save_pretrained(out)
    tmp = out / f".{MODEL_FILE[kind]}.tmp"
    shutil.copyfile(model_file, tmp)
    os.replace(tmp, out / MODEL_FILE[kind])
    return tokenizer


def _t5_tokenizer(model_file: str | os.PathLike, proto) -> PreTrainedTokenizerFast:
    ts = proto.trainer_spec
    if (ts.pad_id, ts.eos_id, ts.unk_id) == (0, 1, 2):
        # T5's own layout (Mengzi-T5's spiece.model): transformers converts a folder holding `spiece.model` with
        # T5's sentinel convention; reuse that path so ids equal `T5Tokenizer.from_pretrained` on the checkpoint.
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(model_file, os.path.join(tmp, "spiece.model"))
            tokenizer = T5Tokenizer.from_pretrained(tmp, extra_ids=T5_SENTINELS, model_max_length=512)
        tokenizer.init_kwargs.pop("vocab_file", None)
        return tokenizer
    # Any other layout: the generic conversion plus sentinels after the pieces, <extra_id_0> last, and </s>
    # appended to every sequence as T5 does. Config ids (pad, eos, decoder start) follow the tokenizer.
    from tokenizers import AddedToken, processors

    base = _gpt_tokenizer(proto)
    if base.pad_token is None or base.eos_token is None:
        raise ValueError(f"{model_file}: a T5 tokenizer needs pad and eos pieces; this model has "
                         f"pad={base.pad_token!r} eos={base.eos_token!r}")
    backend = base.backend_tokenizer
    sentinels = [f"<extra_id_{i}>" for i in range(T5_SENTINELS - 1, -1, -1)]
    backend.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in sentinels])
    eos = base.eos_token
    backend.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, base.eos_token_id)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=base.unk_token, eos_token=eos,
                                   pad_token=base.pad_token, extra_special_tokens=sorted(sentinels, key=_sentinel_no),
                                   model_max_length=512)


def _sentinel_no(token: str) -> int:
    return int(token.removeprefix("<extra_id_").removesuffix(">"))


def _gpt_tokenizer(proto) -> PreTrainedTokenizerFast:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE, Unigram

    ts, ns = proto.trainer_spec, proto.normalizer_spec
    pieces = [(p.piece, p.score) for p in proto.pieces]
    if ts.model_type == 1:  # unigram
        model = Unigram(pieces, unk_id=ts.unk_id, byte_fallback=ts.byte_fallback)
    elif ts.model_type == 2:  # bpe: merges ordered by piece score, as SentencePiece applies them
        from transformers.convert_slow_tokenizer import generate_merges

        vocab = {p: i for i, (p, _) in enumerate(pieces)}
        model = BPE(vocab, generate_merges(vocab, dict(pieces)), unk_token=ts.unk_piece, fuse_unk=True,
                    byte_fallback=ts.byte_fallback)
    else:
        raise ValueError(f"SentencePiece model type {ts.model_type} (char/word) is not supported")
    tok = Tokenizer(model)
    steps = [normalizers.Precompiled(ns.precompiled_charsmap)] if ns.precompiled_charsmap else []
    if ns.remove_extra_whitespaces:
        steps += [normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    tok.normalizer = normalizers.Sequence(steps)
    scheme = "always" if ns.add_dummy_prefix else "never"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme=scheme, split=ts.split_by_whitespace)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme=scheme, split=ts.split_by_whitespace)
    # Control pieces (<s>, </s>, <pad>) become special tokens. User-defined pieces (Chinese-XLNet declares "."
    # one) stay in the model's vocab with their score: as added tokens they would split the text before the
    # `▁` prefix is applied and every segment after a "." would start with a spurious `▁`.
    tok.add_special_tokens([AddedToken(p.piece, normalized=False, special=True) for p in proto.pieces if p.type == 3])

    names = {p.piece for p in proto.pieces}

    def piece(i: int, fallback: str) -> str | None:
        # the trainer's id if set, else a conventionally named piece (Chinese-XLNet's model has <pad> but pad_id=-1)
        if 0 <= i < len(proto.pieces):
            return proto.pieces[i].piece
        return fallback if fallback in names else None

    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=piece(ts.unk_id, "<unk>"),
                                   bos_token=piece(ts.bos_id, "<s>"), eos_token=piece(ts.eos_id, "</s>"),
                                   pad_token=piece(ts.pad_id, "<pad>"), model_max_length=2048)

