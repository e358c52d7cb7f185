"""Linguistic-injection labels: tag schemes, token alignment, the annotated-corpus readers, and how far
jieba-derived tags agree with People's Daily POS and MSRA NER (floors measured on the real files)."""

from __future__ import annotations

import pytest
from conftest import need_data

from mengzi.pretrain import linguistic as L
from mengzi.pretrain.linguistic import (
    IGNORE_INDEX,
    TAG_SCHEMES,
    agreement,
    coarse_pos,
    entity_spans,
    parse_peoples_daily_line,
    read_ner_bio,
    read_peoples_daily_pos,
    register_tag_scheme,
    token_tag_ids,
)
from mengzi.tokenizer.segment import get_segmenter

POS, NER = TAG_SCHEMES["pos"], TAG_SCHEMES["ner"]
PD_FILE = "ner/pos_peoples_daily_199801/199801.txt"
NER_FILE = "ner/msra_uer/dev.tsv"


@pytest.fixture(scope="module")
def jieba():
    return get_segmenter("jieba")


class Fixed:
    """A segmenter answering with given (word, flag) pairs, to test the alignment logic without jieba."""

    def __init__(self, pairs):
        self.pairs = pairs

    def cut(self, text):
        return [w for w, _ in self.pairs]

    def pos(self, text):
        return list(self.pairs)


def test_label_lists_are_closed_and_stable():
    assert POS.labels == ["n", "v", "a", "d", "m", "q", "r", "p", "c", "u", "x", "t", "f", "s", "e", "y", "o",
                          "i", "l", "j", "z", "b", "h", "k", "g", "eng"]  # fmt: skip
    assert NER.labels == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    assert POS.label2id["n"] == 0 and NER.label2id["I-ORG"] == 6
    assert POS.name == "pos" and NER.name == "ner"


@pytest.mark.parametrize(
    "flag, tag",
    [("n", "n"), ("nr", "n"), ("nrfg", "n"), ("nrt", "n"), ("Ng", "n"), ("vn", "v"), ("Vg", "v"), ("ad", "a"),
     ("mq", "m"), ("uj", "u"), ("Tg", "t"), ("w", "x"), ("x", "x"), ("eng", "eng"), ("nx", "eng"), ("", "x"),
     ("#", "x"), ("W", "x")],
)  # fmt: skip
def test_coarse_pos(flag, tag):
    assert coarse_pos(flag) == tag
    assert tag in POS.labels


def test_jieba_char_tags_handwritten(jieba):
    text = "我爱北京天安门"
    assert POS.char_tags(text, jieba) == ["r", "v", "n", "n", "n", "n", "n"]
    assert NER.char_tags(text, jieba) == ["O", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "I-LOC"]
    assert NER.char_tag_ids(text, jieba) == [0, 0, 3, 4, 3, 4, 4]
    assert NER.char_tags("习近平在北京大学讲话", jieba) == ["B-PER", "I-PER", "I-PER", "O", "B-ORG", "I-ORG", "I-ORG",
                                                        "I-ORG", "O", "O"]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["", " ", "  hello  world ", "我用iPhone 15 Pro拍了😀👨‍👩‍👧照片！", "１９９８年，ＣＰＵ　涨价", "a\tb\nc\r\n",
     "零\u200b宽\ufeff字符", "é 组合字符 e\u0301", "２０２４年３月", "中文English混合123.45%"],
)  # fmt: skip
def test_char_tags_one_per_character(jieba, text):
    for scheme in (POS, NER):
        tags = scheme.char_tags(text, jieba)
        assert len(tags) == len(text)
        assert set(tags) <= set(scheme.labels)
    for scheme in (POS, NER):
        assert len(scheme.char_tags(text, get_segmenter("char"))) == len(text)


def test_full_width_digits_are_folded_for_the_segmenter(jieba):
    # jieba only knows ASCII digits; without the fold "１９９８" would be four `x` characters
    assert POS.char_tags("１９９８年", jieba)[:4] == ["m"] * 4
    assert POS.char_tags("ＣＰＵ", jieba) == ["eng"] * 3


