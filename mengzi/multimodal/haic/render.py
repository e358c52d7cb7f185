"""Caption schema -> Chinese or English text, in HAIC's shape: a head count, one sentence per person introducing
them by attributes, then one sentence per event in time order ("First, ... Then, ... Finally, ...").

Every word comes from the tables below; `parse.py` inverts the same tables, so what is written here can always
be read back exactly (times are written with `repr`, the shortest text that reads back as the same float).
`describe` and `event_phrase` are also what questions and options are built from (`qa.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from .schema import Caption, Event, Person

LANGS = ("zh", "en")
NOUNS = {
    "en": {("male", "child"): "boy", ("female", "child"): "girl", ("male", "adult"): "man",
           ("female", "adult"): "woman", ("male", "elderly"): "old man", ("female", "elderly"): "old woman"},
    "zh": {("male", "child"): "男孩", ("female", "child"): "女孩", ("male", "adult"): "男人",
           ("female", "adult"): "女人", ("male", "elderly"): "老爷爷", ("female", "elderly"): "老奶奶"},
}
COLOUR_WORDS = {
    "en": {c: c for c in ("red", "blue", "green", "yellow", "purple", "white")},
    "zh": {"red": "红色", "blue": "蓝色", "green": "绿色", "yellow": "黄色", "purple": "紫色", "white": "白色"},
}
ACCESSORY_WORDS = {
    "en": {"hat": "wearing a hat", "bag": "carrying a bag", "glasses": "wearing glasses"},
    "zh": {"hat": "戴着帽子", "bag": "背着包", "glasses": "戴着眼镜"},
}
OBJECT_WORDS = {"en": {"ball": "a ball", "book": "a book", "cup": "a cup", "flower": "a flower"},
                "zh": {"ball": "球", "book": "书", "cup": "杯子", "flower": "花"}}
TIMES_WORDS = {"en": {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times"},
               "zh": {1: "一次", 2: "两次", 3: "三次", 4: "四次", 5: "五次"}}
ZH_NUMBERS = {1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九"}
CONNECTORS = {"en": ("First, ", "Then, ", "Finally, "), "zh": ("首先，", "然后，", "最后，")}
# event bodies; {a} actor, {t} target, {o} object, {n} repetitions
EVENT_TEMPLATES = {
    "en": {"walk_left": "{a} walks to the left", "walk_right": "{a} walks to the right", "wave": "{a} waves {n}",
           "jump": "{a} jumps {n}", "handshake": "{a} shakes hands with {t}", "pass": "{a} hands {o} to {t}"},
    "zh": {"walk_left": "{a}向左走", "walk_right": "{a}向右走", "wave": "{a}挥手{n}", "jump": "{a}跳{n}",
           "handshake": "{a}和{t}握手", "pass": "{a}把{o}递给{t}"},
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not one of {list(LANGS)}")
    return lang


def person_ref(pid: int, lang: str) -> str:
    """How a caption names a declared person inside event sentences."""
    return f"{pid}号" if lang == "zh" else f"person {pid}"


def noun(person: Person, lang: str) -> str:
    return NOUNS[lang][(person.gender, person.age)]


def describe(person: Person, lang: str) -> str:
    """A definite description by gender/age and shirt colour ("the boy in the red shirt" / "穿红色上衣的男孩")."""
    if lang == "zh":
        return f"穿{COLOUR_WORDS['zh'][person.shirt]}上衣的{noun(person, 'zh')}"
    return f"the {noun(person, 'en')} in the {person.shirt} shirt"


def _join_en(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def person_sentence(person: Person, lang: str) -> str:
    acc = [ACCESSORY_WORDS[lang][a] for a in person.accessories]
    if lang == "zh":
        traits = "、".join([f"穿{COLOUR_WORDS['zh'][person.shirt]}上衣", *acc])
        return f"{person.id}号是一个{traits}的{noun(person, 'zh')}。"
    word = noun(person, "en")
    article = "an" if word[0] in "aeiou" else "a"
    tail = f", {_join_en(acc)}" if acc else ""
    return f"Person {person.id} is {article} {word} in a {person.shirt} shirt{tail}."


def event_phrase(event: Event, lang: str, name: Callable[[int], str] | None = None) -> str:
    """The event's clause without connector or times; `name` turns a person id into words (default: "person 2")."""
    name = name or (lambda pid: person_ref(pid, lang))
    return EVENT_TEMPLATES[lang][event.action].format(
        a=name(event.actor), t=name(event.target) if event.target is not None else "",
        o=OBJECT_WORDS[lang].get(event.object, ""), n=TIMES_WORDS[lang].get(event.count, ""))


def _times(event: Event, lang: str) -> str:
    if event.start is None:
        return ""
    return f"（{event.start!r}秒至{event.end!r}秒）" if lang == "zh" else f" ({event.start!r} s to {event.end!r} s)"


def event_sentence(event: Event, position: int, total: int, lang: str) -> str:
    first, then, last = CONNECTORS[lang]
    connector = first if position == 0 else last if position == total - 1 else then
    end = "。" if lang == "zh" else "."
    return f"{connector}{event_phrase(event, lang)}{_times(event, lang)}{end}"


def head_count(n: int, lang: str) -> str:
    if lang == "zh":
        return f"画面中有{ZH_NUMBERS.get(n, str(n))}个人。"
    return "There is 1 person." if n == 1 else f"There are {n} people."


def render(caption: Caption, lang: str = "zh", times: bool = True) -> str:
    """The caption as text; `times=False` leaves out the event times (what a model is trained to write)."""
    check_lang(lang)
    if not times:
        caption = caption.without_times()
    sentences = [head_count(len(caption.people), lang)]
    sentences += [person_sentence(p, lang) for p in caption.people]
    sentences += [event_sentence(e, i, len(caption.events), lang) for i, e in enumerate(caption.events)]
    return ("" if lang == "zh" else " ").join(sentences)
