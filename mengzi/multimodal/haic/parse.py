"""Text -> caption schema, for both languages: the inverse of `render.py`, built from the same word tables.

`parse(text, lang)` is strict: every sentence must be a head count, a person or an event, and the result must
validate; errors name the sentence. `parse(text, lang, strict=False)` reads what it can (for captions a model
generated): unreadable sentences are skipped, and events naming people never declared are dropped, so the
answer is a valid caption (possibly with no events), or one with no people when nothing was readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .render import (
    ACCESSORY_WORDS,
    COLOUR_WORDS,
    CONNECTORS,
    EVENT_TEMPLATES,
    NOUNS,
    OBJECT_WORDS,
    TIMES_WORDS,
    ZH_NUMBERS,
    check_lang,
)
from .schema import ACTIONS, Caption, Event, Person, SchemaError, validate

FLOAT = r"[0-9][0-9.e+\-]*"
HALF_TO_FULL = str.maketrans({",": "，", "(": "（", ")": "）"})


class ParseError(ValueError):
    """A caption text does not follow the schema's language; the message quotes the sentence."""


def _alternation(words) -> str:
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + ")"


def _person_pattern(lang: str) -> str:
    return r"(\d+)号" if lang == "zh" else r"person (\d+)"


def _event_regexes(lang: str) -> dict[str, re.Pattern]:
    """One regex per action, compiled from its template with named groups for the slots."""
    out = {}
    for action, template in EVENT_TEMPLATES[lang].items():
        pattern = re.escape(template)
        pattern = pattern.replace(re.escape("{a}"), _person_pattern(lang).replace("(\\d+)", "(?P<a>\\d+)"))
        pattern = pattern.replace(re.escape("{t}"), _person_pattern(lang).replace("(\\d+)", "(?P<t>\\d+)"))
        pattern = pattern.replace(re.escape("{o}"), f"(?P<o>{_alternation(OBJECT_WORDS[lang].values())})")
        pattern = pattern.replace(re.escape("{n}"), f"(?P<n>{_alternation(TIMES_WORDS[lang].values())})")
        out[action] = re.compile(pattern + "$")
    return out


class _Grammar:
    def __init__(self, lang: str):
        self.lang = lang
        nouns, colours, acc = NOUNS[lang], COLOUR_WORDS[lang], ACCESSORY_WORDS[lang]
        self.noun_of = {w: key for key, w in nouns.items()}
        self.colour_of = {w: c for c, w in colours.items()}
        self.accessory_of = {w: a for a, w in acc.items()}
        self.object_of = {w: o for o, w in OBJECT_WORDS[lang].items()}
        self.count_of = {w: n for n, w in TIMES_WORDS[lang].items()}
        connectors = _alternation(CONNECTORS[lang])
        if lang == "zh":
            self.head = re.compile(r"画面中有(\S+?)个人。$")
            self.person = re.compile(rf"(\d+)号是一个穿({_alternation(colours.values())})上衣"
                                     rf"((?:、{_alternation(acc.values())})*)的({_alternation(nouns.values())})。$")
            self.event = re.compile(rf"({connectors})(.+?)(?:（({FLOAT})秒至({FLOAT})秒）)?。$")
        else:
            self.head = re.compile(r"There (?:is|are) (\d+) (?:person|people)\.$")
            self.person = re.compile(rf"Person (\d+) is an? ({_alternation(nouns.values())}) in an? "
                                     rf"({_alternation(colours.values())}) shirt(?:, (.+))?\.$")
            self.event = re.compile(rf"({connectors})(.+?)(?: \(({FLOAT}) s to ({FLOAT}) s\))?\.$")
        self.bodies = _event_regexes(lang)

    def sentences(self, text: str) -> Iterator[str]:
        text = text.strip()
        parts = re.split(r"(?<=。)", text) if self.lang == "zh" else re.split(r"(?<=\.)\s+(?=[A-Z])", text)
        yield from (p.strip() for p in parts if p.strip())

    def head_count(self, sentence: str) -> int | None:
        m = self.head.match(sentence)
        if not m:
            return None
        if self.lang == "en":
            return int(m.group(1))
        numbers = {w: n for n, w in ZH_NUMBERS.items()}
        return numbers.get(m.group(1), int(m.group(1)) if m.group(1).isdigit() else None)

    def person_of(self, sentence: str) -> Person | None:
        m = self.person.match(sentence)
        if not m:
            return None
        if self.lang == "zh":
            pid, colour, acc_text, noun = m.groups()
            acc_words = [w for w in acc_text.split("、") if w]
        else:
            pid, noun, colour, acc_text = m.groups()
            acc_words = re.split(r", | and ", acc_text) if acc_text else []
        if any(w not in self.accessory_of for w in acc_words):
            return None
        gender, age = self.noun_of[noun]
        return Person(int(pid), gender, age, self.colour_of[colour], tuple(self.accessory_of[w] for w in acc_words))

    def event_of(self, sentence: str) -> Event | None:
        m = self.event.match(sentence)
        if not m:
            return None
        _, body, start, end = m.groups()
        for action, regex in self.bodies.items():
            b = regex.match(body)
            if not b:
                continue
            slots = b.groupdict()
            needs = ACTIONS[action]
            try:
                times = (float(start), float(end)) if start is not None else (None, None)
            except ValueError:
                return None
            return Event(int(slots["a"]), action,
                         target=int(slots["t"]) if "target" in needs else None,
                         object=self.object_of[slots["o"]] if "object" in needs else None,
                         count=self.count_of[slots["n"]] if "count" in needs else None,
                         start=times[0], end=times[1])
        return None


