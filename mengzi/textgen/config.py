"""Generative fine-tuning and generation as dataclasses; `recipes/textgen/*.yaml` are their serialisation:

    mengzi textgen train --config recipes/textgen/csl-keywords-tiny.yaml --train.max-steps 50
    mengzi generate runs/textgen/csl-keywords-tiny/model --text "关键词：..." --num-beams 4

Torch-free, so the command line loads fast.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from ..config import option
from ..engine.args import TrainArgs


@dataclass
class GenerationOptions:
    max_new_tokens: int = option(32, "most tokens to generate after the prompt", min=1)
    min_new_tokens: int = option(0, "fewest tokens to generate before EOS is allowed (PyTorch only)", min=0)
    num_beams: int = option(1, "beam width (1: greedy, or sampling with do_sample)", min=1)
    do_sample: bool = option(False, "sample from the distribution instead of taking the best token(s)")
    top_k: int = option(0, "sampling: keep only the k most likely tokens (0: off)", min=0)
    top_p: float = option(1.0, "sampling: keep the smallest set of tokens with this much probability (1: off)",
                          above=0, max=1)
    temperature: float = option(1.0, "sampling: divide the logits by this (>1 flatter, <1 sharper)", above=0)
    repetition_penalty: float = option(1.0, "divide the scores of tokens already in the sequence by this (1: off)",
                                       above=0)
    length_penalty: float = option(1.0, "beam search: score / length ** this (>1 favours longer outputs)")
    seed: int = option(0, "seed of the sampling draws (same seed, same samples)", min=0)


@dataclass
class TextGenTrainConfig(TrainArgs):
    """The engine's `TrainArgs` with text generation's defaults, plus sequence lengths and evaluation sizes."""

    max_steps: int = option(300, "optimizer steps (0: `epochs` passes over the training set)", min=0)
    epochs: float = option(1.0, "passes over the training set when max_steps is 0", min=0)
    batch_size: int = option(16, "examples (or corpus blocks) per optimizer step", min=1)
    micro_batch_size: int = option(16, "examples per forward pass; accumulation makes up batch_size", min=1)
    lr: float = option(1e-3, "peak learning rate", min=0)
    warmup_ratio: float = option(0.06, "share of the steps with linear warmup when warmup_steps is 0", min=0, max=1)
    save_every: int = option(100, "optimizer steps between resumable checkpoints (0: at every evaluation)", min=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = option(
        "no", "auto: bf16/fp16 on GPU, bf16 on CPUs with native bf16; no: fp32")
    max_source_len: int = option(256, "source tokens kept (longer sources are cut)", min=1)
    max_target_len: int = option(64, "target tokens kept (longer targets are cut)", min=1)
    block_size: int = option(128, "corpus task: tokens per training / perplexity block", min=2)
    max_train_examples: int = option(0, "use only the first N training examples or corpus documents (0: all)", min=0)
    max_eval_examples: int = option(200, "generate for / score only the first N dev examples, or (corpus) the "
                                    "first N held-out paragraphs (0: all)", min=0)
    eval_batch_size: int = option(32, "examples per generation or perplexity batch at evaluation", min=1)


@dataclass
class TextGenData:
    csl_dir: str = option("data:clue/csl", "csl-keywords: folder with the CLUE CSL train.json / dev.json")
    prefix: str = option("关键词：", "text put before every source (a task prompt); '' for none")
    separator: str = option("；", "csl-keywords: what joins the keywords of a target: one of ；;，, (the "
                                 "separators keyword F1 splits on)")
    corpus: list[str] = option(["data:corpus/classics/*.txt"], "corpus: text files, folders or globs "
                               "(one paragraph a line; blank lines are skipped)")
    eval_fraction: float = option(0.02, "corpus: share of paragraphs held out for perplexity (chosen by a hash "
                                  "of file name and paragraph number: the same split every run)", min=0, max=1)
    train: str = option("", "pairs: training file (.jsonl, .csv or .tsv)")
    dev: str = option("", "pairs: dev file (generated and scored after training)")
    format: Literal["auto", "csv", "tsv", "tsv-quoted", "jsonl", "json"] = option(
        "auto", "pairs: file format; auto: by extension (.tsv without CSV quoting; .json lines or one array)")
    encoding: str = option("utf-8", "pairs: the files' text encoding (utf-8, gbk, gb18030, ...)")
    source: str = option("source", "pairs: the field holding the input text")
    target: str = option("target", "pairs: the field holding the text to generate")
    id: str = option("", "pairs: id field (default: the row number)")


@dataclass
class TextGenConfig:
    model: str = option("mengzi-t5-tiny", "what to fine-tune: a checkpoint folder, preset with a checkpoint or hub "
                        "id; with from_scratch, the preset to initialise")
    from_scratch: bool = option(False, "initialise `model` (a preset) randomly instead of loading weights")
    tokenizer: str = option("", "from_scratch: tokenizer folder or file (default: the preset's)")
    overrides: dict = option({}, "from_scratch: preset config fields to change, e.g. {d_model: 64}")
    task: Literal["csl-keywords", "corpus", "pairs"] = option(
        "csl-keywords", "csl-keywords: CSL abstract -> keywords; corpus: causal LM on text files (GPT-Neo); "
        "pairs: your source/target file")
    dataset: TextGenData = option(TextGenData(), "where the task's data is and how it is laid out")
    out: str = option("", "run folder: config.yaml, metrics.jsonl, metrics.json, predictions.jsonl, model/")
    train: TextGenTrainConfig = option(TextGenTrainConfig(), "the optimisation")
    generation: GenerationOptions = option(GenerationOptions(), "decoding of the dev predictions")
    resume: bool = option(False, "continue from the run folder's last complete checkpoint")
    overwrite: bool = option(False, "start afresh in a run folder that already has results")
    data: str = option("", "data folder for data:REL paths (default $DATA or ../shared/data)")


@dataclass
class GenerateConfig(GenerationOptions):
    """`mengzi generate MODEL --text ... --num-beams 4`: the decoding options as top-level flags, plus these."""

    model: str = option("", "a checkpoint folder (or a run folder holding model/), preset with a checkpoint, hub id, "
                        "or an export folder of `mengzi export` (ONNX Runtime with a KV cache)")
    text: list[str] = option([], "prompts, `--text A B C` (T5: the source; GPT-Neo: the text to continue)")
    input: str = option("", "a file of prompts: JSON lines {\"text\": ...} (any other suffix), or .csv/.tsv/.json "
                        "with a `text` field")
    encoding: str = option("utf-8", "--input text encoding (e.g. gbk, gb18030); a UTF-8 BOM is always accepted")
    out: str = option("", ".jsonl file to write {text, generated} to (default: print)")
    batch_size: int = option(16, "prompts per generate call", min=1)
    providers: str = option("cpu", "export folders: ONNX Runtime providers (auto, cpu, cuda, tensorrt)")
    threads: int = option(0, "torch / ONNX Runtime threads (0: default)", min=0)

    def options(self) -> GenerationOptions:
        return GenerationOptions(**{f.name: getattr(self, f.name) for f in fields(GenerationOptions)})
