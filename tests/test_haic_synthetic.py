"""The synthetic HAIC renderer draws what its ground-truth caption says: read back from the pixels (each shirt
is a unique colour), jumps lift a figure in that event's frames, walks move it the right way, waves raise an
arm, counts of up-frames equal the caption's counts, and handshakes bring two figures together."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mengzi.multimodal.haic.schema import Caption, Event, Person
from mengzi.multimodal.haic.synthetic import (
    DARK,
    OBJECT_RGB,
    SHIRT_RGB,
    SyntheticConfig,
    make_clip,
    random_caption,
    render_clip,
)

CFG = SyntheticConfig()


def shirt_centre(frame: np.ndarray, colour: str) -> tuple[float, float]:
    """(top row, mean column) of a shirt: the top, because a figure passing in front may hide part of it."""
    rows, cols = np.nonzero((frame == SHIRT_RGB[colour]).all(axis=-1))
    assert len(rows), f"no {colour} shirt in the frame"
    return rows.min(), cols.mean()


def frames_of(clip, event: Event) -> range:
    fps = CFG.fps
    return range(round(event.start * fps), round(event.end * fps) + 1)


def test_every_event_shows_in_the_frames_of_its_time_span():
    checked = set()
    for seed in range(40):
        clip = make_clip(seed, CFG)
        cap = clip.caption
        assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (CFG.size, CFG.size, 3)
        assert np.allclose(np.diff(clip.timestamps), 1 / CFG.fps)
        for e in cap.events:
            colour = cap.person(e.actor).shirt
            span = list(frames_of(clip, e))
            before = shirt_centre(clip.frames[span[0] - 1], colour)  # the still frame before the event
            centres = [shirt_centre(clip.frames[f], colour) for f in span]
            if e.action == "jump":  # up on every other frame: count up-frames = jumps
                ups = sum(r < before[0] - 1 for r, _ in centres)
                assert ups == e.count, (seed, e)
            elif e.action in ("walk_left", "walk_right"):
                moved = centres[-1][1] - before[1]
                assert (moved < -3) if e.action == "walk_left" else (moved > 3), (seed, e)
                assert all(abs(r - before[0]) < 1 for r, _ in centres)  # walking, not jumping
            elif e.action == "wave":  # the arm goes up on every other frame: count raised frames = waves
                still = clip.frames[span[0] - 1]
                assert sum(_arm_raised(clip.frames[f], still, cap.person(e.actor)) for f in span) == e.count, (seed, e)
            else:  # handshake / pass: the actor ends up next to the partner
                partner = shirt_centre(clip.frames[span[-1]], cap.person(e.target).shirt)
                assert abs(centres[-1][1] - partner[1]) < 0.4 * CFG.size, (seed, e)
                if e.action == "pass":
                    rgb = OBJECT_RGB[e.object]
                    assert any((clip.frames[f] == rgb).all(-1).any() for f in span)
                    assert not (clip.frames[span[0] - 1] == rgb).all(-1).any()
            checked.add(e.action)
    assert checked == {"walk_left", "walk_right", "wave", "jump", "handshake", "pass"}


def _arm_raised(frame, still, person) -> bool:
    """Does `frame` differ from the still frame just above and right of the shoulder (where only a raised arm goes)?"""
    from mengzi.multimodal.haic.synthetic import AGE_HEIGHT

    s = AGE_HEIGHT[person.age] * CFG.size
    rows, cols = np.nonzero((still == SHIRT_RGB[person.shirt]).all(axis=-1))
    top = rows.min()
    right = cols[rows == top].max()  # the shoulder's edge (a dress is wider lower down)
    window = (slice(int(top - 0.3 * s), top), slice(right + 1, int(right + 0.2 * s) + 2))
    return bool((frame[window] != still[window]).any())


def test_attributes_are_drawn():
    people = (Person(1, "male", "child", "red", ("hat",)), Person(2, "female", "adult", "blue", ("bag",)),
              Person(3, "male", "elderly", "green"))
    clip = render_clip(Caption(people, (Event(1, "wave", count=1, start=0.0, end=0.5),)), CFG)
    frame = clip.frames[-1]
    heights = {p.shirt: np.ptp(np.nonzero((frame == SHIRT_RGB[p.shirt]).all(-1))[0]) for p in people}
    assert heights["red"] < heights["green"] <= heights["blue"]  # a child is smaller
    assert ((frame == (110, 70, 30)).all(-1)).any()  # the bag
    assert ((frame == (200, 200, 200)).all(-1)).any()  # grey hair of the elderly man
    no_hat = render_clip(Caption((Person(1, "male", "child", "red"),) + people[1:],
                                 (Event(1, "wave", count=1, start=0.0, end=0.5),)), CFG).frames[-1]
    assert (frame == DARK).all(-1).sum() > (no_hat == DARK).all(-1).sum()


def test_rendering_is_a_function_of_the_caption():
    caption = random_caption(random.Random(11), CFG)
    a, b = render_clip(caption, CFG), render_clip(caption, CFG)
    assert np.array_equal(a.frames, b.frames)
    with pytest.raises(ValueError, match="timed caption"):
        render_clip(caption.without_times(), CFG)


def test_a_real_scikit_image_picture_can_be_the_background():
    from dataclasses import replace

    cfg = replace(CFG, background="coffee")
    clip = make_clip(3, cfg)
    plain = make_clip(3, CFG)
    assert clip.frames.std() > plain.frames.std()  # the photo shows through
    for p in clip.caption.people:  # figures stay readable on it
        shirt_centre(clip.frames[0], p.shirt)
    with pytest.raises(ValueError, match="background 'moon'"):
        make_clip(3, replace(CFG, background="moon"))


def test_the_shipped_gif_fixture_chunks_like_a_video():
    """scikit-image ships `no_time_for_that_tiny.gif` in its wheel (no download); it goes through chunk_video."""
    import skimage.data
    from PIL import Image, ImageSequence

    from mengzi.multimodal.video import chunk_video

    path = f"{skimage.data.data_dir}/no_time_for_that_tiny.gif"
    frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(Image.open(path))])
    assert frames.shape[0] > 10
    clip = chunk_video(frames, np.arange(len(frames)) * 0.07, fps=4.0, chunk_frames=2, size=32)
    assert clip.num_chunks >= 3 and np.all(np.diff(clip.chunk_index) > 0)
