"""Where the public data lives, and what to tell a user whose copy is missing.

Everything that reads `../shared/data`-style files (default vocab, corpora, CLUE releases) resolves paths here, so
a missing file always produces the same clear message: which file, where it was looked for, and where to get it.
The folder comes from `--data`, else `$DATA`, else `../shared/data` (relative to the working directory).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA = "../shared/data"

# First path component (or exact file) -> where a user gets it. Kept short: one line a source.
SOURCES = {
    "vocab/google_zh_vocab.txt": "the 21128-entry Chinese BERT vocab: `vocab.txt` of bert-base-chinese or "
    "Langboat/mengzi-bert-base (https://huggingface.co/Langboat/mengzi-bert-base/blob/main/vocab.txt)",
    "vocab": "vocab files: google_zh_vocab.txt (bert-base-chinese vocab.txt), SentencePiece models such as "
    "chinese_xlnet_spiece.model (https://github.com/ymcui/Chinese-XLNet)",
    "corpus": "plain Chinese text, one document per line, e.g. CLUECorpusSmall samples "
    "(https://github.com/CLUEbenchmark/CLUECorpus2020) or any .txt/.jsonl you own",
    "clue": "the official CLUE release zips, unpacked one folder a task "
    "(https://github.com/CLUEbenchmark/CLUE: afqmc_public.zip, tnews_public.zip, ...)",
    "fewclue": "FewCLUE datasets (https://github.com/CLUEbenchmark/FewCLUE/tree/main/datasets)",
    "ner": "NER corpora: CLUENER2020 (https://github.com/CLUEbenchmark/CLUENER2020), People's Daily, MSRA",
    "multimodal": "caption text: Flickr8K-CN (https://github.com/li-xirong/flickr8kcn), COCO-CN",
}


class MissingDataError(FileNotFoundError):
    """A file under the data folder is missing; the message says what it is and where to get it."""


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder: `override`, else `$DATA`, else `../shared/data`."""
    return Path(override or os.environ.get("DATA") or DEFAULT_DATA).expanduser()


def where_to_get(relpath: str) -> str:
    """A one-line hint for a path relative to the data folder."""
    rel = relpath.strip("/")
    if rel in SOURCES:
        return SOURCES[rel]
    return SOURCES.get(rel.split("/", 1)[0], "see shared/data/SOURCES.md in the mengzi repository")


def require(relpath: str, data: str | os.PathLike | None = None) -> Path:
    """Path of `relpath` under the data folder; raises `MissingDataError` naming file, folder and source."""
    import glob

    root = data_dir(data)
    path = root / relpath
    if path.exists() or (any(c in relpath for c in "*?[") and glob.glob(str(path), recursive=True)):
        return path
    raise MissingDataError(
        f"missing data file: {path}\n"
        f"  looked in the data folder {root.resolve()} (set DATA=... or --data to point elsewhere)\n"
        f"  what it is and where to get it: {where_to_get(relpath)}\n"
        f"  put it at: {path.resolve()}"
    )


def resolve(spec: str, data: str | os.PathLike | None = None) -> Path:
    """A user-given path, where `data:REL` means REL under the data folder (used by presets and recipes)."""
    if spec.startswith("data:"):
        return require(spec[len("data:") :], data)
    return Path(spec).expanduser()
