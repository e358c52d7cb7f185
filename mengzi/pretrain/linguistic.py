"""Per-token linguistic labels (POS, named entities) for the "linguistic injection" pre-training objective.

Mengzi adds an auxiliary head that predicts a tag for every token. Nobody annotates pre-training text, so the
labels come from the jieba segmenter's POS tags (ICTCLAS/PKU flags) and are aligned to tokens through character
positions: a tag scheme gives one tag per *character* of the text, and `token_tag_ids` gives each token the tag
of its first character (-100, the loss's ignore index, for special tokens).

Two schemes are registered in `TAG_SCHEMES` (add more with `@register_tag_scheme("name")`):

* "pos": coarse POS, the first letter of the flag (`nr`, `ns`, `Ng` -> `n`; `vn` -> `v`), with punctuation
  (`w` in the PKU corpus, `x` in jieba) and unknown flags folded into `x`, and foreign strings (`eng`, `nx`) in
  `eng`. Every character of a word gets the word's tag (no BIO: the word boundaries are a different signal).
* "ner": BIO over PER/LOC/ORG, read off the same flags (`nr*` -> PER, `ns*` -> LOC, `nt*` -> ORG).

Because the labels are machine-made, this module also reads human-annotated corpora (People's Daily 1998-01
POS, MSRA NER) and measures how far the jieba-derived tags agree with them (`agreement`); see
`benchmarks/linguistic_labels.py` for the figures.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path

from mengzi.tokenizer.segment import Segmenter, word_spans

IGNORE_INDEX = -100

TAG_SCHEMES: dict[str, TagScheme] = {}


def register_tag_scheme(name: str) -> Callable[[type], type]:
    """Class decorator: instantiate the scheme and register the instance under `name`."""

    def wrap(cls: type) -> type:
        scheme = cls()
        scheme.name = name
        TAG_SCHEMES[name] = scheme
        return cls

    return wrap


# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, folded one-to-one to half-width before
# segmenting: jieba only knows ASCII digits and letters, so "１９９８年" would otherwise come out as single `x`
# characters. The fold keeps the length, so tags line up with the original text.
_HALF_WIDTH = {0x3000: 0x20, **{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}}


def _tagged_words(text: str, segmenter: Segmenter) -> list[tuple[int, int, str]]:
    """(start, end, flag) for each word the segmenter's POS tagger finds in `text` (half-width folded)."""
    folded = text.translate(_HALF_WIDTH)
    pairs = segmenter.pos(folded)
    spans = word_spans(folded, [w for w, _ in pairs])
    return [(s, e, flag) for (s, e), (_, flag) in zip(spans, pairs)]


class TagScheme:
    """A closed label list (ids are positions, so keep the order stable) and a per-character tagger."""

    name: str = ""
    labels: list[str] = []
    default: str = ""  # the tag of characters no word covers

    @cached_property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def word_tags(self, word: str, flag: str) -> list[str]:
        """One tag per character of a word with segmenter flag `flag`."""
        raise NotImplementedError

    def char_tags(self, text: str, segmenter: Segmenter) -> list[str]:
        """One tag per character of `text` (len == len(text)), from the segmenter's POS tags."""
        tags = [self.default] * len(text)
        for start, end, flag in _tagged_words(text, segmenter):
            tags[start:end] = self.word_tags(text[start:end], flag)
        return tags

    def ids(self, tags: Iterable[str]) -> list[int]:
        return [self.label2id[t] for t in tags]

    def char_tag_ids(self, text: str, segmenter: Segmenter) -> list[int]:
        return self.ids(self.char_tags(text, segmenter))


POS_LABELS = ["n", "v", "a", "d", "m", "q", "r", "p", "c", "u", "x", "t", "f", "s", "e", "y", "o", "i", "l", "j",
              "z", "b", "h", "k", "g", "eng"]  # fmt: skip


def coarse_pos(flag: str) -> str:
    """The coarse POS class of a jieba or PKU flag: its first letter, lowercased; `w`/unknown -> `x`."""
    flag = flag.lower()
    if flag in ("eng", "nx"):  # jieba's English words; PKU's foreign-character strings
        return "eng"
    if flag[:1] in POS_LABELS:
        return flag[0]
    return "x"  # w (PKU punctuation), empty or unknown flags


