"""Caption-only answerers: read a caption text and a question, choose an option. One registry line each.

- "schema": parse the caption (leniently) and evaluate the question's query on it; the upper bound a perfect
  caption reaches, and exactly as good as the caption's details. When the caption cannot answer (a person it
  never mentions, nothing parsed), it guesses with its seeded generator, so an empty caption scores chance.
- "random": a seeded uniform guess (the chance baseline, measured).
- "lm": score each option with a pluggable `scorer(context, question, options) -> scores` (for example a causal
  LM's log-likelihood of the option after the caption and question, `causal_lm_scorer`) and take the best.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .parse import parse
from .qa import Question, resolve

Scorer = Callable[[str, str, list[str]], list[float]]


class Answerer:
    name = ""

    def __init__(self, seed: int = 0, **_: object):
        self.rng = random.Random(seed)

    def __call__(self, caption_text: str, question: Question) -> int:
        raise NotImplementedError


class RandomAnswerer(Answerer):
    name = "random"

    def __call__(self, caption_text: str, question: Question) -> int:
        return self.rng.randrange(len(question.options))


class SchemaAnswerer(Answerer):
    name = "schema"

    def __call__(self, caption_text: str, question: Question) -> int:
        caption = parse(caption_text, question.lang, strict=False)
        answer = resolve(caption, question.query, question.lang) if caption.people else None
        if answer in question.options:
            return question.options.index(answer)
        return self.rng.randrange(len(question.options))


class LMAnswerer(Answerer):
    name = "lm"

    def __init__(self, seed: int = 0, scorer: Scorer | None = None, **_: object):
        super().__init__(seed)
        if scorer is None:
            raise ValueError("the 'lm' answerer needs scorer=..., e.g. causal_lm_scorer(model, tokenizer)")
        self.scorer = scorer

    def __call__(self, caption_text: str, question: Question) -> int:
        scores = self.scorer(caption_text, question.text, question.options)
        return max(range(len(scores)), key=lambda i: scores[i])


ANSWERERS: dict[str, type[Answerer]] = {a.name: a for a in (SchemaAnswerer, RandomAnswerer, LMAnswerer)}


def get_answerer(name: str, seed: int = 0, **kwargs: object) -> Answerer:
    if name not in ANSWERERS:
        raise ValueError(f"unknown answerer {name!r}; answerers are {sorted(ANSWERERS)}")
    return ANSWERERS[name](seed=seed, **kwargs)


def causal_lm_scorer(model, tokenizer, normalize: str = "mean") -> Scorer:
    """Each option's log-probability after "caption question" under a T5 or causal LM (torch), through the same
    scorer CLUE prompting uses. "mean" (per token) by default: HAIC options differ in length, and a total would
    favour the short ones."""
    from ...textgen.scoring import score_continuations

    def score(context: str, question: str, options: list[str]) -> list[float]:
        return score_continuations(model, tokenizer, [context + question], [options], normalize=normalize)[0]

    return score
