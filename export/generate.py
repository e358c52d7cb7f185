"""`mengzi generate`: prompts -> generated texts, from a PyTorch checkpoint (`mengzi.textgen`) or an export folder
(ONNX Runtime with the KV cache, through the torch-free `OnnxGenerator`, which decodes as transformers does: the
same greedy and beam ids; sampling draws with numpy, so other samples). It lives with deployment because it reaches
both sides; the training layer below never imports this package.

    mengzi generate runs/textgen/csl-keywords-tiny/model --text "关键词：..." --num-beams 4
    mengzi generate exports/t5 --input prompts.jsonl --out generations.jsonl
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from mengzi.config import ConfigError
from mengzi.tabular import SUFFIXES, cell, read_records
from mengzi.textgen.config import GenerateConfig

from .run import emit_json_lines
from .session import MANIFEST


def is_export_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).is_file()


def _prompts(cfg: GenerateConfig) -> list[str]:
    texts = list(cfg.text)
    if cfg.input:  # JSON lines (any suffix), or a .csv/.tsv/.json file with a `text` field
        fmt = "auto" if Path(cfg.input).suffix.lower() in SUFFIXES else "jsonl"
        texts.extend(cell(cfg.input, number, record, "text", empty_ok=False)
                     for number, record in read_records(cfg.input, fmt, cfg.encoding))
    if not texts:
        raise ConfigError("mengzi generate MODEL --text PROMPT [PROMPT ...] (or --input FILE.jsonl)")
    return texts


def _onnx_generate(cfg: GenerateConfig, texts: list[str], options) -> list[str]:
    from .predictor import Predictor

    if options.min_new_tokens:
        raise ConfigError("--min-new-tokens is not supported by the ONNX generator (PyTorch only)")
    predictor = Predictor(cfg.model, providers=cfg.providers, threads=cfg.threads)
    if not predictor.head.generative:
        raise ConfigError(f"{cfg.model} is a {predictor.head.name} export; it does not generate text")
    kw = {k: v for k, v in asdict(options).items() if k != "min_new_tokens"}
    out = []
    for start in range(0, len(texts), cfg.batch_size):
        out.extend(predictor.generator.generate(texts[start : start + cfg.batch_size], **kw))
    return [text.strip() for text in out]


def _torch_generate(cfg: GenerateConfig, texts: list[str], options) -> list[str]:
    import torch

    from mengzi.textgen.generate import generate, load_generator

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model, tokenizer = load_generator(cfg.model)
    return generate(model, tokenizer, texts, options, batch_size=cfg.batch_size)


def generate_texts(cfg: GenerateConfig) -> list[str]:
    """The generated text of each prompt, printed (or written to `cfg.out`) as JSON lines {text, generated}."""
    if not cfg.model:
        raise ConfigError("mengzi generate MODEL --text PROMPT")
    texts, options = _prompts(cfg), cfg.options()
    run = _onnx_generate if is_export_folder(cfg.model) else _torch_generate
    out = run(cfg, texts, options)
    emit_json_lines([{"text": t, "generated": g} for t, g in zip(texts, out)], cfg.out, "generations")
    return out