def test_char_tags_alignment_with_fixed_segmenter():
    # words may skip characters (a segmenter dropping spaces): uncovered characters get the default tag
    seg = Fixed([("张三", "nr"), ("去", "v"), ("上海", "ns"), ("。", "w")])
    assert POS.char_tags("张三 去上海。", seg) == ["n", "n", "x", "v", "n", "n", "x"]
    assert NER.char_tags("张三 去上海。", seg) == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]
    assert NER.char_tags("中国银行", Fixed([("中国银行", "nt")])) == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]
    assert POS.char_tags("x", Fixed([("x", "zzz-unknown")])) == ["z"]
    assert POS.char_tags("x", Fixed([("x", "?")])) == ["x"]


def test_token_tag_ids_with_handmade_offsets():
    tag_ids = POS.ids(["r", "v", "n", "n", "n", "n", "n", "x"])  # 我爱北京天安门！
    offsets = [(0, 0), (0, 1), (1, 2), (2, 4), (4, 7), (7, 8), (0, 0), (0, 0)]  # [CLS] ... [SEP] [PAD]
    r, v, n, x = (POS.label2id[t] for t in "rvnx")
    assert token_tag_ids(tag_ids, offsets) == [IGNORE_INDEX, r, v, n, n, x, IGNORE_INDEX, IGNORE_INDEX]
    # a multi-character token takes its first character's tag; offsets past the text are ignored
    assert token_tag_ids([1, 2, 3], [(1, 3), (2, 3), (3, 5), (5, 5)]) == [2, 3, -100, -100]
    assert token_tag_ids([], []) == []


def test_token_tag_ids_with_real_tokenizer(data, jieba):
    from mengzi.tokenizer import wordpiece_tokenizer

    tok = wordpiece_tokenizer(data / "vocab/google_zh_vocab.txt")
    text = "我爱北京天安门，unbelievable！"
    enc = tok(text, return_offsets_mapping=True)
    ids = token_tag_ids(NER.char_tag_ids(text, jieba), enc["offset_mapping"])
    tags = [NER.labels[i] if i != IGNORE_INDEX else None for i in ids]
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert len(ids) == len(tokens)
    assert tags[0] is None and tags[-1] is None  # [CLS], [SEP]
    assert tags[1:8] == ["O", "O", "B-LOC", "I-LOC", "B-LOC", "I-LOC", "I-LOC"]
    assert tags[8:-1] == ["O"] * (len(tokens) - 9)  # ，unbelievable！ in word pieces


PD_SAMPLE = """\
19980101-01-001-001/m  迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w  一九九八年/t  新年/t  讲话/n

19980101-01-001-006/m  在/p  [中国/ns  政府/n]nt  的/u  领导/vn  下/f  ，/w  江/nr  泽民/nr  说/v  １/m  张/q
香港/ns  ＣＰＵ/nx  １/２/m  们/k  好/Ag
"""


def test_peoples_daily_reader(tmp_path):
    path = tmp_path / "pd.txt"
    path.write_text(PD_SAMPLE, encoding="utf-8")
    got = list(read_peoples_daily_pos(path))
    assert [text for text, _ in got] == ["迈向充满希望的新世纪——一九九八年新年讲话",
                                         "在中国政府的领导下，江泽民说１张", "香港ＣＰＵ１/２们好"]  # fmt: skip
    for text, tags in got:
        assert len(tags) == len(text)
    assert got[0][1] == ["v"] * 4 + ["n", "n", "u", "a", "n", "n", "x", "x"] + ["t"] * 7 + ["n", "n"]
    assert got[1][1] == ["p", "n", "n", "n", "n", "u", "v", "v", "f", "x", "n", "n", "n", "v", "m", "q"]
    assert got[2][1] == ["n", "n", "eng", "eng", "eng", "m", "m", "m", "k", "a"]
    assert [t for t, _ in read_peoples_daily_pos(path, limit=2)] == [t for t, _ in got[:2]]
    assert parse_peoples_daily_line("[中国/ns  政府/n]nt") == [("中国", "ns"), ("政府", "n")]
    with pytest.raises(ValueError, match="not a word/tag token"):
        parse_peoples_daily_line("没有标注")


