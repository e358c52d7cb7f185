"""Synthetic human-action clips: stick figures whose looks and moves are written down in the HAIC schema first,
then drawn, so the ground-truth caption is exactly what the frames show.

A figure's shirt is a filled torso in its colour (a dress-shaped one for women and girls), its size says its age
(children small, grey hair for the elderly), a hat, a bag and glasses are drawn when worn. Everything happens on
a frame grid at `fps`: an event covers whole frames, and `render_clip` is a pure function of the caption (people
start at evenly spaced places in order of declaration; `apply_event` moves them), so the sampler and the renderer
cannot disagree. Per event: walking moves the figure `walk_step` of the width over its frames; every repetition
of a wave or a jump is two frames (arm up / figure up, then back), so counting up-frames counts repetitions;
a handshake or a pass brings the actor next to the partner over two frames, then hands meet (the passed object
is drawn in the actor's hand, then in the partner's). numpy + skimage.draw only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ...config import option
from .schema import ACCESSORIES, AGES, COLOURS, COUNTED, GENDERS, OBJECTS, Caption, Event, Person, validate

SHIRT_RGB = {"red": (220, 40, 40), "blue": (40, 80, 230), "green": (40, 170, 60), "yellow": (230, 210, 40),
             "purple": (150, 60, 200), "white": (245, 245, 245)}
OBJECT_RGB = {"ball": (255, 140, 0), "book": (0, 200, 200), "cup": (90, 90, 90), "flower": (255, 120, 200)}
SKIN, HAIR_GREY, DARK, BAG = (230, 190, 150), (200, 200, 200), (30, 30, 30), (110, 70, 30)
BACKGROUND = (120, 130, 120)
AGE_HEIGHT = {"child": 0.28, "adult": 0.45, "elderly": 0.42}  # figure height / frame height
FRAMES_PER_REPEAT, APPROACH_FRAMES, CONTACT_FRAMES = 2, 2, 2


@dataclass
class SyntheticConfig:
    size: int = option(64, "frame height and width in pixels")
    fps: float = option(2.0, "frames per second; every event covers whole frames")
    min_people: int = option(2, "fewest people in a clip")
    max_people: int = option(3, "most people in a clip")
    min_events: int = option(3, "fewest events in a clip (one interaction and one counted action always included)")
    max_events: int = option(4, "most events in a clip")
    max_count: int = option(3, "most repetitions of a wave or jump")
    walk_frames: int = option(3, "frames a walk takes")
    walk_step: float = option(0.2, "how far one walk moves a figure, as a fraction of the width")
    accessory_rate: float = option(0.3, "chance a person wears/carries each accessory")
    background: str = option("plain", "'plain', or a scikit-image sample image (astronaut, chelsea, coffee, rocket, "
                             "horse) faded behind the figures")


@dataclass
class SyntheticClip:
    frames: np.ndarray  # [T, H, W, 3] uint8
    timestamps: np.ndarray  # [T] seconds
    caption: Caption


def event_frames(event: Event, cfg: SyntheticConfig) -> int:
    if event.count is not None:
        return FRAMES_PER_REPEAT * event.count
    if event.target is not None:
        return APPROACH_FRAMES + CONTACT_FRAMES
    return cfg.walk_frames


def start_positions(n: int) -> list[float]:
    """x (fraction of width) of each person before anything happens: spread from 0.2 to 0.8."""
    return [0.5] if n == 1 else [0.2 + 0.6 * i / (n - 1) for i in range(n)]


def _gap(caption: Caption, pid: int) -> float:
    return 0.6 * AGE_HEIGHT[caption.person(pid).age] + 0.04  # arm's length apart, wider for taller people


def apply_event(caption: Caption, xs: list[float], event: Event, cfg: SyntheticConfig) -> list[float]:
    """Positions after `event` (walks move the actor; interactions bring the actor next to the partner)."""
    xs = list(xs)
    a = event.actor - 1
    if event.action in ("walk_left", "walk_right"):
        xs[a] += cfg.walk_step * (-1 if event.action == "walk_left" else 1)
    elif event.target is not None:
        t = event.target - 1
        side = -1 if xs[a] <= xs[t] else 1
        xs[a] = xs[t] + side * (_gap(caption, event.actor) / 2 + _gap(caption, event.target) / 2)
    return xs


def _fits(caption: Caption, before: list[float], after: list[float]) -> bool:
    """Everyone stays inside the frame, nobody walks through anybody (left-to-right order is kept) and no two
    figures overlap, so every person declared in the caption stays fully visible in every frame."""
    if not all(0.1 <= x <= 0.9 for x in after):
        return False
    if sorted(range(len(before)), key=before.__getitem__) != sorted(range(len(after)), key=after.__getitem__):
        return False
    heights = [AGE_HEIGHT[p.age] for p in caption.people]
    return all(abs(after[i] - after[j]) >= 0.22 * (heights[i] + heights[j]) + 0.02
               for i in range(len(after)) for j in range(i + 1, len(after)))


def random_caption(rng: random.Random, cfg: SyntheticConfig) -> Caption:
    """A clip's ground truth: people with distinct shirts, then timed events that keep everyone visible."""
    n = rng.randint(cfg.min_people, cfg.max_people)
    shirts = rng.sample(COLOURS, n)
    people = tuple(Person(i + 1, rng.choice(GENDERS), rng.choice(AGES), shirts[i],
                          tuple(a for a in ACCESSORIES if rng.random() < cfg.accessory_rate)) for i in range(n))
    caption = Caption(people)
    n_events = rng.randint(cfg.min_events, cfg.max_events)
    must = ["interaction", "counted"] + ["any"] * (n_events - 2)
    rng.shuffle(must)
    xs, frame, events = start_positions(n), 1, []  # frame 0: everyone standing still before anything happens
    for kind in must:
        for _ in range(100):
            actor = rng.randint(1, n)
            options = {"interaction": ["handshake", "pass"], "counted": list(COUNTED)}.get(
                kind, ["walk_left", "walk_right", "wave", "jump", "handshake", "pass"])
            action = rng.choice(options)
            target = rng.choice([p.id for p in people if p.id != actor]) if action in ("handshake", "pass") else None
            event = Event(actor, action, target, rng.choice(OBJECTS) if action == "pass" else None,
                          rng.randint(1, cfg.max_count) if action in COUNTED else None)
            moved = apply_event(caption, xs, event, cfg)
            if _fits(caption, xs, moved):
                break
        else:
            raise RuntimeError("random_caption: could not place an event inside the frame; widen the frame")
        length = event_frames(event, cfg)
        events.append(Event(event.actor, event.action, event.target, event.object, event.count,
                            start=frame / cfg.fps, end=(frame + length - 1) / cfg.fps))
        xs, frame = moved, frame + length + 1  # one still frame between events
    return validate(Caption(people, tuple(events)))


