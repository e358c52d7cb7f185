"""Corpus normaliser rules, word segmentation, word->token alignment for whole-word masking."""

from __future__ import annotations

import pytest

from mengzi.tokenizer import (
    Normalizer,
    NormalizerConfig,
    align_words_to_tokens,
    get_segmenter,
    register_segmenter,
    split_sentences,
    word_spans,
)
from mengzi.tokenizer.segment import SEGMENTERS


@pytest.mark.parametrize("rule, raw, cleaned", [
    ("strip_html", "<p>孟子&amp;荀子</p><!-- x --><br/>", " 孟子&荀子   "),
    ("strip_urls", "详见https://example.com/a?b=1，或www.langboat.com。", "详见，或。"),
    ("strip_emails", "联系 zhang.san@mail.example.cn 即可", "联系  即可"),
    ("strip_control", "零\u200b宽\x07字符\t和\n换行", "零宽字符\t和\n换行"),
    ("fullwidth_to_halfwidth", "ＡＢＣ１２３，！\u3000ｘ", "ABC123,! x"),
    ("traditional_to_simplified", "學習機器翻譯與臺灣", "学习机器翻译与台湾"),
    ("collapse_whitespace", "  多个   空格\t\t在这 \n 行首 ", "多个 空格 在这\n行首"),
])
def test_each_rule_alone(rule, raw, cleaned):
    config = NormalizerConfig.off()
    assert Normalizer(config)(raw) == raw  # off means off
    setattr(config, rule, True)
    assert Normalizer(config)(raw) == cleaned


def test_pretraining_defaults_chain_all_rules():
    text = "<b>網頁</b> 請訪問 http://x.cn ，ＡＢ  郵箱a@b.com"
    assert Normalizer()(text) == "网页 请访问 ,AB 邮箱"
    assert not Normalizer(NormalizerConfig.off()).active and Normalizer().active


def test_jieba_words_and_pos_cover_the_text():
    seg = get_segmenter("jieba")
    text = "孟子模型由澜舟科技发布，Mengzi-BERT 在 CLUE 上表现很好。"
    words = seg.cut(text)
    assert "".join(words) == text and "孟子" in words
    tagged = seg.pos("我爱北京天安门")
    assert tagged == [("我", "r"), ("爱", "v"), ("北京", "ns"), ("天安门", "ns")]


def test_user_dictionary_is_per_instance(tmp_path):
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("澜舟科技 100 nt\n", encoding="utf-8")
    assert "澜舟科技" in get_segmenter("jieba", user_dict=str(user_dict)).cut("澜舟科技发布孟子")
    assert "澜舟科技" not in get_segmenter("jieba").cut("澜舟科技发布孟子")


def test_pluggable_segmenter():
    @register_segmenter("by-space")
    class BySpace:
        def cut(self, text):
            return [w for part in text.split(" ") for w in (part, " ")][:-1]

        def pos(self, text):
            return [(w, "x") for w in self.cut(text)]

    try:
        assert get_segmenter("by-space").cut("a bc") == ["a", " ", "bc"]
    finally:
        del SEGMENTERS["by-space"]
    with pytest.raises(KeyError, match="unknown segmenter 'nope'"):
        get_segmenter("nope")


def test_whole_word_alignment_with_real_tokenizer(data):
    from mengzi.tokenizer import wordpiece_tokenizer

    tok = wordpiece_tokenizer(data / "vocab/google_zh_vocab.txt")
    text = "我爱北京天安门，unbelievable！"
    enc = tok(text, return_offsets_mapping=True)
    words = get_segmenter("jieba").cut(text)
    ids = align_words_to_tokens(word_spans(text, words), enc["offset_mapping"])
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    grouped: dict[int, list[str]] = {}
    for t, w in zip(tokens, ids):
        if w is not None:
            grouped.setdefault(w, []).append(t)
    assert ids[0] is None and ids[-1] is None  # [CLS], [SEP]
    assert [grouped[i] for i in sorted(grouped)] == [
        ["我"], ["爱"], ["北", "京"], ["天", "安", "门"], ["，"], ["u", "##n", "##bel", "##ie", "##va", "##ble"], ["！"]]


def test_word_spans_errors_name_the_word():
    with pytest.raises(ValueError, match="word '乙' not found"):
        word_spans("甲丙", ["甲", "乙"])


def test_split_sentences_keeps_closing_quotes():
    text = "他说：“你好！”然后走了。真的吗？是的……\n新段落"
    assert split_sentences(text) == ["他说：“你好！”", "然后走了。", "真的吗？", "是的……", "新段落"]
