"""CLUE metrics in pure Python: accuracy for the classification tasks, and CMRC2018 EM/F1 exactly as CLUE's official
`cmrc2018_evaluate.py` (v5) computes them, so dev scores here are comparable with the leaderboard and with the
numbers Langboat quotes. No torch: the deployment runtime shares this module.

All scores are percentages (0-100), the scale of the CLUE leaderboard and of Langboat's tables.

The one deliberate departure from the official script: it splits runs of non-Chinese text with
`nltk.word_tokenize`, which needs nltk and its downloaded punkt model. `treebank_tokenize` below re-implements the
Treebank word rules that matter for CMRC answers (checked against nltk 3.10's `NLTKWordTokenizer`):
- words, numbers, decimals and thousands stay whole ("3.5", "1,000"); `%`, `$`, `#`, `&`, `;`, `@`, `?`, `!`,
  brackets and a sentence-final period are split off ("50%" -> "50", "%"; "u.s." -> "u.s", ".");
- commas not followed by a digit are split off; clitics are split ("don't" -> "do", "n't");
- double quotes become `` and '' as in nltk.
Not reproduced: punkt sentence splitting (a period in the middle of a run stays attached, "a. b" -> "a.", "b",
where nltk would usually make two sentences, "a", ".", "b") and the rare MacIntyre contractions ("cannot").
Both only change the token count of English prose inside an answer, which CMRC answers almost never contain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

IGNORE_LABEL = -1

# The official list, in its order. '……' is two characters: the official code tests `char in sp_char` one character
# at a time, so this entry can never match and a lone '…' is *not* punctuation. We keep that quirk on purpose.
CMRC_PUNCTUATION = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=', '，', '。', '：', '？', '！', '“', '”',
                    '；', '’', '《', '》', '……', '·', '、', '「', '」', '（', '）', '－', '～', '『', '』']  # fmt: skip
_PUNCTUATION = frozenset(CMRC_PUNCTUATION)  # membership of single characters, so '……' stays inert as above
_CJK = re.compile("[\u4e00-\u9fa5]")  # the official range (CJK Unified Ideographs without the 2005+ additions)


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    """Percentage of predictions equal to their label, over examples whose label is not -1 (unlabelled)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    pairs = [(p, y) for p, y in zip(predictions, labels) if y != IGNORE_LABEL]
    if not pairs:
        raise ValueError("no labelled examples (every label is -1)")
    return 100.0 * sum(p == y for p, y in pairs) / len(pairs)


