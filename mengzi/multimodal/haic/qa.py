"""HAIC multiple-choice questions from a caption schema: five categories, four distinct options, one correct.

Every question carries a language-free `query` (people named by attributes, never by id, since a video has no
ids) and `resolve(caption, query, lang)` computes its answer text from any caption; a question is only asked
when the query resolves unambiguously. The same function answers from a caption parsed out of text (the
"schema" answerer), so a perfect caption gets every question right and a wrong detail in a caption costs
exactly the questions that depend on it. Distractors are drawn from the clip first (its other people and
events), then from the vocabulary; a seeded `random.Random` makes generation reproducible.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from .render import COLOUR_WORDS, NOUNS, OBJECT_WORDS, TIMES_WORDS, describe, event_phrase
from .schema import ACTIONS, AGES, COLOURS, GENDERS, INTERACTIONS, OBJECTS, Caption, Event, Person

CATEGORIES = ("interaction", "action_details", "action_sequence", "count", "attribute")
NUM_OPTIONS = 4
CHANCE = 1 / NUM_OPTIONS

# question templates per kind: {x}/{y} people, {e} an event, {v} an action, {c} a colour
QUESTIONS = {
    "en": {"partner.handshake": "Who does {x} shake hands with?", "partner.pass": "Who does {x} hand something to?",
           "interaction": "What happens between {x} and {y}?", "direction": "Which way does {x} walk?",
           "object": "What does {x} hand to {y}?", "which_action": "Which of these does {x} do?",
           "after": "What happens right after {e}?", "before": "What happens right before {e}?",
           "first": "What happens first?", "last": "What happens last?",
           "repetitions": "How many times does {x} {v}?", "people": "How many people are in the video?",
           "shirt": "What colour is the shirt of the person who {v}?", "accessory": "What is {x} wearing or carrying?",
           "identity": "Who is wearing the {c} shirt?"},
    "zh": {"partner.handshake": "{x}和谁握手？", "partner.pass": "{x}把东西递给了谁？",
           "interaction": "{x}和{y}之间发生了什么？", "direction": "{x}往哪个方向走？",
           "object": "{x}递给{y}什么东西？", "which_action": "{x}做了下面哪件事？",
           "after": "{e}之后紧接着发生了什么？", "before": "{e}之前紧接着发生了什么？",
           "first": "最先发生的是什么？", "last": "最后发生的是什么？",
           "repetitions": "{x}{v}了几次？", "people": "视频中有几个人？",
           "shirt": "{v}的人穿什么颜色的上衣？", "accessory": "{x}身上有什么配饰？", "identity": "穿{c}上衣的是谁？"},
}
KIND_CATEGORY = {"partner": "interaction", "interaction": "interaction", "direction": "action_details",
                 "object": "action_details", "which_action": "action_details", "after": "action_sequence",
                 "before": "action_sequence", "first": "action_sequence", "last": "action_sequence",
                 "repetitions": "count", "people": "count", "shirt": "attribute", "accessory": "attribute",
                 "identity": "attribute"}
INTERACTION_LABELS = {"en": {"handshake": "they shake hands", **{o: f"one hands the other {w}" for o, w in
                                                                  OBJECT_WORDS["en"].items()}},
                      "zh": {"handshake": "握手", **{o: f"递{w}" for o, w in OBJECT_WORDS["zh"].items()}}}
DIRECTIONS = {"en": ["to the left", "to the right", "towards the camera", "away from the camera"],
              "zh": ["向左", "向右", "朝镜头走来", "远离镜头"]}
ACTION_LABELS = {"en": {"walk_left": "walks to the left", "walk_right": "walks to the right", "wave": "waves",
                        "jump": "jumps", "handshake": "shakes hands with someone", "pass": "hands something to someone"},
                 "zh": {"walk_left": "向左走", "walk_right": "向右走", "wave": "挥手", "jump": "跳",
                        "handshake": "和别人握手", "pass": "把东西递给别人"}}
VERBS = {"en": {"wave": "wave", "jump": "jump"}, "zh": {"wave": "挥手", "jump": "跳"}}
NUMBER_WORDS = {"en": {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"},
                "zh": {1: "一个", 2: "两个", 3: "三个", 4: "四个", 5: "五个"}}
ACCESSORY_LABELS = {"en": {"hat": "a hat", "bag": "a bag", "glasses": "glasses", None: "none of these"},
                    "zh": {"hat": "帽子", "bag": "包", "glasses": "眼镜", None: "都没有"}}


@dataclass
class Question:
    id: str
    clip_id: str
    category: str
    lang: str
    text: str
    options: list[str]
    answer: int  # index into options
    query: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------- people and events by words
def desc(person: Person) -> dict[str, str]:
    return {"gender": person.gender, "age": person.age, "shirt": person.shirt}


def find(caption: Caption, who: dict[str, str]) -> Person | None:
    """The one person matching a description, or None (no one, or more than one)."""
    hits = [p for p in caption.people if desc(p) == who]
    return hits[0] if len(hits) == 1 else None


def event_key(caption: Caption, event: Event) -> dict[str, Any]:
    """An event with its people replaced by descriptions (and no times): how a question refers to it."""
    return {"actor": desc(caption.person(event.actor)), "action": event.action, "object": event.object,
            "count": event.count, "target": desc(caption.person(event.target)) if event.target else None}


def _person_words(who: dict[str, str], lang: str) -> str:
    return describe(Person(0, who["gender"], who["age"], who["shirt"]), lang)


def event_words(key: dict[str, Any], lang: str) -> str:
    people = {1: key["actor"], 2: key["target"]}
    event = Event(1, key["action"], 2 if key["target"] else None, key["object"], key["count"])
    return event_phrase(event, lang, lambda pid: _person_words(people[pid], lang))


def _find_event(caption: Caption, key: dict[str, Any]) -> int | None:
    hits = [i for i, e in enumerate(caption.events) if event_key(caption, e) == key]
    return hits[0] if len(hits) == 1 else None


def _acts(caption: Caption, person: Person) -> set[str]:
    """What a person does: their own events, and handshakes they take part in."""
    return {e.action for e in caption.events if e.actor == person.id or (e.action == "handshake" and e.target == person.id)}


def _role_verb(action: str, obj: str | None, lang: str) -> str:
    if action == "pass":
        return f"hands over {OBJECT_WORDS['en'][obj]}" if lang == "en" else f"递{OBJECT_WORDS['zh'][obj]}"
    return ACTION_LABELS[lang][action]


# --------------------------------------------------------------------------------------------- answer a query
def resolve(caption: Caption, query: dict[str, Any], lang: str) -> str | None:
    """The correct option's text for `query` given what `caption` says; None when it cannot tell (unique)."""
    kind = query["kind"]
    if kind in ("first", "last"):
        if not caption.events:
            return None
        e = caption.events[0 if kind == "first" else -1]
        return event_words(event_key(caption, e), lang)
    if kind in ("after", "before"):
        i = _find_event(caption, query["event"])
        j = None if i is None else i + (1 if kind == "after" else -1)
        return event_words(event_key(caption, caption.events[j]), lang) if j is not None and 0 <= j < len(
            caption.events) else None
    if kind == "people":
        return NUMBER_WORDS[lang].get(len(caption.people))
    if kind == "identity":
        hits = [p for p in caption.people if p.shirt == query["shirt"]]
        return NOUNS[lang][(hits[0].gender, hits[0].age)] if len(hits) == 1 else None
    if kind == "shirt":
        doers = {e.actor for e in caption.events if e.action == query["action"] and e.object == query.get("object")}
        return COLOUR_WORDS[lang][caption.person(doers.pop()).shirt] if len(doers) == 1 else None
    x = find(caption, query["x"])
    if x is None:
        return None
    mine = [e for e in caption.events if e.actor == x.id]
    if kind == "partner":
        # a handshake goes both ways: whoever started it, both people shook hands with each other
        targets = {e.target for e in mine if e.action == query["action"]}
        if query["action"] == "handshake":
            targets |= {e.actor for e in caption.events if e.action == "handshake" and e.target == x.id}
        return describe(caption.person(targets.pop()), lang) if len(targets) == 1 else None
    if kind in ("interaction", "object"):
        y = find(caption, query["y"])
        if kind == "interaction":  # "between x and y" names no direction: events either way count
            between = [e for e in caption.events if y is not None and {e.actor, e.target} == {x.id, y.id}]
        else:
            between = [e for e in mine if y is not None and e.target == y.id and e.action == "pass"]
        labels = {INTERACTION_LABELS[lang][e.object or e.action] if kind == "interaction" else OBJECT_WORDS[lang][e.object]
                  for e in between}
        return labels.pop() if len(labels) == 1 else None
    if kind == "direction":
        ways = {e.action for e in mine if e.action in ("walk_left", "walk_right")}
        return DIRECTIONS[lang][0 if "walk_left" in ways else 1] if len(ways) == 1 else None
    if kind == "which_action":
        return ACTION_LABELS[lang][query["action"]] if query["action"] in _acts(caption, x) else None
    if kind == "repetitions":
        total = sum(e.count for e in mine if e.action == query["action"])
        return TIMES_WORDS[lang].get(total)
    if kind == "accessory":
        return ACCESSORY_LABELS[lang][x.accessories[0] if x.accessories else None] if len(x.accessories) <= 1 else None
    raise ValueError(f"unknown question kind {kind!r}")


