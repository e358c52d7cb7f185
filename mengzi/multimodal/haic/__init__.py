"""HAIC for Mengzi: human-action captions (people introduced by attributes, then their actions and interactions in
time order) as a schema (`schema`), rendered to Chinese/English text (`render`) and parsed back (`parse`);
four-option questions in five categories generated from a schema (`qa`) and answered from a caption text by a
registered answerer (`answerers`); synthetic stick-figure clips drawn from their ground-truth captions
(`synthetic`); and benchmarks whose sizes are data (`benchmark`: `make_benchmark`, `haic_bench`).

No torch anywhere here (the "lm" answerer's `causal_lm_scorer` imports it when called).
"""

from __future__ import annotations

from .answerers import ANSWERERS, get_answerer
from .benchmark import PRESETS, Benchmark, BenchmarkSizes, HaicConfig, haic_bench, load_benchmark, make_benchmark
from .parse import ParseError, parse
from .qa import CATEGORIES, Question, evaluate
from .render import render
from .schema import Caption, Event, Person, SchemaError, validate
from .synthetic import SyntheticClip, SyntheticConfig, make_clip, random_caption, render_clip

__all__ = ["ANSWERERS", "CATEGORIES", "PRESETS", "Benchmark", "BenchmarkSizes", "Caption", "Event", "HaicConfig",
           "ParseError", "Person", "Question", "SchemaError", "SyntheticClip", "SyntheticConfig", "evaluate",
           "get_answerer", "haic_bench", "load_benchmark", "make_benchmark", "make_clip", "parse", "random_caption",
           "render", "render_clip", "validate"]