# --- nltk's Treebank word rules, in nltk's order (see the module doc for what is left out) ---
_TREEBANK_RULES = [(re.compile(pattern), replacement) for pattern, replacement in [
    ("([«“‘„]|`+)", r" \1 "), (r'^"', "``"), ("(``)", r" \1 "), (r'([ (\[{<])("|\'\')', r"\1 `` "),  # open quotes
    (r"(?i)(?<!\w)(')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)", r"\1 "),  # an opening single quote, not a clitic
    (r"([:,])([^\d])", r" \1 \2"), (r"([:,])$", r" \1 "),  # commas split off, except inside numbers: 1,000
    (r"\.{2,}", r" \g<0> "), ("[;@#$%&]", r" \g<0> "), ("[\u2012-\u2015]", r" \g<0> "),  # ellipsis, symbols, dashes
    (r'([^.])(\.)([\]\)}>"\']*)\s*$', r"\1 \2\3 "),  # the sentence-final period only: 3.5 and u.s stay whole
    ("[?!]", r" \g<0> "), (r"([^'])' ", r"\1 ' "), ("[*]", r" \g<0> "),
    (r"[\]\[(){}<>]", r" \g<0> "), ("--", " -- "),
]]  # fmt: skip
_TREEBANK_ENDING_RULES = [(re.compile(pattern), replacement) for pattern, replacement in [
    ("([»”’])", r" \1 "), ("''", " '' "), ('"', " '' "), (r"\s+", " "),  # closing quotes
    (r"([^' ])('[sS]|'[mM]|'[dD]|') ", r"\1 \2 "), (r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", r"\1 \2 "),
]]  # fmt: skip


def treebank_tokenize(text: str) -> list[str]:
    """Words of a non-Chinese run, approximating `nltk.word_tokenize` (module doc says where it differs)."""
    for pattern, replacement in _TREEBANK_RULES:
        text = pattern.sub(replacement, text)
    text = f" {text} "  # the clitic rules look for a following space
    for pattern, replacement in _TREEBANK_ENDING_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


# --- CMRC2018, following cmrc2018_evaluate.py function by function ---
def mixed_segmentation(text: str, rm_punc: bool = False) -> list[str]:
    """Lowercased, stripped `text` as tokens: each Chinese character and each punctuation mark alone, runs of
    anything else word-tokenized. With `rm_punc` punctuation is dropped *without* ending the current run, as in the
    official loop, so "abc-def" is one token "abcdef" there (and "abc", "-", "def" without `rm_punc`)."""
    tokens: list[str] = []
    run = ""
    for char in str(text).lower().strip():
        if rm_punc and char in _PUNCTUATION:
            continue
        if _CJK.match(char) or char in _PUNCTUATION:
            if run:
                tokens.extend(treebank_tokenize(run))
                run = ""
            tokens.append(char)
        else:
            run += char
    if run:
        tokens.extend(treebank_tokenize(run))
    return tokens


def remove_punctuation(text: str) -> str:
    """Lowercased, stripped `text` without the official punctuation marks (inner spaces are kept)."""
    return "".join(char for char in str(text).lower().strip() if char not in _PUNCTUATION)


def find_lcs(first: Sequence, second: Sequence) -> tuple[list, int]:
    """Longest common *contiguous* run of two token lists, and its length (the first longest one found, scanning
    `first` then `second` as the official dynamic programme does)."""
    previous = [0] * (len(second) + 1)
    best_length, best_end = 0, 0
    for i, token in enumerate(first):
        current = [0] * (len(second) + 1)
        for j, other in enumerate(second):
            if token == other:
                current[j + 1] = previous[j] + 1
                if current[j + 1] > best_length:
                    best_length, best_end = current[j + 1], i + 1
        previous = current
    return list(first[best_end - best_length : best_end]), best_length


def cmrc2018_f1(answers: Sequence[str], prediction: str) -> float:
    """F1 in [0, 1] of `prediction` against its best reference: precision and recall of the longest common run of
    punctuation-free mixed segments."""
    if not answers:
        raise ValueError("a CMRC2018 question needs at least one reference answer")  # the official max([]) crashes
    prediction_tokens = mixed_segmentation(prediction, rm_punc=True)
    scores = []
    for answer in answers:
        answer_tokens = mixed_segmentation(answer, rm_punc=True)
        _, common = find_lcs(answer_tokens, prediction_tokens)
        if common == 0:
            scores.append(0.0)
            continue
        precision, recall = common / len(prediction_tokens), common / len(answer_tokens)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def cmrc2018_em(answers: Sequence[str], prediction: str) -> int:
    """1 when `prediction` equals some reference once both are lowercased, stripped and punctuation-free, else 0."""
    if not answers:
        raise ValueError("a CMRC2018 question needs at least one reference answer")
    normalized = remove_punctuation(prediction)
    return int(any(remove_punctuation(answer) == normalized for answer in answers))


def cmrc2018_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict:
    """Corpus EM and F1 (percent) over every question in `references` ({id: [answer texts]}); a question missing
    from `predictions` ({id: text}) scores 0 but still counts in `total`. `average` is (em + f1) / 2, the single
    CMRC2018 figure Langboat's tables report."""
    predictions = {str(qid).strip(): text for qid, text in predictions.items()}  # the official script strips ids
    em = f1 = 0.0
    answered = 0
    for qid, answers in references.items():
        qid = str(qid).strip()
        if qid not in predictions:
            continue
        answered += 1
        prediction = str(predictions[qid])
        em += cmrc2018_em(answers, prediction)
        f1 += cmrc2018_f1(answers, prediction)
    total = len(references)
    em_percent = 100.0 * em / total if total else 0.0
    f1_percent = 100.0 * f1 / total if total else 0.0
    return {"em": em_percent, "f1": f1_percent, "average": (em_percent + f1_percent) / 2, "total": total,
            "answered": answered}  # fmt: skip


# One line a metric. Classification tasks: (predictions, labels) -> percent; CMRC2018: ({id: text}, {id: [texts]}).
METRICS: dict[str, Callable] = {
    "accuracy": accuracy,
    "cmrc2018": cmrc2018_scores,
}


def metric_for_kind(kind: str):
    """(metric function (predictions, dev dataset) -> scores in percent, main metric name) for a task kind."""
    if kind == "span":

        def span_metric(predictions, dataset) -> dict:
            ids = [str(i) for i in dataset["id"]]
            scores = cmrc2018_scores(dict(zip(ids, predictions)),
                                     {i: a["text"] for i, a in zip(ids, dataset["answers"])})
            return {k: scores[k] for k in ("em", "f1", "average")}

        return span_metric, "average"

    def accuracy_metric(predictions, dataset) -> dict:
        return {"accuracy": accuracy(predictions, dataset["label"])}

    return accuracy_metric, "accuracy"