# --------------------------------------------------------------------------------------- candidate questions
def candidates(caption: Caption, category: str) -> list[dict[str, Any]]:
    """Every query of `category` this caption answers unambiguously (in a fixed order)."""
    out: list[dict[str, Any]] = []
    people = [desc(p) for p in caption.people]
    keys = [event_key(caption, e) for e in caption.events]
    if category == "interaction":
        out += [{"kind": "partner", "x": k["actor"], "action": k["action"]} for k in keys if k["target"]]
        out += [{"kind": "interaction", "x": k["actor"], "y": k["target"]} for k in keys if k["target"]]
    elif category == "action_details":
        out += [{"kind": "direction", "x": x} for x in people]
        out += [{"kind": "object", "x": k["actor"], "y": k["target"]} for k in keys if k["action"] == "pass"]
        for p in caption.people:
            if len(_acts(caption, p)) <= len(ACTIONS) - NUM_OPTIONS + 1:  # room for 3 actions not done
                out += [{"kind": "which_action", "x": desc(p), "action": a} for a in sorted(_acts(caption, p))]
    elif category == "action_sequence":
        out += [{"kind": "after", "event": k} for k in keys[:-1]] + [{"kind": "before", "event": k} for k in keys[1:]]
        out += [{"kind": "first"}, {"kind": "last"}] if len(keys) >= 2 else []
    elif category == "count":
        out += [{"kind": "repetitions", "x": k["actor"], "action": k["action"]} for k in keys if k["count"]]
        out += [{"kind": "people"}]
    elif category == "attribute":
        out += [{"kind": "shirt", "action": k["action"], "object": k["object"]} for k in keys if k["action"] != "handshake"]
        out += [{"kind": "accessory", "x": x} for x in people] + [{"kind": "identity", "shirt": x["shirt"]} for x in people]
    else:
        raise ValueError(f"unknown category {category!r}; categories are {list(CATEGORIES)}")
    unique = []
    for q in out:
        if q not in unique and resolve(caption, q, "en") is not None and resolve(caption, q, "zh") is not None:
            unique.append(q)
    return unique