@register_tag_scheme("pos")
class PosScheme(TagScheme):
    labels = POS_LABELS
    default = "x"

    def word_tags(self, word: str, flag: str) -> list[str]:
        return [coarse_pos(flag)] * len(word)


NER_TYPES = ["PER", "LOC", "ORG"]


def ner_type(flag: str) -> str | None:
    """PER/LOC/ORG for a PKU/jieba flag (nr, nrfg, nrt -> PER; ns -> LOC; nt -> ORG), else None."""
    for prefix, kind in (("nr", "PER"), ("ns", "LOC"), ("nt", "ORG")):
        if flag.lower().startswith(prefix):
            return kind
    return None


@register_tag_scheme("ner")
class NerScheme(TagScheme):
    labels = ["O"] + [f"{bi}-{t}" for t in NER_TYPES for bi in "BI"]
    default = "O"

    def word_tags(self, word: str, flag: str) -> list[str]:
        kind = ner_type(flag)
        if kind is None:
            return ["O"] * len(word)
        return [f"B-{kind}"] + [f"I-{kind}"] * (len(word) - 1)


def token_tag_ids(char_tag_ids: Sequence[int], offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Per token, the tag id of its first character; -100 for special tokens (empty offsets) and tokens past the
    end of the text. `offsets` are a fast tokenizer's (start, end) pairs (`return_offsets_mapping=True`)."""
    return [
        char_tag_ids[start] if start < end and 0 <= start < len(char_tag_ids) else IGNORE_INDEX
        for start, end in offsets
    ]


# --- human-annotated corpora -----------------------------------------------------------------------------------

_PD_LINE_ID = re.compile(r"^\d{8}-\d{2}-\d{3}-\d{3}/m$")


def parse_peoples_daily_line(line: str) -> list[tuple[str, str]]:
    """(word, flag) pairs of one People's Daily line: `word/flag` tokens separated by spaces, an optional leading
    line id (`19980101-01-001-001/m`), compounds in brackets (`[中国/ns  政府/n]nt`: the inner tags are kept)."""
    pairs = []
    for item in line.split():
        if _PD_LINE_ID.match(item):
            continue
        if item.startswith("[") and len(item) > 1:
            item = item[1:]
        close = item.rfind("]")
        if close > 0 and "/" in item[:close]:
            item = item[:close]  # `政府/n]nt`: drop the compound's tag
        word, sep, flag = item.rpartition("/")
        if not sep or not word:
            raise ValueError(f"not a word/tag token: {item!r} in {line[:80]!r}")
        pairs.append((word, flag))
    return pairs


def read_peoples_daily_pos(path: str | Path, limit: int | None = None) -> Iterator[tuple[str, list[str]]]:
    """(text, per-character coarse POS tags) for each non-empty line of the People's Daily 1998-01 corpus."""
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if limit is not None and n >= limit:
                return
            pairs = parse_peoples_daily_line(line)
            if not pairs:
                continue
            text = "".join(w for w, _ in pairs)
            yield text, [coarse_pos(flag) for w, flag in pairs for _ in w]
            n += 1


_NER_ALIASES = {"PER": "PER", "NR": "PER", "PERSON": "PER", "NAME": "PER",
                "LOC": "LOC", "NS": "LOC", "LOCATION": "LOC", "GPE": "LOC",
                "ORG": "ORG", "NT": "ORG", "ORGANIZATION": "ORG"}  # fmt: skip


def normalize_ner_tag(tag: str) -> str:
    """A BIO/BMES(O) tag from any common NER set as our B-/I- PER/LOC/ORG (other types -> O)."""
    prefix, sep, kind = tag.partition("-")
    if not sep:
        prefix, sep, kind = tag.partition("_")
    kind = _NER_ALIASES.get(kind.upper()) if sep else None
    if kind is None:
        return "O"
    return f"B-{kind}" if prefix.upper() in ("B", "S") else f"I-{kind}"


def _conll_sentences(f) -> Iterator[list[tuple[str, str]]]:
    sentence: list[tuple[str, str]] = []
    for line in f:
        line = line.rstrip("\n")
        if not line.strip():
            if sentence:
                yield sentence
            sentence = []
            continue
        char, _, tag = line.rpartition(" ")
        sentence.append((char or " ", tag))
    if sentence:
        yield sentence


def read_ner_bio(path: str | Path, limit: int | None = None) -> Iterator[tuple[str, list[str]]]:
    """(text, per-character BIO tags over PER/LOC/ORG) from a character-tagged NER file.

    Two layouts: UER's TSV (header `text_a<TAB>label`, characters and tags separated by spaces, e.g.
    `ner/msra_uer/dev.tsv`) and CoNLL (`char tag` per line, blank line between sentences, e.g.
    `ner/peoples_daily_ner/example.dev`). Tag sets with NR/NS/NT, PER/LOC/ORG or BMES prefixes are mapped.
    """
    n = 0
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        if first.rstrip("\n").split("\t") == ["text_a", "label"]:
            records: Iterable[tuple[list[str], list[str]]] = (
                (a.split(" "), b.split(" ")) for a, b in (line.rstrip("\n").split("\t") for line in f)
            )
        else:
            f.seek(0)
            records = (([c for c, _ in s], [t for _, t in s]) for s in _conll_sentences(f))
        for chars, tags in records:
            if limit is not None and n >= limit:
                return
            if len(chars) != len(tags) or any(len(c) != 1 for c in chars):
                raise ValueError(f"{path}: characters and tags do not pair up in {''.join(chars)[:80]!r}")
            yield "".join(chars), [normalize_ner_tag(t) for t in tags]
            n += 1


# --- agreement ------------------------------------------------------------------------------------------------


def entity_spans(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) of each BIO entity; an I- without a matching B- starts a new entity (conlleval)."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, t = tag.partition("-")
        if kind is not None and (prefix != "I" or t != kind):
            spans.add((start, i, kind))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            start, kind = i, t
    return spans


def _prf(correct: int, pred: int, gold: int) -> dict[str, float]:
    p = correct / pred if pred else 0.0
    r = correct / gold if gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def agreement(
    scheme: TagScheme | str, pairs: Iterable[tuple[str, Sequence[str]]], segmenter: Segmenter
) -> dict[str, object]:
    """How far the segmenter-derived tags of `scheme` agree with human tags, over (text, gold char tags) pairs.

    Always: `texts`, `chars`, `char_accuracy` and `per_tag` ({tag: {gold, pred, correct}} at character level).
    For schemes with B-/I- tags also entity-level exact-span `precision`/`recall`/`f1`, and `per_type`
    ({type: {gold, pred, correct, precision, recall, f1}}).
    """
    if isinstance(scheme, str):
        scheme = TAG_SCHEMES[scheme]
    texts = chars = same = 0
    gold_tags, pred_tags, right_tags = Counter(), Counter(), Counter()
    gold_ents, pred_ents, right_ents = Counter(), Counter(), Counter()
    bio = any(label.startswith("B-") for label in scheme.labels)
    for text, gold in pairs:
        if len(gold) != len(text):
            raise ValueError(f"{len(gold)} tags for {len(text)} characters: {text[:80]!r}")
        pred = scheme.char_tags(text, segmenter)
        texts += 1
        chars += len(text)
        for g, p in zip(gold, pred):
            gold_tags[g] += 1
            pred_tags[p] += 1
            if g == p:
                same += 1
                right_tags[g] += 1
        if bio:
            g_spans, p_spans = entity_spans(gold), entity_spans(pred)
            gold_ents.update(k for *_, k in g_spans)
            pred_ents.update(k for *_, k in p_spans)
            right_ents.update(k for *_, k in g_spans & p_spans)
    out: dict[str, object] = {"scheme": scheme.name, "texts": texts, "chars": chars,
                              "char_accuracy": same / chars if chars else 0.0}  # fmt: skip
    out["per_tag"] = {
        t: {"gold": gold_tags[t], "pred": pred_tags[t], "correct": right_tags[t]}
        for t in sorted(gold_tags.keys() | pred_tags.keys(), key=lambda t: -gold_tags[t])
    }
    if bio:
        out.update(_prf(sum(right_ents.values()), sum(pred_ents.values()), sum(gold_ents.values())))
        out["per_type"] = {
            k: {"gold": gold_ents[k], "pred": pred_ents[k], "correct": right_ents[k]}
            | _prf(right_ents[k], pred_ents[k], gold_ents[k])
            for k in sorted(gold_ents.keys() | pred_ents.keys())
        }
    return out
