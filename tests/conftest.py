"""Shared fixtures. Integration tests read real data from ../shared/data (or $DATA): with CI=true a missing
folder fails the test; elsewhere it skips it with the same message."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DATA") or REPO.parent / "shared" / "data")


def need_data(*rel: str) -> Path:
    """The data folder, after checking `rel` paths exist; fail under CI, skip elsewhere."""
    missing = [r for r in rel if not (DATA / r).exists()]
    if missing or not DATA.is_dir():
        message = f"real data missing under {DATA}: {missing or 'the folder itself'} (see shared/data/SOURCES.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return DATA


@pytest.fixture(scope="session")
def data() -> Path:
    return need_data("vocab/google_zh_vocab.txt")


@pytest.fixture(autouse=True)
def _torch_on_one_thread():
    """Every test starts with torch on one thread: the tiny models here run as fast on one, two threads' OpenMP
    barriers stall badly when the two CI cores are shared, and code under test that sets its own count
    (`threads: 2`) must not leak it into the next test. Module-scoped fixtures run before this and set it
    themselves when they train."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _data_env(monkeypatch):
    """Library defaults (`data:...` specs) resolve against the same folder the tests use."""
    monkeypatch.setenv("DATA", str(DATA))


def _jsonl(path: Path, keys: tuple[str, ...]) -> list[str]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            out.extend(record[k] for k in keys if record.get(k))
    return out


def real_lines(data: Path, n: int = 12_000, seed: int = 0) -> list[str]:
    """`n` real lines from CLUE and the corpora: mixed Chinese/English/digits, full-width punctuation, emoji
    (Weibo), odd whitespace (news with U+3000, CMRC contexts with zero-width spaces), long documents."""
    pools: dict[str, list[str]] = {
        "afqmc": _jsonl(data / "clue/afqmc/dev.json", ("sentence1", "sentence2")),
        "tnews": _jsonl(data / "clue/tnews/dev.json", ("sentence", "keywords")),
        "iflytek": _jsonl(data / "clue/iflytek/test.json", ("sentence",)),
        "csl": _jsonl(data / "clue/csl/dev.json", ("abst",)),
        "ocnli": _jsonl(data / "clue/ocnli/dev.json", ("sentence1", "sentence2")),
        "cluewsc": _jsonl(data / "clue/cluewsc2020/dev.json", ("text",)),
        "mnbvc": [t[:2000] for t in _jsonl(data / "corpus/mnbvc_samples/MNBVC_news.jsonl", ("text",))],
    }
    cmrc = json.loads((data / "clue/cmrc2018/dev.json").read_text(encoding="utf-8"))
    pools["cmrc"] = [p["context"] for a in cmrc["data"] for p in a["paragraphs"]]
    pools["cmrc_q"] = [q["question"] for a in cmrc["data"] for p in a["paragraphs"] for q in p["qas"]]
    with open(data / "corpus/weibo_smp2020_ewect/usual/dev.tsv", encoding="utf-8") as f:
        pools["weibo"] = [line.rstrip("\n").split("\t", 1)[-1] for line in list(f)[1:]]
    with open(data / "corpus/uer_samples/news-commentary-v13-en-zh_sampled.txt", encoding="utf-8") as f:
        pools["en_zh"] = [side for line in f for side in line.rstrip("\n").split("\t")]
    with open(data / "corpus/uer_samples/CLUECorpusSmall_sampled.txt", encoding="utf-8") as f:
        pools["clue_corpus"] = [line.rstrip("\n") for line in f if line.strip()]
    rng = random.Random(seed)
    per_pool = n // len(pools) + 1
    lines = []
    for name in sorted(pools):
        pool = pools[name]
        lines.extend(rng.sample(pool, min(per_pool, len(pool))))
    rng.shuffle(lines)
    return lines


@pytest.fixture(scope="session")
def lines(data) -> list[str]:
    need_data("clue/cmrc2018/dev.json", "corpus/uer_samples", "corpus/weibo_smp2020_ewect", "corpus/mnbvc_samples")
    out = real_lines(data)
    assert len(out) >= 10_000
    return out


@pytest.fixture(scope="session")
def t5_tokenizer_dir(tmp_path_factory, data) -> Path:
    """A small T5-layout SentencePiece tokenizer trained on real corpus text (a few seconds)."""
    from mengzi.textfiles import iter_texts
    from mengzi.tokenizer.sentencepiece import train_sentencepiece

    out = tmp_path_factory.mktemp("t5tok")
    texts = iter_texts([data / "corpus/uer_samples/CLUECorpusSmall_sampled.txt"])
    train_sentencepiece(texts, out, kind="t5", vocab_size=8128)
    return out