# ---------------------------------------------------------------------------------------------------- drawing
@dataclass
class Pose:
    x: float  # fraction of width
    lift: float = 0.0  # jump height, fraction of the figure's height
    arm_up: bool = False
    reach: int = 0  # -1 / +1: arm stretched towards the left / right
    stride: bool = False
    holding: str | None = None


def poses(caption: Caption, cfg: SyntheticConfig) -> tuple[list[list[Pose]], int]:
    """Every person's pose in every frame (frames [T][person]); T covers the last event plus one still frame."""
    events = caption.events
    starts = [round(e.start * cfg.fps) for e in events]
    total = (starts[-1] + event_frames(events[-1], cfg) + 1) if events else 1
    xs = start_positions(len(caption.people))
    frames = [[Pose(x) for x in xs] for _ in range(total)]
    for e, s in zip(events, starts, strict=True):
        after = apply_event(caption, xs, e, cfg)
        a, length = e.actor - 1, event_frames(e, cfg)
        for k in range(length):
            row = frames[s + k]
            for i, x in enumerate(xs):
                row[i].x = x
            if e.action in ("walk_left", "walk_right"):
                row[a].x = xs[a] + (after[a] - xs[a]) * (k + 1) / length
                row[a].stride = k % 2 == 0
            elif e.action == "wave":
                row[a].arm_up = k % 2 == 0
            elif e.action == "jump":
                row[a].lift = 0.3 if k % 2 == 0 else 0.0
            else:
                t = e.target - 1
                row[a].x = xs[a] + (after[a] - xs[a]) * min(k + 1, APPROACH_FRAMES) / APPROACH_FRAMES
                if k >= APPROACH_FRAMES:
                    row[a].reach, row[t].reach = (1, -1) if after[a] < xs[t] else (-1, 1)
                    if e.action == "pass":
                        (row[a] if k == APPROACH_FRAMES else row[t]).holding = e.object
        xs = after
        for later in frames[s + length:]:
            for i, x in enumerate(xs):
                later[i].x = x
    return frames, total