_GRAMMARS: dict[str, _Grammar] = {}


def parse(text: str, lang: str = "zh", strict: bool = True) -> Caption:
    """Read a caption written by `render` (or a model imitating it); see the module doc for `strict`."""
    check_lang(lang)
    grammar = _GRAMMARS.setdefault(lang, _Grammar(lang))
    if not strict and lang == "zh":  # tokenizers that normalise (NFKC) turn full-width punctuation half-width
        text = text.translate(HALF_TO_FULL)
    count, people, events = None, {}, []
    for sentence in grammar.sentences(text):
        if (n := grammar.head_count(sentence)) is not None:
            if strict and (count is not None or people or events):
                raise ParseError(f"head count {sentence!r} must come first, once")
            count = n
        elif (person := grammar.person_of(sentence)) is not None:
            if strict and events:
                raise ParseError(f"person sentence {sentence!r} after the events: people are introduced first")
            if strict and person.id in people:
                raise ParseError(f"person {person.id} is introduced twice ({sentence!r})")
            people.setdefault(person.id, person)
        elif (event := grammar.event_of(sentence)) is not None:
            events.append(event)
        elif strict:
            raise ParseError(f"cannot read sentence {sentence!r} as a head count, a person or an event ({lang})")
    if not strict:
        return _salvage(people, events)
    if count != len(people):
        raise ParseError(f"the head count says {count} people but {len(people)} are introduced")
    caption = Caption(tuple(people[k] for k in sorted(people)), tuple(events))
    try:
        return validate(caption)
    except SchemaError as e:
        raise ParseError(str(e)) from None


def _salvage(people: dict[int, Person], events: list[Event]) -> Caption:
    """People 1..k that were introduced without gaps; events whose people are among them, in valid time order."""
    kept = []
    for pid in range(1, len(people) + 1):
        if pid not in people:
            break
        kept.append(people[pid])
    if not kept:
        return Caption((), ())  # nothing readable: no one to ask about
    caption_people = tuple(kept)
    good: list[Event] = []
    for e in events:
        trial = Caption(caption_people, (*good, e))
        try:
            validate(trial)
        except SchemaError:
            continue
        good.append(e)
    return Caption(caption_people, tuple(good))
