"""A HAIC benchmark built from synthetic clips: its sizes are data (YAML), never constants in code.

The paper's versions disagree (500 captions + 1,400 QA in one, 412 + 2,000 in another), so `BenchmarkSizes`
says how many captions and questions to make and how questions split over the five categories; `PRESETS`
holds both published shapes and a small default, and recipes/haic/*.yaml write them out. `make_benchmark`
samples clips (their ground-truth captions; frames are re-drawn from a caption on demand) and spreads the
questions over them category by category, round-robin, never asking the same query twice about a clip.
A benchmark saves to captions.jsonl + qa.jsonl (atomic writes) and loads back with errors naming file, line
and field. `haic_bench` answers every question from a caption text (ground truth, a file, or a saved video model's
own captions) with a registered answerer, and with a video model also directly; it writes a run folder with
metrics.json (per-category accuracy, next to a random answerer measured in the same run).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import atomic
from ...config import option, save_yaml
from ...tabular import read_records
from .answerers import get_answerer
from .qa import CATEGORIES, NUM_OPTIONS, Question, candidates, evaluate, make_question
from .render import render
from .schema import Caption, SchemaError
from .synthetic import SyntheticConfig, random_caption

# what a video model is asked (and trained) to caption with, per language
CAPTION_PROMPTS = {"zh": "描述视频中的人物和他们的动作。", "en": "Describe the people in the video and what they do."}
CAPTION_PROMPT = CAPTION_PROMPTS["zh"]


def clean_generated(text: str, lang: str) -> str:
    """A generated caption as the parser reads it: the tokenizer's spaces between Chinese characters dropped
    (English keeps its spaces)."""
    return text.replace(" ", "") if lang == "zh" else " ".join(text.split())


class BenchmarkError(ValueError):
    """A benchmark file is malformed; the message names file, line and field."""


@dataclass
class BenchmarkSizes:
    captions: int = option(40, "clips (each with one ground-truth caption)")
    qa: int = option(100, "multiple-choice questions in all")
    category_share: dict = option({}, "relative weight of each category ({interaction: 1, count: 2, ...}); "
                                  "empty: equal shares")

    def per_category(self) -> dict[str, int]:
        """Question counts per category summing exactly to `qa` (largest remainder)."""
        unknown = set(self.category_share) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"category_share: unknown categories {sorted(unknown)}; categories are {list(CATEGORIES)}")
        weights = {c: float(self.category_share.get(c, 0 if self.category_share else 1)) for c in CATEGORIES}
        negative = sorted(c for c, w in weights.items() if w < 0)
        if negative:
            raise ValueError(f"category_share: weights must be >= 0, got {({c: weights[c] for c in negative})}")
        total = sum(weights.values())
        if total <= 0 or self.qa < 0 or self.captions < 1:
            raise ValueError(f"benchmark sizes need captions >= 1, qa >= 0 and a positive share (got {self})")
        exact = {c: self.qa * w / total for c, w in weights.items()}
        counts = {c: int(v) for c, v in exact.items()}
        for c in sorted(CATEGORIES, key=lambda c: counts[c] - exact[c])[: self.qa - sum(counts.values())]:
            counts[c] += 1
        return counts


PRESETS = {
    "small": BenchmarkSizes(40, 100),
    "haic-500-1400": BenchmarkSizes(500, 1400),
    "haic-412-2000": BenchmarkSizes(412, 2000),
}


@dataclass
class Benchmark:
    captions: dict[str, Caption]  # clip id -> timed ground-truth caption
    questions: list[Question]
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


def make_benchmark(sizes: BenchmarkSizes, seed: int = 0, lang: str = "zh",
                   synthetic: SyntheticConfig | None = None) -> Benchmark:
    synthetic = synthetic or SyntheticConfig()
    rng = random.Random(f"haic-{seed}")
    captions = {f"clip{i:05d}": random_caption(random.Random(f"haic-{seed}-clip{i}"), synthetic)
                for i in range(sizes.captions)}
    questions: list[Question] = []
    for category, wanted in sizes.per_category().items():
        pools = {cid: candidates(c, category) for cid, c in captions.items()}
        for pool in pools.values():
            rng.shuffle(pool)
        order = list(captions)
        rng.shuffle(order)
        made = 0
        while made < wanted:
            progress = False
            for cid in order:
                if made == wanted:
                    break
                if pools[cid]:
                    query = pools[cid].pop()
                    questions.append(make_question(captions[cid], query, lang, rng, f"{cid}-{category}-{made}", cid))
                    made, progress = made + 1, True
            if not progress:
                raise ValueError(f"the sizes ask for {wanted} {category} questions but {sizes.captions} clips "
                                 f"support only {made}; add captions or lower qa")
    return Benchmark(captions, questions, synthetic)


# ----------------------------------------------------------------------------------------------------- files
def save_benchmark(bench: Benchmark, folder: str | Path) -> Path:
    folder = Path(folder)
    atomic.write_text(folder / "captions.jsonl", "".join(
        json.dumps({"id": cid, "caption": c.to_dict()}, ensure_ascii=False) + "\n" for cid, c in bench.captions.items()))
    atomic.write_text(folder / "qa.jsonl", "".join(json.dumps(q.to_dict(), ensure_ascii=False) + "\n"
                                                   for q in bench.questions))
    save_yaml(bench.synthetic, folder / "synthetic.yaml", header="how the clips were drawn (render_clip)")
    return folder


def _rows(path: Path):
    return read_records(path, "jsonl", error=BenchmarkError)


def _need(row: dict, name: str, kind: type | tuple, where: str) -> Any:
    if name not in row:
        raise BenchmarkError(f"{where}: field {name!r} is missing")
    if not isinstance(row[name], kind) or isinstance(row[name], bool):
        raise BenchmarkError(f"{where}: field {name!r} has the wrong type ({type(row[name]).__name__})")
    if isinstance(row[name], str) and not row[name].strip():
        raise BenchmarkError(f"{where}: field {name!r} is empty")
    return row[name]


def load_benchmark(folder: str | Path) -> Benchmark:
    from ...config import load_yaml

    folder = Path(folder)
    captions: dict[str, Caption] = {}
    path = folder / "captions.jsonl"
    for n, row in _rows(path):
        where = f"{path}:{n}"
        cid = _need(row, "id", str, where)
        if cid in captions:
            raise BenchmarkError(f"{where}: field 'id': {cid!r} repeats an earlier caption")
        try:
            captions[cid] = Caption.from_dict(_need(row, "caption", dict, where), where=f"{where}: field 'caption'")
        except SchemaError as e:
            raise BenchmarkError(str(e)) from None
    questions, seen = [], set()
    path = folder / "qa.jsonl"
    for n, row in _rows(path):
        where = f"{path}:{n}"
        values = {name: _need(row, name, kind, where) for name, kind in (
            ("id", str), ("clip_id", str), ("category", str), ("lang", str), ("text", str), ("options", list),
            ("answer", int), ("query", dict))}
        if values["clip_id"] not in captions:
            raise BenchmarkError(f"{where}: field 'clip_id': {values['clip_id']!r} is not in captions.jsonl")
        if values["category"] not in CATEGORIES:
            raise BenchmarkError(f"{where}: field 'category': {values['category']!r} is not one of {list(CATEGORIES)}")
        options = values["options"]
        if len(options) != NUM_OPTIONS or not all(isinstance(o, str) for o in options) or len(set(options)) != len(options):
            raise BenchmarkError(f"{where}: field 'options': expected {NUM_OPTIONS} distinct strings, got {options!r:.80}")
        if not 0 <= values["answer"] < len(options):
            raise BenchmarkError(f"{where}: field 'answer': {values['answer']} is not an option index")
        if values["lang"] not in ("zh", "en"):
            raise BenchmarkError(f"{where}: field 'lang': {values['lang']!r} is not 'zh' or 'en'")
        if values["id"] in seen:
            raise BenchmarkError(f"{where}: field 'id': {values['id']!r} repeats an earlier question")
        seen.add(values["id"])
        questions.append(Question(**values))
    synthetic = load_yaml(SyntheticConfig, folder / "synthetic.yaml") if (folder / "synthetic.yaml").exists() \
        else SyntheticConfig()
    return Benchmark(captions, questions, synthetic)


# --------------------------------------------------------------------------------------------- `mengzi haic bench`
@dataclass
class HaicConfig:
    sizes: BenchmarkSizes = option(PRESETS["small"], "how many captions and questions, and the category split")
    seed: int = option(0, "seed for clips, questions and the answerers' guesses")
    lang: str = option("zh", "language of captions, questions and options: zh or en")
    answerer: str = option("schema", "caption-only answerer: schema (parse the caption), random, ...")
    captions: str = option("", "JSONL of {clip_id, caption} texts to answer from (e.g. a model's); empty: the "
                           "ground-truth captions, rendered without times")
    model: str = option("", "a saved MavorsVideoLM folder: it captions every clip (the answerer reads those captions) "
                        "and also answers directly (the option it scores highest); overrides `captions`")
    synthetic: SyntheticConfig = option(SyntheticConfig(), "how the synthetic clips are drawn")
    out: str = option("runs/haic/bench", "run folder (benchmark files, predictions.jsonl, metrics.json)")
    overwrite: bool = option(False, "replace an existing run folder")


def video_clips(model, bench: Benchmark, blank: bool = False) -> dict:
    """Every clip of the benchmark drawn and cut into the model's chunks; `blank`: all-zero frames of the same
    length (the control for what the language prior alone answers)."""
    import numpy as np

    from .synthetic import render_clip

    out = {}
    for cid, caption in bench.captions.items():
        drawn = render_clip(caption, bench.synthetic)
        frames = np.zeros_like(drawn.frames) if blank else drawn.frames
        out[cid] = model.clip_video(frames, drawn.timestamps)
    return out


def model_captions(model, clips: dict, lang: str = "zh", max_new_tokens: int = 96) -> dict[str, str]:
    """The video model's caption of every clip, cleaned for the parser."""
    from tqdm.auto import tqdm

    return {cid: clean_generated(model.generate([clips[cid]], [CAPTION_PROMPTS[lang]], max_new_tokens=max_new_tokens)[0],
                                 lang) for cid in tqdm(clips, desc="caption", mininterval=5)}


