"""Object tags for Oscar in Chinese: a curated English->Chinese map (`tags_en_zh.tsv`, package data).

Detectors trained on COCO / Visual Genome name objects in English; Mengzi-Oscar reads Chinese, so tags are mapped
through a hand-curated table (the 80 COCO categories, frequent Visual Genome objects and attributes, and the
synthetic-scene shapes). Tags already written in Chinese pass through unchanged.

Unknown English tags are KEPT by default (`unknown="keep"`): the Chinese BERT vocab has English word pieces, so
an unmapped tag still carries information, and silently dropping it would hide a gap in the map. `unknown="drop"`
leaves them out, `unknown="error"` raises a ValueError naming the tags and the map file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ...tabular import DataError, read_text

TAG_MAP_FILE = Path(__file__).with_name("tags_en_zh.tsv")
UNKNOWN_POLICIES = ("keep", "drop", "error")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def read_tag_map(path: str | Path = TAG_MAP_FILE) -> dict[str, str]:
    """english -> chinese from a `english<TAB>chinese` file (# comments; UTF-8, a BOM and CRLF accepted); a
    malformed line is a `DataError` naming the file and line."""
    path = Path(path)
    table: dict[str, str] = {}
    for number, line in enumerate(read_text(path).split("\n"), start=1):  # lines end at \n only: U+2028 is text
        line = line.removesuffix("\r")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError(f"{path}:{number}: expected 'english<TAB>chinese', got {line!r:.80}")
        english = normalise_tag(parts[0])
        if english in table:
            raise DataError(f"{path}:{number}: tag {english!r} is mapped twice")
        table[english] = parts[1].strip()
    return table


@lru_cache(maxsize=1)
def default_tag_map() -> dict[str, str]:
    return read_tag_map(TAG_MAP_FILE)


def normalise_tag(tag: str) -> str:
    return " ".join(tag.strip().lower().replace("_", " ").split())


def to_chinese(tags: list[str], unknown: str = "keep", table: dict[str, str] | None = None) -> list[str]:
    """Map English tags to Chinese (Chinese tags pass through), in order; repeated objects stay repeated, as a
    detector lists them."""
    if unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown={unknown!r}; choose one of {UNKNOWN_POLICIES}")
    table = default_tag_map() if table is None else table
    out: list[str] = []
    missing: list[str] = []
    for tag in tags:
        if _CJK.search(tag):
            mapped = tag.strip()
        else:
            mapped = table.get(normalise_tag(tag))
            if mapped is None:
                missing.append(tag)
                if unknown != "keep":
                    continue
                mapped = normalise_tag(tag)
        out.append(mapped)
    if missing and unknown == "error":
        raise ValueError(f"tags {missing} are not in the English->Chinese tag map {TAG_MAP_FILE}; add them there "
                         "or pass unknown='keep'/'drop'")
    return out


def coverage(concepts: list[str], table: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """How many Chinese `concepts` the map produces (e.g. COCO-CN's 655 tags), and the ones it does not."""
    values = set((default_tag_map() if table is None else table).values())
    missing = [c for c in concepts if c not in values]
    return len(concepts) - len(missing), missing
