"""CLUE metrics against cases worked out by hand, following CLUE's official cmrc2018_evaluate.py line by line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mengzi.finetune.metrics import (
    METRICS,
    accuracy,
    cmrc2018_em,
    cmrc2018_f1,
    cmrc2018_scores,
    find_lcs,
    mixed_segmentation,
    remove_punctuation,
    treebank_tokenize,
)


def test_accuracy_is_a_percentage_over_labelled_examples():
    # labels -1 are unlabelled: 2 of the 3 labelled predictions are right -> 66.67
    assert accuracy([1, 0, 2, 1], [1, -1, 2, 0]) == pytest.approx(200 / 3)
    assert accuracy(["entailment", "neutral"], ["entailment", "neutral"]) == 100.0
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="no labelled"):
        accuracy([1], [-1])


def test_registry_has_one_entry_a_metric():
    assert METRICS["accuracy"] is accuracy
    assert METRICS["cmrc2018"] is cmrc2018_scores


@pytest.mark.parametrize("text, tokens", [
    ("2019年", ["2019", "年"]),                 # digits are one run, the CJK character stands alone
    ("北京大学", ["北", "京", "大", "学"]),
    ("2019年3.5亿", ["2019", "年", "3.5", "亿"]),  # decimals stay whole
    ("1,000元", ["1,000", "元"]),               # thousands separators stay inside the number
    ("增长50%", ["增", "长", "50", "%"]),        # percent is split off
    ("  Michael Jordan ", ["michael", "jordan"]),  # lowercased and stripped
    ("光荣和ω-force", ["光", "荣", "和", "ω", "-", "force"]),  # '-' is official punctuation: its own token
    ("《红楼梦》", ["《", "红", "楼", "梦", "》"]),
])  # fmt: skip
def test_mixed_segmentation(text, tokens):
    assert mixed_segmentation(text) == tokens


def test_mixed_segmentation_rm_punc_drops_marks_without_ending_the_run():
    # the official loop `continue`s before flushing the English run, so the pieces join
    assert mixed_segmentation("光荣和ω-force", rm_punc=True) == ["光", "荣", "和", "ω" + "force"]
    assert mixed_segmentation("《红楼梦》", rm_punc=True) == ["红", "楼", "梦"]


def test_two_character_ellipsis_entry_never_matches_as_in_the_official_script():
    # '……' is a single 2-char list entry; the char-by-char test never matches it, so it is kept
    assert remove_punctuation("好……") == "好……"
    assert mixed_segmentation("好……", rm_punc=True) == ["好", "……"]
    assert cmrc2018_em(["好"], "好……") == 0


@pytest.mark.parametrize("run, tokens", [
    # each expectation checked against nltk 3.10 NLTKWordTokenizer (what nltk.word_tokenize applies per sentence)
    ("3.5", ["3.5"]), ("1,000", ["1,000"]), ("50%", ["50", "%"]), ("$100", ["$", "100"]),
    ("u.s.", ["u.s", "."]), ("hello world.", ["hello", "world", "."]), ("e.g. the", ["e.g.", "the"]),
    ("don't", ["do", "n't"]), ("it's", ["it", "'s"]), ("a,b", ["a", ",", "b"]), ("(abc)", ["(", "abc", ")"]),
    ('"abc"', ["``", "abc", "''"]), ("'quoted'", ["'", "quoted", "'"]), ("why?", ["why", "?"]),
])  # fmt: skip
def test_treebank_tokenize_matches_nltk_on_the_cases_that_matter(run, tokens):
    assert treebank_tokenize(run) == tokens


def test_find_lcs_is_the_longest_common_substring_not_subsequence():
    # common subsequence a,b,d,e has length 4, but the longest contiguous run is a,b
    assert find_lcs(list("abcxde"), list("abde")) == (["a", "b"], 2)
    assert find_lcs([], ["a"]) == ([], 0)
    assert find_lcs(["北", "京"], ["上", "海"]) == ([], 0)


def test_f1_by_hand():
    # ref 北京大学 (4 tokens), pred 北京 (2): LCS 2, P = 2/2 = 1, R = 2/4 = 0.5, F1 = 2*1*0.5/1.5 = 0.667
    assert cmrc2018_f1(["北京大学"], "北京") == pytest.approx(2 / 3)
    # pred 北京大学的 (5): LCS 4, P = 0.8, R = 1, F1 = 1.6/1.8 = 0.889
    assert cmrc2018_f1(["北京大学"], "北京大学的") == pytest.approx(8 / 9)
    # ref "michael jordan" = [michael, jordan], pred [jordan]: LCS 1, P 1, R 0.5 -> 0.667
    assert cmrc2018_f1(["Michael Jordan"], "JORDAN") == pytest.approx(2 / 3)
    # nothing in common
    assert cmrc2018_f1(["北京"], "上海") == 0.0
    assert cmrc2018_f1(["北京"], "") == 0.0


def test_punctuation_and_case_are_ignored():
    assert cmrc2018_em(["《红楼梦》"], "红楼梦") == 1
    assert cmrc2018_f1(["《红楼梦》"], "红楼梦") == 1.0
    assert cmrc2018_em(["NBA"], " nba ") == 1
    assert cmrc2018_em(["北京"], "北 京") == 0  # inner spaces are not punctuation: EM differs ...
    assert cmrc2018_f1(["北京"], "北 京") == 1.0  # ... while the segments are identical


def test_multiple_references_take_the_max():
    # vs 北京大学: F1 0.667, EM 0; vs 北京: F1 1, EM 1
    assert cmrc2018_f1(["北京大学", "北京"], "北京") == 1.0
    assert cmrc2018_em(["北京大学", "北京"], "北京") == 1
    # vs 北京大学 0.667, vs 清华大学 (LCS 大学: P 1, R 0.5) 0.667, max 0.667
    assert cmrc2018_f1(["北京大学", "清华大学"], "北京") == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        cmrc2018_f1([], "北京")


def test_corpus_scores_count_unanswered_questions_as_zero():
    references = {"q1": ["北京大学"], "q2": ["《红楼梦》"], "q3": ["1,000元"], "q4": ["上海"]}
    predictions = {"q1": "北京", "q2": "红楼梦", " q3 ": "1,000元", "unknown": "x"}  # q4 unanswered
    # EM: 0 + 1 + 1 + 0 = 2 of 4 -> 50; F1: 0.667 + 1 + 1 + 0 = 2.667 of 4 -> 66.67
    scores = cmrc2018_scores(predictions, references)
    assert scores["em"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 2) / 4)
    assert scores["average"] == pytest.approx((scores["em"] + scores["f1"]) / 2)
    assert (scores["total"], scores["answered"]) == (4, 3)
    assert cmrc2018_scores({}, {})["total"] == 0


def test_metrics_and_spans_import_without_torch():
    code = "import sys, mengzi.finetune.metrics, mengzi.finetune.spans; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True)