def model_choices(model, clips: dict, questions: list[Question], batch: int = 8) -> tuple[list[int], list[list[float]]]:
    """The option the video model scores highest for every question, and all option scores."""
    choices, all_scores = [], []
    for i in range(0, len(questions), batch):
        qs = questions[i : i + batch]
        scores = model.score([clips[q.clip_id] for q in qs], [q.text for q in qs], [q.options for q in qs])
        choices += [max(range(len(s)), key=s.__getitem__) for s in scores]
        all_scores += scores
    return choices, all_scores


def video_model_answers(folder: str, bench: Benchmark, lang: str = "zh",
                        max_new_tokens: int = 96) -> tuple[dict[str, str], list[int]]:
    """A saved video model's captions of every clip and its direct choice for every question (torch)."""
    from ..video.model import MavorsVideoLM

    model = MavorsVideoLM.load(folder).eval()
    clips = video_clips(model, bench)
    return model_captions(model, clips, lang, max_new_tokens), model_choices(model, clips, bench.questions)[0]


def _caption_texts(cfg: HaicConfig, bench: Benchmark) -> dict[str, str]:
    if not cfg.captions:
        return {cid: render(c, cfg.lang, times=False) for cid, c in bench.captions.items()}
    path, texts, lines = Path(cfg.captions), {}, {}
    for n, row in _rows(path):
        cid = _need(row, "clip_id", str, f"{path}:{n}")
        if cid in texts:
            raise BenchmarkError(f"{path}:{n}: field 'clip_id': {cid!r} repeats line {lines[cid]}")
        texts[cid], lines[cid] = _need(row, "caption", str, f"{path}:{n}"), n
    missing = sorted(set(bench.captions) - set(texts))
    if missing:
        raise BenchmarkError(f"{path}: no caption for {len(missing)} clip(s), e.g. {missing[:3]}")
    return texts