def test_ner_readers_both_layouts(tmp_path):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("text_a\tlabel\n张 三 在 北 京\tB-PER I-PER O B-LOC I-LOC\n好\tO\n", encoding="utf-8")
    conll = tmp_path / "example.dev"
    conll.write_text("张 B-NR\n三 I-NR\n在 O\n北 B-NS\n京 I-NS\n\n\n新 S-NT\n华 O\n社 B-TITLE\n", encoding="utf-8")
    assert list(read_ner_bio(tsv)) == [("张三在北京", ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]), ("好", ["O"])]
    assert list(read_ner_bio(tsv, limit=1)) == [("张三在北京", ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"])]
    assert list(read_ner_bio(conll)) == [("张三在北京", ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]),
                                         ("新华社", ["B-ORG", "O", "O"])]  # fmt: skip
    bad = tmp_path / "bad.tsv"
    bad.write_text("text_a\tlabel\n张 三\tB-PER\n", encoding="utf-8")
    with pytest.raises(ValueError, match="do not pair up"):
        list(read_ner_bio(bad))


def test_entity_spans():
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) == {(0, 2, "PER"), (3, 4, "LOC"),
                                                                                (4, 6, "LOC")}  # fmt: skip
    assert entity_spans(["I-ORG", "I-ORG", "I-PER", "O"]) == {(0, 2, "ORG"), (2, 3, "PER")}
    assert entity_spans(["O", "O"]) == set() and entity_spans([]) == set()


def test_agreement_counts_with_fixed_segmenter():
    seg = Fixed([("张三", "nr"), ("在", "p"), ("北京", "nr")])  # one right entity, one with the wrong type
    gold = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    result = agreement("ner", [("张三在北京", gold)], seg)
    assert result["texts"] == 1 and result["chars"] == 5
    assert result["char_accuracy"] == pytest.approx(3 / 5)
    assert (result["precision"], result["recall"], result["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert result["per_type"]["PER"] == {"gold": 1, "pred": 2, "correct": 1, "precision": 0.5, "recall": 1.0,
                                         "f1": pytest.approx(2 / 3)}  # fmt: skip
    assert result["per_type"]["LOC"]["recall"] == 0.0
    assert result["per_tag"]["B-LOC"] == {"gold": 1, "pred": 0, "correct": 0}
    pos = agreement(POS, [("张三在北京", ["n", "n", "p", "n", "n"])], seg)
    assert pos["char_accuracy"] == 1.0 and "f1" not in pos and pos["per_tag"]["n"]["correct"] == 4
    with pytest.raises(ValueError, match="2 tags for 5 characters"):
        agreement("pos", [("张三在北京", ["n", "n"])], seg)


def test_register_tag_scheme(monkeypatch):
    monkeypatch.setattr(L, "TAG_SCHEMES", dict(TAG_SCHEMES))

    @register_tag_scheme("word-start")
    class WordStart(L.TagScheme):
        labels = ["B", "I"]
        default = "B"

        def word_tags(self, word, flag):
            return ["B"] + ["I"] * (len(word) - 1)

    scheme = L.TAG_SCHEMES["word-start"]
    assert scheme.name == "word-start" and "word-start" not in TAG_SCHEMES
    assert scheme.char_tag_ids("北京 人", Fixed([("北京", "ns"), ("人", "n")])) == [0, 1, 0, 0]


# Measured on the real files (jieba 0.42.1): People's Daily first 300 lines, POS char accuracy 0.804; MSRA dev
# first 300 sentences, entity F1 0.536, char accuracy 0.924. Floors are a few points below; the char segmenter
# (every character `x`, no entities) scores ~0.09 and 0.0, so a broken alignment cannot pass.
POS_ACCURACY_FLOOR = 0.77
NER_F1_FLOOR = 0.48
NER_CHAR_ACCURACY_FLOOR = 0.90


def test_agreement_with_human_annotation(data, jieba):
    data = need_data(PD_FILE, NER_FILE)
    pos = agreement("pos", read_peoples_daily_pos(data / PD_FILE, limit=300), jieba)
    assert pos["texts"] == 300 and pos["chars"] > 20_000
    assert pos["char_accuracy"] > POS_ACCURACY_FLOOR, pos["char_accuracy"]
    assert pos["per_tag"]["x"]["correct"] / pos["per_tag"]["x"]["gold"] > 0.95  # punctuation is easy

    ner = agreement("ner", read_ner_bio(data / NER_FILE, limit=300), jieba)
    assert ner["texts"] == 300 and ner["per_type"]["PER"]["gold"] > 50
    assert ner["f1"] > NER_F1_FLOOR, ner["f1"]
    assert ner["char_accuracy"] > NER_CHAR_ACCURACY_FLOOR, ner["char_accuracy"]

    chars = agreement("pos", read_peoples_daily_pos(data / PD_FILE, limit=300), get_segmenter("char"))
    assert chars["char_accuracy"] < 0.2
