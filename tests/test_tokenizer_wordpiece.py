"""WordPiece: ids equal transformers' BERT tokenizers on >=10k real lines; offsets map back into the raw text."""

from __future__ import annotations

import json
import unicodedata

import pytest
from transformers import AutoTokenizer, BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BasicTokenizer, BertTokenizerLegacy

from mengzi.tokenizer import load_tokenizer
from mengzi.tokenizer.wordpiece import read_vocab, save_wordpiece, train_wordpiece, wordpiece_tokenizer

EDGE_CASES = [
    "café Ａｂｃ１２３ \u3000x\u00a0y\u200bz 😀👍🏽 e\u0301 İstanbul ﬁne ①②",
    "\t\n  多个\u3000空格\r\n",
    "ＡＢＣ，。！？【】《》“”‘’",
    "백악봉 テスト ㈱ ℃ ½",
    "",
]


@pytest.fixture(scope="module")
def vocab_path(data):
    return data / "vocab/google_zh_vocab.txt"


@pytest.fixture(scope="module")
def ours(vocab_path):
    return wordpiece_tokenizer(vocab_path)


def test_real_lines_are_varied(lines):
    """The parity sample really holds the hard cases the issue names."""
    joined = "".join(lines)
    assert any("\u3000" in line for line in lines), "no ideographic space"
    assert any(unicodedata.category(ch) == "So" and ord(ch) > 0x1F000 for ch in joined), "no emoji"
    assert sum(ch.isascii() and ch.isalpha() for ch in joined) > 10_000, "too little Latin text"
    assert "，" in joined and "。" in joined and "０" <= max(joined)


def test_ids_equal_python_reference_and_stock_fast(ours, vocab_path, lines):
    reference = BertTokenizerLegacy(vocab_file=str(vocab_path))  # the pure-Python algorithm BERT shipped with
    stock = BertTokenizer(vocab=str(vocab_path))
    texts = lines + EDGE_CASES
    got = ours(texts)["input_ids"]
    assert got == stock(texts)["input_ids"]
    mismatches = [t for t, ids in zip(texts, got) if reference(t)["input_ids"] != ids]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} lines differ, e.g. {mismatches[:3]}"


def test_pair_encoding_equals_reference(ours, vocab_path, data):
    reference = BertTokenizerLegacy(vocab_file=str(vocab_path))
    pairs = [json.loads(line) for line in open(data / "clue/afqmc/dev.json", encoding="utf-8")][:500]
    for p in pairs:
        a = ours(p["sentence1"], p["sentence2"])
        b = reference(p["sentence1"], p["sentence2"], return_token_type_ids=True)  # v5 legacy omits them
        assert a["input_ids"] == b["input_ids"] and a["token_type_ids"] == b["token_type_ids"]


def _reference_normalize(text: str) -> str:
    """What BERT's basic tokenizer does to characters: drop controls/U+FFFD, lowercase, strip accents."""
    basic = BasicTokenizer(do_lower_case=True)
    return basic._run_strip_accents(basic._clean_text(text).lower()).replace(" ", "")


def test_offsets_map_back_exactly(ours, lines):
    """Per word: the tokens' pieces (## removed) concatenate to the normalised text under the word's span;
    spans are ordered and in range; every visible character is covered by some token."""
    texts = lines + EDGE_CASES
    enc = ours(texts, return_offsets_mapping=True, add_special_tokens=False)
    checked_words = 0
    for i, text in enumerate(texts):
        tokens = ours.convert_ids_to_tokens(enc["input_ids"][i])
        offsets = enc["offset_mapping"][i]
        words: dict[int, list[int]] = {}
        for t, w in enumerate(enc.word_ids(i)):
            words.setdefault(w, []).append(t)
        last_start = 0
        covered = [False] * len(text)
        for w, idx in words.items():
            start, end = offsets[idx[0]][0], offsets[idx[-1]][1]
            assert 0 <= start < end <= len(text) and start >= last_start, (text, w)
            last_start = start
            for s, e in (offsets[t] for t in idx):
                assert start <= s < e <= end
                covered[s:e] = [True] * (e - s)
            pieces = [tokens[t] for t in idx]
            if pieces == ["[UNK]"]:
                continue
            joined = "".join(p[2:] if p.startswith("##") else p for p in pieces)
            assert joined == _reference_normalize(text[start:end]), (text[start:end], pieces)
            checked_words += 1
        for pos, ch in enumerate(text):
            visible = not (ch.isspace() or unicodedata.category(ch)[0] in "CZ" or unicodedata.category(ch) == "Mn")
            assert covered[pos] or not visible or ch == "\ufffd", (text, pos, ch)
    assert checked_words > 500_000