def answer_all(bench: Benchmark, texts: dict[str, str], answerer: str, seed: int) -> list[int]:
    pick = get_answerer(answerer, seed=seed)
    return [pick(texts[q.clip_id], q) for q in bench.questions]


def haic_bench(cfg: HaicConfig) -> Path:
    """Make the benchmark, answer it from captions, write the run folder; returns its path."""
    bench = make_benchmark(cfg.sizes, cfg.seed, cfg.lang, cfg.synthetic)
    texts = None if cfg.model else _caption_texts(cfg, bench)  # a bad captions file stops before the run folder
    with atomic.folder(cfg.out, overwrite=cfg.overwrite) as tmp:
        save_yaml(cfg, tmp / "config.yaml", header="mengzi haic bench")
        save_benchmark(bench, tmp / "benchmark")
        direct = None
        if cfg.model:
            texts, direct = video_model_answers(cfg.model, bench, cfg.lang)
            atomic.write_text(tmp / "captions.jsonl", "".join(json.dumps({"clip_id": c, "caption": t}, ensure_ascii=False)
                                                              + "\n" for c, t in texts.items()))
        choices = answer_all(bench, texts, cfg.answerer, cfg.seed)
        random_choices = answer_all(bench, texts, "random", cfg.seed)
        metrics = {"answerer": cfg.answerer, "captions": cfg.model or cfg.captions or "ground truth", "lang": cfg.lang,
                   **evaluate(bench.questions, choices),
                   "random_baseline": evaluate(bench.questions, random_choices)}
        if direct is not None:
            metrics["direct_qa"] = evaluate(bench.questions, direct)
        atomic.write_text(tmp / "predictions.jsonl", "".join(
            json.dumps({"id": q.id, "choice": c, "answer": q.answer}) + "\n"
            for q, c in zip(bench.questions, choices, strict=True)))
        atomic.write_text(tmp / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return Path(cfg.out)
