"""The HAIC caption schema: who is in the clip (introduced by attributes), then what they do, in time order.

A `Caption` declares its people first (gender, age, shirt colour, accessories) and then lists events; every event
names a declared actor (and, for interactions, a declared partner), and events are strictly ordered in time. The
vocabularies below are the whole language of the schema: rendering (`render.py`), parsing (`parse.py`), question
generation (`qa.py`) and the synthetic renderer (`synthetic.py`) all read them, so a word added here reaches all
four. Plain data: no torch, no numpy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

GENDERS = ("male", "female")
AGES = ("child", "adult", "elderly")
COLOURS = ("red", "blue", "green", "yellow", "purple", "white")
ACCESSORIES = ("hat", "bag", "glasses")  # canonical order: a person's accessories are kept sorted by it
OBJECTS = ("ball", "book", "cup", "flower")
# action -> what else the event must name; "count" actions repeat, interactions have a partner
ACTIONS: dict[str, frozenset[str]] = {
    "walk_left": frozenset(),
    "walk_right": frozenset(),
    "wave": frozenset({"count"}),
    "jump": frozenset({"count"}),
    "handshake": frozenset({"target"}),
    "pass": frozenset({"target", "object"}),
}
INTERACTIONS = tuple(a for a, needs in ACTIONS.items() if "target" in needs)
COUNTED = tuple(a for a, needs in ACTIONS.items() if "count" in needs)
MAX_COUNT = 5


class SchemaError(ValueError):
    """A caption breaks the schema; the message names the event or person and what is wrong."""


@dataclass(frozen=True)
class Person:
    id: int  # 1-based, in order of declaration; events refer to people by it
    gender: str
    age: str
    shirt: str  # colour
    accessories: tuple[str, ...] = ()

    def __post_init__(self):  # one spelling per person, whatever order the accessories came in
        order = {a: i for i, a in enumerate(ACCESSORIES)}
        object.__setattr__(self, "accessories", tuple(sorted(self.accessories, key=lambda a: order.get(a, 99))))


@dataclass(frozen=True)
class Event:
    actor: int
    action: str
    target: int | None = None  # the partner of an interaction
    object: str | None = None  # what is passed
    count: int | None = None  # repetitions of a counted action
    start: float | None = None  # seconds; optional (a generated caption usually has no times)
    end: float | None = None


@dataclass(frozen=True)
class Caption:
    people: tuple[Person, ...]
    events: tuple[Event, ...] = field(default=())

    def person(self, pid: int) -> Person:
        return self.people[pid - 1]

    def to_dict(self) -> dict[str, Any]:
        return {"people": [dataclasses.asdict(p) | {"accessories": list(p.accessories)} for p in self.people],
                "events": [{k: v for k, v in dataclasses.asdict(e).items() if v is not None} for e in self.events]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "caption") -> Caption:
        """Build (and validate) from `to_dict`'s shape; errors say which field of which person/event."""
        if not isinstance(data, dict) or set(data) - {"people", "events"} or "people" not in data:
            raise SchemaError(f"{where}: expected a mapping with 'people' and 'events'")
        for name in ("people", "events"):
            if not isinstance(data.get(name, []), list):
                raise SchemaError(f"{where}.{name}: expected a list, got {type(data[name]).__name__}")
        people, events = [], []
        for i, p in enumerate(data["people"]):
            people.append(_build(Person, p, f"{where}.people[{i}]", tuple_fields=("accessories",)))
        for i, e in enumerate(data.get("events", [])):
            events.append(_build(Event, e, f"{where}.events[{i}]"))
        caption = cls(tuple(people), tuple(events))
        validate(caption, where)
        return caption

    def without_times(self) -> Caption:
        return Caption(self.people, tuple(dataclasses.replace(e, start=None, end=None) for e in self.events))


def _build(cls: type, data: Any, where: str, tuple_fields: tuple[str, ...] = ()) -> Any:
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected a mapping, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {unknown}; {cls.__name__} has {sorted(names)}")
    for name in tuple_fields:
        if name in data and not isinstance(data[name], list):
            raise SchemaError(f"{where}.{name}: expected a list, got {data[name]!r}")
    values = {k: tuple(v) if k in tuple_fields else v for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as e:
        raise SchemaError(f"{where}: {e}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not person 1


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def validate(caption: Caption, where: str = "caption") -> Caption:
    """Raise `SchemaError` unless every person is well formed, every event names declared people and the
    fields its action needs (and no others), and events are strictly increasing in time. Whatever passes renders
    and parses back to itself (times are finite seconds >= 0, and an end needs a start)."""
    if not caption.people:
        raise SchemaError(f"{where}: a caption declares at least one person")
    for i, p in enumerate(caption.people):
        at = f"{where}: person {i + 1}"
        if not _is_int(p.id) or p.id != i + 1:
            raise SchemaError(f"{at}: id must be {i + 1} (people are numbered 1.. in order of declaration), got {p.id}")
        for name, value, allowed in (("gender", p.gender, GENDERS), ("age", p.age, AGES), ("shirt", p.shirt, COLOURS)):
            if value not in allowed:
                raise SchemaError(f"{at}: {name} {value!r} is not one of {list(allowed)}")
        for a in p.accessories:
            if a not in ACCESSORIES:
                raise SchemaError(f"{at}: accessory {a!r} is not one of {list(ACCESSORIES)}")
        if len(set(p.accessories)) != len(p.accessories):
            raise SchemaError(f"{at}: accessories repeat: {list(p.accessories)}")
    declared = [p.id for p in caption.people]
    timed = [e.start is not None for e in caption.events]
    if any(timed) and not all(timed):
        raise SchemaError(f"{where}: either every event has a start time or none has")
    previous: Event | None = None
    for n, e in enumerate(caption.events, 1):
        at = f"{where}: event {n} ({e.action})"
        if e.action not in ACTIONS:
            raise SchemaError(f"{at}: unknown action; actions are {list(ACTIONS)}")
        for role in ("actor", "target"):
            pid = getattr(e, role)
            if (pid is not None or role == "actor") and (not _is_int(pid) or pid not in declared):
                raise SchemaError(f"{at}: {role} person {pid} is not declared (declared: {declared})")
        needs = ACTIONS[e.action]
        for name in ("target", "object", "count"):
            present = getattr(e, name) is not None
            if present != (name in needs):
                raise SchemaError(f"{at}: {name} is {'required' if name in needs else 'not allowed'} for this action")
        if e.target is not None and e.target == e.actor:
            raise SchemaError(f"{at}: person {e.actor} cannot interact with themself")
        if e.object is not None and e.object not in OBJECTS:
            raise SchemaError(f"{at}: object {e.object!r} is not one of {list(OBJECTS)}")
        if e.count is not None and not (_is_int(e.count) and 1 <= e.count <= MAX_COUNT):
            raise SchemaError(f"{at}: count must be an integer in 1..{MAX_COUNT}, got {e.count!r}")
        for name in ("start", "end"):
            if getattr(e, name) is not None and not _is_time(getattr(e, name)):
                raise SchemaError(f"{at}: {name} must be a finite number of seconds >= 0, got {getattr(e, name)!r}")
        if e.start is None and e.end is not None:
            raise SchemaError(f"{at}: end {e.end} is given without a start")
        if e.start is not None:
            if e.end is None or not e.end >= e.start:
                raise SchemaError(f"{at}: end {e.end} must be given and not before start {e.start}")
            if previous is not None and not e.start > previous.start:
                raise SchemaError(f"{at}: starts at {e.start} s, not after event {n - 1} ({previous.start} s); "
                                  "events must be in strictly increasing time order")
        previous = e
    return caption
