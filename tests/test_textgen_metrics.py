"""Generation metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from mengzi.textgen.metrics import METRICS, keywords, lcs_length, rouge_l, rouge_n, score


def test_rouge_n_counts_characters_and_ignores_whitespace():
    # prediction 我 爱 北 京 (4 chars), reference 我 爱 天 安 门 (5): unigram overlap 2 -> P 2/4, R 2/5, F1 4/9
    assert rouge_n("我爱 北京", "我爱天安门", 1) == pytest.approx(4 / 9)
    # bigrams: 我爱 爱北 北京 vs 我爱 爱天 天安 安门 -> overlap 1, P 1/3, R 1/4, F1 2/7
    assert rouge_n("我爱北京", "我爱天安门", 2) == pytest.approx(2 / 7)
    # clipped counts: 的的的 vs 的 -> overlap 1, P 1/3, R 1 -> F1 1/2
    assert rouge_n("的的的", "的", 1) == pytest.approx(0.5)
    assert rouge_n("", "", 1) == 1.0 and rouge_n("我", "", 1) == 0.0


def test_rouge_l_uses_the_longest_common_subsequence():
    assert lcs_length("ABCBDAB", "BDCABA") == 4  # the textbook example (BCBA)
    # 孟子见梁惠王 vs 孟子见齐宣王: LCS 孟子见王 = 4 of 6 and 6 -> F1 4/6
    assert rouge_l("孟子见梁惠王", "孟子见齐宣王") == pytest.approx(4 / 6)
    # 3 of 3 predicted, 3 of 6 reference -> P 1, R 1/2 -> F1 2/3
    assert rouge_l("孟子王", "孟子见梁惠王") == pytest.approx(2 / 3)


def test_full_and_half_width_forms_are_the_same():
    assert METRICS["exact_match"](["水声学;FFT"], ["水声学；ＦＦＴ"]) == 1.0
    assert rouge_l("(甲)", "（甲）") == 1.0


def test_keyword_f1_micro_and_macro():
    assert keywords("水声学； FFT ;波束形成,,水声学") == {"水声学", "FFT", "波束形成"}
    predictions = ["甲；乙；丙", "丁"]
    references = ["甲；乙", "戊；己；庚"]
    # example 1: tp 2, predicted 3, gold 2 -> F1 0.8; example 2: tp 0 -> F1 0
    # micro: tp 2, predicted 4, gold 5 -> P 1/2, R 2/5 -> F1 4/9
    assert METRICS["keyword_f1"](predictions, references) == pytest.approx(4 / 9)
    assert METRICS["keyword_f1_macro"](predictions, references) == pytest.approx(0.4)


def test_bleu_is_sacrebleu_zh_over_100_and_exact_match():
    import sacrebleu

    predictions, references = ["今天天气很好", "孟子是思想家"], ["今天天气不错", "孟子是思想家"]
    expected = sacrebleu.corpus_bleu(predictions, [references], tokenize="zh").score / 100
    assert METRICS["bleu"](predictions, references) == pytest.approx(expected) and 0 < expected < 1
    assert METRICS["bleu"](references, references) == pytest.approx(1.0)
    # a perfect 4-gram match on the second pair only: the brevity penalty is 1, precisions by hand
    # unigrams: 4/6 + 6/6 -> 10/12; bigrams 3/5 + 5/5 -> 8/10; trigrams 2/4 + 4/4 -> 6/8; 4-grams 1/3 + 3/3 -> 4/6
    by_hand = math.exp(sum(math.log(p) for p in (10 / 12, 8 / 10, 6 / 8, 4 / 6)) / 4)
    assert expected == pytest.approx(by_hand)
    assert score(predictions, references, ["exact_match"]) == {"exact_match": 0.5}
    with pytest.raises(ValueError, match="unknown metric"):
        score(predictions, references, ["rouge-9"])