def test_cmrc2018_answers_recovered_from_offsets(ours, data):
    """CMRC2018 span extraction: the tokens covering each answer's characters give back the answer text."""
    cmrc = json.loads((data / "clue/cmrc2018/dev.json").read_text(encoding="utf-8"))
    total = exact = 0
    for article in cmrc["data"]:
        for para in article["paragraphs"]:
            context = para["context"]
            offsets = ours(context, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
            for qa in para["qas"]:
                for ans in qa["answers"]:
                    s, text = ans["answer_start"], ans["text"]
                    if context[s:s + len(text)] != text:  # a few official answers carry a wrong start
                        continue
                    e = s + len(text)
                    inside = [(a, b) for a, b in offsets if a < e and b > s]
                    total += 1
                    exact += bool(inside) and context[inside[0][0]:inside[-1][1]] == text
    assert total > 9000
    # misses are answers that cut inside a word piece (e.g. "1999" inside "1999年" is fine, "19" is not)
    assert exact / total > 0.99, (exact, total)


def test_saved_folder_loads_with_auto_and_reference(ours, vocab_path, tmp_path, lines):
    save_wordpiece(ours, tmp_path / "tok")
    assert (tmp_path / "tok/vocab.txt").read_text(encoding="utf-8") == vocab_path.read_text(encoding="utf-8")
    auto = AutoTokenizer.from_pretrained(tmp_path / "tok")
    legacy = BertTokenizerLegacy(vocab_file=str(tmp_path / "tok/vocab.txt"))
    for text in lines[:300]:
        assert auto(text)["input_ids"] == ours(text)["input_ids"] == legacy(text)["input_ids"]
    assert auto.model_max_length == 512 and auto.pad_token_id == 0


def test_langboat_folder_with_only_vocab(vocab_path, tmp_path, ours):
    (tmp_path / "vocab.txt").write_bytes(vocab_path.read_bytes())
    tok = load_tokenizer(tmp_path)
    assert len(tok) == 21128 and tok.pad_token_id == 0 and tok.cls_token_id == 101 and tok.mask_token_id == 103
    assert tok("孟子模型")["input_ids"] == ours("孟子模型")["input_ids"]


def test_read_vocab_names_bad_line(tmp_path):
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n的\n的\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab.txt:7: token '的' repeats line 6"):
        read_vocab(bad)
    bad.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing BERT special tokens"):
        read_vocab(bad)


def test_train_domain_wordpiece(data, tmp_path):
    from mengzi.textfiles import iter_texts

    texts = list(iter_texts([data / "corpus/finance/FinRE/train.txt"]))[:5000]
    tok = train_wordpiece(texts, vocab_size=3000, show_progress=False)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]] == [0, 1, 2, 3, 4]
    assert len(vocab) <= 3000
    ids = tok("股票市场上涨")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "股", "票", "市", "场", "上", "涨", "[SEP]"]
    save_wordpiece(tok, tmp_path / "fin")
    assert AutoTokenizer.from_pretrained(tmp_path / "fin")("股票")["input_ids"] == tok("股票")["input_ids"]