def _universe(caption: Caption, query: dict[str, Any], lang: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """(distractors from the clip itself, distractors from the vocabulary) for a query's options."""
    kind = query["kind"]
    if kind in ("partner", "identity"):
        made_up = [Person(0, g, a, c) for g in GENDERS for a in AGES for c in COLOURS]
        if kind == "identity":
            return [], list(NOUNS[lang].values())
        clip = [describe(p, lang) for p in caption.people if desc(p) != query["x"]]
        return clip, [describe(p, lang) for p in made_up if p.shirt not in {q.shirt for q in caption.people}]
    if kind in ("after", "before", "first", "last"):
        anchor = event_words(query["event"], lang) if "event" in query else None  # never an option for itself
        clip = [w for w in (event_words(event_key(caption, e), lang) for e in caption.events) if w != anchor]
        made_up = []
        for _ in range(12):
            a, t = rng.choice(caption.people), rng.choice(caption.people)
            action = rng.choice(list(ACTIONS) if len(caption.people) > 1 else [x for x in ACTIONS if x not in INTERACTIONS])
            if action in INTERACTIONS and t.id == a.id:
                continue
            made_up.append(event_words({"actor": desc(a), "action": action, "target": desc(t) if action in INTERACTIONS
                                        else None, "object": rng.choice(OBJECTS) if action == "pass" else None,
                                        "count": rng.randint(1, 3) if "count" in ACTIONS[action] else None}, lang))
        return clip, [w for w in made_up if w != anchor]
    pools = {"interaction": list(INTERACTION_LABELS[lang].values()), "direction": DIRECTIONS[lang],
             "object": list(OBJECT_WORDS[lang].values()), "which_action": list(ACTION_LABELS[lang].values()),
             "repetitions": list(TIMES_WORDS[lang].values()), "people": list(NUMBER_WORDS[lang].values()),
             "shirt": list(COLOUR_WORDS[lang].values()), "accessory": list(ACCESSORY_LABELS[lang].values())}
    if kind == "which_action":
        x = find(caption, query["x"])
        return [], [ACTION_LABELS[lang][a] for a in ACTIONS if a not in _acts(caption, x)]
    return [], pools[kind]


def _question_text(query: dict[str, Any], lang: str) -> str:
    kind = query["kind"]
    template = QUESTIONS[lang][f"partner.{query['action']}" if kind == "partner" else kind]
    words = {"x": _person_words(query["x"], lang) if "x" in query else "",
             "y": _person_words(query["y"], lang) if "y" in query else "",
             "e": event_words(query["event"], lang) if "event" in query else "",
             "c": COLOUR_WORDS[lang][query["shirt"]] if "shirt" in query else "",
             "v": (VERBS[lang][query["action"]] if kind == "repetitions" else
                   _role_verb(query["action"], query.get("object"), lang) if kind == "shirt" else "")}
    return template.format(**words)


def make_question(caption: Caption, query: dict[str, Any], lang: str, rng: random.Random, qid: str,
                  clip_id: str) -> Question:
    answer = resolve(caption, query, lang)
    if answer is None:
        raise ValueError(f"question {qid}: query {query} has no unique answer in clip {clip_id}")
    clip, vocab = _universe(caption, query, lang, rng)
    clip = [o for o in dict.fromkeys(clip) if o != answer]
    vocab = [o for o in dict.fromkeys(vocab) if o != answer and o not in clip]
    rng.shuffle(clip)
    rng.shuffle(vocab)
    distractors = (clip + vocab)[:NUM_OPTIONS - 1]
    if len(distractors) < NUM_OPTIONS - 1:
        raise ValueError(f"question {qid}: only {len(distractors)} distractors for {query}")
    options = [answer, *distractors]
    rng.shuffle(options)
    return Question(qid, clip_id, KIND_CATEGORY[query["kind"]], lang, _question_text(query, lang), options,
                    options.index(answer), query)


def questions_for(caption: Caption, category: str, n: int, lang: str, rng: random.Random, clip_id: str,
                  start: int = 0) -> list[Question]:
    """Up to `n` distinct questions of one category about one clip (fewer if the clip has fewer)."""
    pool = candidates(caption, category)
    rng.shuffle(pool)
    return [make_question(caption, q, lang, rng, f"{clip_id}-q{start + i}", clip_id) for i, q in enumerate(pool[:n])]


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate(questions: list[Question], choices: list[int]) -> dict[str, Any]:
    """Per-category and overall accuracy of `choices` (option indices, one per question), with chance."""
    if len(questions) != len(choices):
        raise ValueError(f"{len(choices)} choices for {len(questions)} questions")
    per: dict[str, dict[str, float]] = {}
    for q, c in zip(questions, choices, strict=True):
        row = per.setdefault(q.category, {"n": 0, "correct": 0})
        row["n"] += 1
        row["correct"] += int(c == q.answer)
    for row in per.values():
        row["accuracy"] = row["correct"] / row["n"]
    total = sum(r["n"] for r in per.values())
    correct = sum(r["correct"] for r in per.values())
    ordered = {c: per[c] for c in CATEGORIES if c in per}
    return {"categories": ordered, "overall": {"n": total, "correct": correct, "accuracy": correct / max(total, 1)},
            "macro_accuracy": sum(r["accuracy"] for r in ordered.values()) / max(len(ordered), 1),
            "chance": CHANCE}


__all__ = ["CATEGORIES", "CHANCE", "Question", "candidates", "evaluate", "make_question",
           "questions_for", "resolve"]
