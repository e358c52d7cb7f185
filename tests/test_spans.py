"""CMRC2018 windows and span decoding with the real 21128-entry Chinese vocab, then an oracle round trip on real
CMRC2018 dev questions: gold positions -> logits -> decoded text -> official EM."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import need_data

import mengzi.data
from mengzi.finetune.metrics import cmrc2018_scores
from mengzi.finetune.spans import CLS_INDEX, decode_spans, locate_answer, prepare_span_features
from mengzi.tokenizer import load_tokenizer

QUESTION = "苹果公司哪一年营收3.5亿元？"
# 30 numbered sentences mixing CJK, digits, decimals and English; every "第N段" is unique
CONTEXT = "".join(f"第{i}段：2019年营收3.5亿元，Apple公司发布了iPhone {i}代。" for i in range(30))


@pytest.fixture(scope="module")
def tokenizer(data):
    return load_tokenizer(mengzi.data.resolve("data:vocab/google_zh_vocab.txt", data))


def context_token_offsets(tokenizer, context):
    return [tuple(o) for o in tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]


def window_context(features, window):
    return [o for o in features["offset_mapping"][window] if o is not None]


def test_windows_cover_the_context_and_step_by_doc_stride(tokenizer):
    features = prepare_span_features(tokenizer, [QUESTION], [CONTEXT], max_length=64, doc_stride=20)
    all_offsets = context_token_offsets(tokenizer, CONTEXT)
    windows = [window_context(features, w) for w in range(len(features["input_ids"]))]
    assert len(windows) >= 3 and set(features["example_index"]) == {0}
    # every window is a contiguous run of the context's own tokens, each starting doc_stride tokens after the last
    firsts = [all_offsets.index(w[0]) for w in windows]
    for first, window in zip(firsts, windows):
        assert window == all_offsets[first : first + len(window)]
    assert all(b - a == 20 for a, b in zip(firsts, firsts[1:]))
    room = 64 - 3 - len(tokenizer(QUESTION, add_special_tokens=False)["input_ids"])
    assert all(len(w) == room for w in windows[:-1]) and len(windows[-1]) <= room
    assert all(len(ids) <= 64 for ids in features["input_ids"])
    # so consecutive windows overlap by room - doc_stride tokens, and together they hold every character
    assert len(set(windows[0]) & set(windows[1])) == room - 20
    covered = {c for w in windows for start, end in w for c in range(start, end)}
    assert {i for i, ch in enumerate(CONTEXT) if not ch.isspace()} <= covered
    assert windows[-1][-1] == all_offsets[-1]


def test_doc_stride_beyond_the_window_gives_adjacent_windows(tokenizer):
    features = prepare_span_features(tokenizer, [QUESTION], [CONTEXT], max_length=64, doc_stride=1000)
    windows = [window_context(features, w) for w in range(len(features["input_ids"]))]
    assert [o for w in windows for o in w] == context_token_offsets(tokenizer, CONTEXT)  # no overlap, no gap


def test_answer_positions_in_every_window(tokenizer):
    text = "第17段：2019年营收3.5亿元"
    start = CONTEXT.index(text)
    features = prepare_span_features(tokenizer, [QUESTION], [CONTEXT], max_length=64, doc_stride=16,
                                     answers=[{"text": [text], "answer_start": [start]}])  # fmt: skip
    inside = 0
    for window, offsets in enumerate(features["offset_mapping"]):
        s, e = features["start_positions"][window], features["end_positions"][window]
        context = window_context(features, window)
        holds_answer = context[0][0] <= start and context[-1][1] >= start + len(text)
        if holds_answer:
            inside += 1
            assert CONTEXT[offsets[s][0] : offsets[e][1]] == text
        else:
            assert (s, e) == (CLS_INDEX, CLS_INDEX)
    assert 2 <= inside < len(features["input_ids"])  # the answer sits in several overlapping windows, not all


def test_misplaced_answer_start_is_found_by_text_nearby():
    context = "北京大学在北京，北京大学很大。"
    assert locate_answer(context, "北京大学", 0) == 0
    assert locate_answer(context, "北京大学", 7) == 8  # off by one, the nearer occurrence wins
    assert locate_answer(context, "上海", 3) == -1
    assert locate_answer(context, "", 0) == -1  # an empty answer is no answer: its positions go to CLS


def test_odd_inputs(tokenizer):
    questions = ["最后一个字是什么？", "有答案吗？", "多少亿？", "问" * 100, "没有答案？"]
    contexts = ["答案在最后：末", "", "公司2019年3.5亿元收入", "短文。", "有字的上下文"]
    answers = [{"text": ["末"], "answer_start": [6]}, {"text": [""], "answer_start": [0]},
               {"text": ["3.5亿"], "answer_start": [7]}, {"text": ["短文"], "answer_start": [0]},
               {"text": [""], "answer_start": [0]}]  # fmt: skip
    features = prepare_span_features(tokenizer, questions, contexts, max_length=32, answers=answers,
                                     max_question_length=8)  # fmt: skip
    assert features["example_index"] == [0, 1, 2, 3, 4]
    assert features["start_positions"][4] == features["end_positions"][4] == CLS_INDEX
    last_char = features["offset_mapping"][0][features["end_positions"][0]]
    assert contexts[0][last_char[0] : last_char[1]] == "末"
    assert window_context(features, 1) == [] and features["start_positions"][1] == CLS_INDEX  # empty context
    s, e = features["start_positions"][2], features["end_positions"][2]
    assert contexts[2][features["offset_mapping"][2][s][0] : features["offset_mapping"][2][e][1]] == "3.5亿"
    assert features["token_type_ids"][3].count(0) == 1 + 8 + 1  # [CLS] + 8 question tokens + [SEP]

    results = decode_spans(*peaked_logits(features, {2: (s, e)}), features, contexts)
    assert results[2]["text"] == "3.5亿"
    assert results[1] == {"text": "", "score": float("-inf"), "n_best": []}  # nothing to choose from

    empty = prepare_span_features(tokenizer, [], [], answers=[])
    assert set(empty) >= {"input_ids", "offset_mapping", "example_index", "start_positions"}
    assert not any(empty.values()) and decode_spans([], [], empty, []) == []


def peaked_logits(features, peaks, base=0.0, height=10.0):
    """Per-window logits at `base` with start/end `height` at the {window: (start, end)} positions."""
    starts = [np.full(len(ids), base) for ids in features["input_ids"]]
    ends = [np.full(len(ids), base) for ids in features["input_ids"]]
    for window, (s, e) in peaks.items():
        starts[window][s] += height
        ends[window][e] += height
    return starts, ends


def test_decode_recovers_the_peaked_span_and_respects_the_rules(tokenizer):
    contexts = ["上海是中国的经济中心，2019年GDP达到3.8万亿元。"]
    features = prepare_span_features(tokenizer, ["上海的GDP是多少？"], contexts)
    offsets = features["offset_mapping"][0]
    token_of = {offsets[i][0]: i for i in range(len(offsets)) if offsets[i] is not None}
    answer_start = contexts[0].index("3.8万亿元")
    span = (token_of[answer_start], token_of[answer_start + len("3.8万亿")])
    starts, ends = peaked_logits(features, {0: span})
    best = decode_spans(starts, ends, features, contexts)[0]
    assert best["text"] == "3.8万亿元" and best["score"] == pytest.approx(20.0)
    assert best["n_best"][0] == {"text": "3.8万亿元", "score": best["score"], "start": answer_start,
                                 "end": answer_start + len("3.8万亿元")}  # fmt: skip
    assert [c["score"] for c in best["n_best"]] == sorted((c["score"] for c in best["n_best"]), reverse=True)
    assert len({(c["start"], c["end"]) for c in best["n_best"]}) == len(best["n_best"]) <= 20

    # the peaked span is 6 tokens (3 . 8 万 亿 元): too long for max_answer_length=5, so another span wins
    shorter = decode_spans(starts, ends, features, contexts, max_answer_length=5)[0]
    assert shorter["text"] != "3.8万亿元" and all(c["text"] != "3.8万亿元" for c in shorter["n_best"])

    # huge logits on the question and special tokens are never chosen
    for window_starts, window_ends, window_offsets in zip(starts, ends, features["offset_mapping"]):
        for i, offset in enumerate(window_offsets):
            if offset is None:
                window_starts[i] = window_ends[i] = 1e6
    assert decode_spans(starts, ends, features, contexts)[0]["text"] == "3.8万亿元"

    # a padded 2-D array whose pad columns carry the largest logits decodes the same
    width = len(starts[0]) + 7
    padded_starts = np.full((1, width), 1e9)
    padded_ends = np.full((1, width), 1e9)
    padded_starts[0, : len(starts[0])] = starts[0]
    padded_ends[0, : len(ends[0])] = ends[0]
    assert decode_spans(padded_starts, padded_ends, features, contexts)[0]["text"] == "3.8万亿元"


def test_decode_picks_the_best_span_across_windows(tokenizer):
    features = prepare_span_features(tokenizer, [QUESTION], [CONTEXT], max_length=64, doc_stride=48)
    assert len(features["input_ids"]) >= 3

    def span_in(window, text):  # the token span of `text` in one window
        offsets = features["offset_mapping"][window]
        start = CONTEXT.index(text)
        first = next(i for i, o in enumerate(offsets) if o is not None and o[0] == start)
        last = next(i for i, o in enumerate(offsets) if o is not None and o[1] == start + len(text))
        return first, last

    weak, strong = window_context(features, 0), window_context(features, 2)
    weak_text = CONTEXT[weak[2][0] : weak[4][1]]
    strong_text = CONTEXT[strong[5][0] : strong[7][1]]
    starts, ends = peaked_logits(features, {0: span_in(0, weak_text)}, height=5.0)
    strong_starts, strong_ends = peaked_logits(features, {2: span_in(2, strong_text)}, height=8.0)
    starts[2], ends[2] = strong_starts[2], strong_ends[2]
    result = decode_spans(starts, ends, features, [CONTEXT])[0]
    assert result["text"] == strong_text and result["score"] == pytest.approx(16.0)
    assert weak_text in [c["text"] for c in result["n_best"]]


def test_oracle_logits_on_real_cmrc2018_dev_decode_to_the_answers(tokenizer):
    data = need_data("clue/cmrc2018/dev.json")
    dataset = json.loads((data / "clue/cmrc2018/dev.json").read_text(encoding="utf-8"))
    examples = [(p["context"], q) for a in dataset["data"] for p in a["paragraphs"] for q in p["qas"]]
    examples = examples[::64][:50]  # 50 questions spread over the whole dev set
    contexts = [context for context, _ in examples]
    answers = [{"text": [a["text"] for a in q["answers"]], "answer_start": [a["answer_start"] for a in q["answers"]]}
               for _, q in examples]  # fmt: skip
    features = prepare_span_features(tokenizer, [q["question"] for _, q in examples], contexts, answers=answers)
    assert len(features["input_ids"]) > len(examples)  # some contexts need several 512-token windows

    # oracle logits: the gold start/end of every window that holds the answer (windows without it stay flat)
    peaks = {w: (s, e) for w, (s, e) in enumerate(zip(features["start_positions"], features["end_positions"]))
             if s != CLS_INDEX}  # fmt: skip
    results = decode_spans(*peaked_logits(features, peaks), features, contexts)
    predictions = {q["id"]: result["text"] for (_, q), result in zip(examples, results)}
    references = {q["id"]: [a["text"] for a in q["answers"]] for _, q in examples}
    scores = cmrc2018_scores(predictions, references)
    # EM 98.0 here: 49 of 50. The miss (DEV_353_QUERY_1) has a 71-token gold answer, beyond max_answer_length=64.
    # On the full dev set (3,219 questions) the same round trip gives EM 99.72: 8 answers longer than 64 tokens
    # and one ("4个" inside the WordPiece "34") that cuts a token in half. The 3 dev answers whose answer_start is
    # off by one or two characters are found by text and decode correctly.
    assert scores["total"] == scores["answered"] == 50
    assert scores["em"] >= 95.0, scores
    for (_, q), result in zip(examples, results):
        if result["text"] not in references[q["id"]]:
            gold = q["answers"][0]["text"]
            assert len(tokenizer(gold, add_special_tokens=False)["input_ids"]) > 64, (q["id"], result["text"], gold)