def _background(cfg: SyntheticConfig) -> np.ndarray:
    canvas = np.empty((cfg.size, cfg.size, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    if cfg.background != "plain":
        import skimage.data
        from skimage.transform import resize

        loader = getattr(skimage.data, cfg.background, None)
        if cfg.background not in ("astronaut", "chelsea", "coffee", "rocket", "horse") or loader is None:
            raise ValueError(f"background {cfg.background!r}: use 'plain' or astronaut/chelsea/coffee/rocket/horse")
        image = np.asarray(loader(), dtype=np.float64)
        image = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]
        image = resize(image, (cfg.size, cfg.size), preserve_range=True, anti_aliasing=True)
        canvas = (0.35 * image + 0.65 * np.asarray(BACKGROUND)).astype(np.uint8)  # faded: figures stay visible
    return canvas


def _line(img, r0, c0, r1, c1, rgb):
    from skimage.draw import line

    rr, cc = line(int(round(r0)), int(round(c0)), int(round(r1)), int(round(c1)))
    keep = (rr >= 0) & (rr < img.shape[0]) & (cc >= 0) & (cc < img.shape[1])
    img[rr[keep], cc[keep]] = rgb


def _draw_object(img, name, r, c, s):
    from skimage.draw import disk, polygon, rectangle

    rgb, k = OBJECT_RGB[name], max(1.5, 0.08 * s)
    if name == "ball":
        rr, cc = disk((r, c), k, shape=img.shape[:2])
    elif name == "book":
        rr, cc = rectangle((r - k, c - k), (r + k, c + k), shape=img.shape[:2])
    elif name == "cup":
        rr, cc = polygon([r - k, r - k, r + k, r + k], [c - k, c + k, c + 0.6 * k, c - 0.6 * k], shape=img.shape[:2])
    else:
        _line(img, r, c, r + 2 * k, c, (40, 170, 60))
        rr, cc = disk((r, c), k, shape=img.shape[:2])
    img[rr.astype(int), cc.astype(int)] = rgb


def draw_person(img: np.ndarray, person: Person, pose: Pose) -> None:
    from skimage.draw import disk, polygon, rectangle

    size = img.shape[0]
    s = AGE_HEIGHT[person.age] * size
    ground = 0.92 * size
    top = ground - s - pose.lift * s
    cx = pose.x * size
    head_r, neck, hip, feet = 0.12 * s, top + 0.24 * s, top + 0.62 * s, top + s
    shoulder = neck + 0.06 * s
    leg = 0.18 * s if pose.stride else 0.08 * s
    _line(img, hip, cx, feet, cx - leg, DARK)
    _line(img, hip, cx, feet, cx + leg, DARK)
    half = 0.14 * s
    if person.gender == "female":  # a dress: narrow at the shoulders, wide at the hip
        rr, cc = polygon([neck, neck, hip + 0.05 * s, hip + 0.05 * s], [cx - half * 0.7, cx + half * 0.7, cx + half * 1.6,
                                                                        cx - half * 1.6], shape=img.shape[:2])
    else:
        rr, cc = rectangle((neck, cx - half), (hip, cx + half), shape=img.shape[:2])
    img[rr.astype(int), cc.astype(int)] = SHIRT_RGB[person.shirt]
    arm = 0.36 * s
    for side in (-1, 1):
        if pose.reach == side:
            end = (shoulder, cx + side * (half + arm))
        elif pose.arm_up and side == 1:
            end = (shoulder - arm, cx + half + 0.1 * s)  # straight up beside the head: clear of neighbours
        else:
            end = (shoulder + arm, cx + side * (half + 0.25 * arm))
        _line(img, shoulder, cx + side * half, *end, DARK)
        if pose.holding and pose.reach == side:
            _draw_object(img, pose.holding, end[0], end[1], s)
    if "bag" in person.accessories:
        rr, cc = rectangle((hip - 0.14 * s, cx - half - 0.16 * s), (hip, cx - half - 0.02 * s), shape=img.shape[:2])
        img[rr.astype(int), cc.astype(int)] = BAG
    head_c = top + head_r
    rr, cc = disk((head_c, cx), max(head_r, 1.5), shape=img.shape[:2])
    img[rr, cc] = SKIN
    if person.age == "elderly":
        rr, cc = disk((head_c - 0.4 * head_r, cx), max(0.7 * head_r, 1.0), shape=img.shape[:2])
        img[rr, cc] = HAIR_GREY
    if "glasses" in person.accessories:
        _line(img, head_c, cx - head_r, head_c, cx + head_r, DARK)
    if "hat" in person.accessories:
        rr, cc = rectangle((top - 0.1 * s, cx - 1.3 * head_r), (top + 0.02 * s, cx + 1.3 * head_r), shape=img.shape[:2])
        img[rr.astype(int), cc.astype(int)] = DARK


def render_clip(caption: Caption, cfg: SyntheticConfig | None = None) -> SyntheticClip:
    """Draw a (timed) caption: frames [T, size, size, 3] uint8 at `cfg.fps`, their timestamps, the caption."""
    cfg = cfg or SyntheticConfig()
    validate(caption)
    if caption.events and caption.events[0].start is None:
        raise ValueError("render_clip needs a timed caption (events with start/end), e.g. from random_caption")
    frames_poses, total = poses(caption, cfg)
    canvas = _background(cfg)
    frames = np.empty((total, cfg.size, cfg.size, 3), dtype=np.uint8)
    for f, row in enumerate(frames_poses):
        img = canvas.copy()
        for person, pose in zip(caption.people, row, strict=True):
            draw_person(img, person, pose)
        frames[f] = img
    return SyntheticClip(frames, np.arange(total) / cfg.fps, caption)


def make_clip(seed: int | str, cfg: SyntheticConfig | None = None) -> SyntheticClip:
    cfg = cfg or SyntheticConfig()
    return render_clip(random_caption(random.Random(seed), cfg), cfg)
