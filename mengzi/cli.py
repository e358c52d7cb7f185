"""The `mengzi` command. Each subcommand is a plain function over a dataclass config:

    mengzi presets                          list every Mengzi variant
    mengzi init PRESET OUT                  random-init checkpoint + tokenizer (safetensors)
    mengzi tokenizer train --kind t5 ...    train a WordPiece or SentencePiece tokenizer
    mengzi pretrain --config R.yaml         pre-train (recipes/pretrain/); accelerate launch ... -m mengzi pretrain
    mengzi finetune --dataset.train F ...   fine-tune on your own CSV/TSV/JSONL (classification, choice, span)
    mengzi clue run TASK --model M          a CLUE task end to end (recipes/clue/); then `clue submit`, `validate`
    mengzi clue text2text TASK --model M    a CLUE task as text-to-text with label words (T5 / GPT-Neo)
    mengzi clue prompt TASK --model M       zero-/few-shot prompting over Chinese templates
    mengzi export MODEL --out DIR           ONNX export (+ --optimize, --quantize int8, --fp16), two gates
    mengzi predict DIR --text ...           ONNX Runtime predictions (no torch); --clue: official test files
    mengzi serve DIR                        JSON HTTP API with dynamic batching (127.0.0.1:8000)
    mengzi textgen train --config R.yaml    fine-tune T5 / GPT-Neo to generate (recipes/textgen/): keywords, pairs, corpus
    mengzi generate MODEL --text ...        T5 / GPT-Neo generation from a checkpoint or an export folder
    mengzi oscar train|caption ...          Oscar-style captioning / retrieval (recipes/oscar/)
    mengzi video train --config R.yaml      Mavors-style video LM, trained in stages (recipes/video/)
    mengzi haic bench --config R.yaml       HAIC QA on synthetic human-action clips (recipes/haic/)
    mengzi info MODEL [--text ...]          what a checkpoint holds, and how it tokenizes/segments a text
    mengzi data check                       is the data folder complete (and what to download if not)
    mengzi recipes [list|show|copy NAME]    the recipes that ship with mengzi; `--recipe NAME` reads one

Flags override fields; `--config FILE.yaml` (a recipe) sets many at once. Heavy libraries load inside the
functions, so `mengzi --help` is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import __version__
from .atomic import DiskFullError
from .clue.prompts import PromptConfig
from .clue.run import ClueRunConfig, SubmitConfig, ValidateConfig
from .clue.text2text import Text2TextConfig
from .config import ConfigError, add_arguments, option, resolve
from .data import MissingDataError
from .export.run import ExportConfig, PredictConfig
from .export.server import ServeConfig
from .export.session import ExportError
from .finetune.userdata import UserFinetuneConfig
from .hub import PushConfig
from .multimodal.haic.benchmark import HaicConfig
from .multimodal.oscar.config import OscarCaptionConfig, OscarTrainConfig
from .multimodal.video.config import VideoTrainConfig
from .pretrain.config import PretrainConfig
from .recipebook import RecipesConfig
from .textgen.config import GenerateConfig, TextGenConfig
from .tokenizer.normalize import NormalizerConfig

log = logging.getLogger("mengzi")


# ------------------------------------------------------------------------------------------------------ presets
@dataclass
class PresetsConfig:
    family: str = option("", "only presets of this family (bert, t5, gpt-neo, oscar)")


def presets(cfg: PresetsConfig) -> list[str]:
    from .models.presets import PRESETS

    rows = [p for p in PRESETS.values() if not cfg.family or p.family == cfg.family]
    print(f"{'preset':24} {'family':8} {'layers':>7} {'hidden':>6} {'vocab':>7}  {'Langboat checkpoint':30} description")
    for p in rows:
        c = p.config
        layers = c.get("num_hidden_layers") or c.get("num_layers")
        if p.family == "t5":
            layers = f"{c['num_layers']}+{c['num_decoder_layers']}"
        hidden = c.get("hidden_size") or c.get("d_model")
        vocab = c.get("vocab_size") or "tok"
        print(f"{p.name:24} {p.family:8} {layers!s:>7} {hidden!s:>6} {vocab!s:>7}  {p.hub_id or '-':30} {p.description}")
    return [p.name for p in rows]


# --------------------------------------------------------------------------------------------------------- init
@dataclass
class InitConfig:
    preset: str = option("mengzi-bert-tiny", "preset name (see `mengzi presets`)")
    out: str = option("", "output folder")
    tokenizer: str = option("", "tokenizer folder or file; default: the preset's (data:vocab/...)")
    task: str = option("", "head to build (masked-lm, seq2seq-lm, causal-lm, base, ...); default: pre-training")
    seed: int = option(0, "random seed for the initial weights")
    data: str = option("", "data folder (default $DATA or ../shared/data)")
    overwrite: bool = option(False, "replace an existing output folder")


def init(cfg: InitConfig) -> Path:
    from .models.load import init_model, save_pretrained

    if not cfg.out:
        raise ConfigError("init needs an output folder: mengzi init PRESET OUT")
    model, tokenizer = init_model(cfg.preset, tokenizer=cfg.tokenizer or None, task=cfg.task or None, seed=cfg.seed,
                                  data=cfg.data or None)
    out = save_pretrained(model, tokenizer, cfg.out, overwrite=cfg.overwrite)
    n = sum(p.numel() for p in model.parameters())
    print(f"{cfg.preset}: {type(model).__name__}, {n / 1e6:.2f}M parameters, vocab {len(tokenizer)} -> {out}")
    return out


# ---------------------------------------------------------------------------------------------- tokenizer train
@dataclass
class TokenizerTrainConfig:
    kind: Literal["wordpiece", "t5", "gpt"] = option("t5", "wordpiece (BERT vocab.txt), t5 (unigram + 100 "
                                                     "sentinels) or gpt (unigram, HF-loadable)")
    input: list[str] = option([], "text files, folders or globs (.txt one document a line, .jsonl with a text field)")
    out: str = option("", "output tokenizer folder")
    vocab_size: int = option(32128, "final vocab size (t5: including the 100 sentinels)")
    model_type: Literal["unigram", "bpe"] = option("unigram", "SentencePiece algorithm (t5/gpt)")
    character_coverage: float = option(0.9995, "share of characters SentencePiece must cover (Chinese: 0.9995)")
    min_frequency: int = option(2, "WordPiece: minimum pair frequency")
    text_field: str = option("text", "field holding the text in .jsonl input")
    max_texts: int = option(0, "read at most this many texts (0: all)")
    seed: int = option(0, "sampling seed")
    normalize: NormalizerConfig = option(NormalizerConfig(), "corpus normaliser applied before training")
    data: str = option("", "data folder for data:REL inputs (default $DATA or ../shared/data)")
    overwrite: bool = option(False, "replace an existing output folder")


def tokenizer_train(cfg: TokenizerTrainConfig) -> Path:
    import itertools

    from tqdm import tqdm

    from . import atomic
    from .data import resolve as resolve_data
    from .textfiles import ReadStats, iter_texts
    from .tokenizer.normalize import Normalizer

    if not cfg.input or not cfg.out:
        raise ConfigError("tokenizer train needs --input FILE... and --out FOLDER")
    stats = ReadStats()
    paths = [resolve_data(p, cfg.data or None) for p in cfg.input]
    texts = iter_texts(paths, text_field=cfg.text_field, stats=stats)
    if cfg.max_texts:
        texts = itertools.islice(texts, cfg.max_texts)
    normalizer = Normalizer(cfg.normalize)
    if normalizer.active:
        texts = map(normalizer, texts)
    texts = tqdm(texts, desc="reading texts", unit=" texts", mininterval=2)
    with atomic.folder(cfg.out, overwrite=cfg.overwrite) as tmp:
        if cfg.kind == "wordpiece":
            from .tokenizer.wordpiece import save_wordpiece, train_wordpiece

            tok = train_wordpiece(texts, cfg.vocab_size, min_frequency=cfg.min_frequency)
            save_wordpiece(tok, tmp)
        else:
            from .tokenizer.sentencepiece import train_sentencepiece

            tok = train_sentencepiece(texts, tmp, kind=cfg.kind, vocab_size=cfg.vocab_size,
                                      model_type=cfg.model_type, character_coverage=cfg.character_coverage,
                                      seed=cfg.seed)
    print(f"{cfg.kind} tokenizer, {len(tok)} tokens, from {stats.lines} texts in {stats.files} files "
          f"({stats.empty} empty, {stats.undecodable_lines} undecodable, {stats.bad_records} bad records) "
          f"-> {cfg.out}")
    for problem in stats.problems:
        log.warning("skipped %s", problem)
    return Path(cfg.out)


# ----------------------------------------------------------------------------------------------------- pretrain
def pretrain(cfg: PretrainConfig) -> Path:
    from .pretrain.trainer import pretrain as run

    return run(cfg)


# --------------------------------------------------------------------------------------------------------- info
@dataclass
class InfoConfig:
    model: str = option("", "model folder, preset with a checkpoint, or hub id")
    text: str = option("", "a text to tokenize, segment and run through the model")
    segmenter: str = option("jieba", "word segmenter for the text (jieba, char)")


def info(cfg: InfoConfig) -> dict:
    import torch
    import transformers

    from .models.load import family_of, load
    from .tokenizer import align_words_to_tokens, get_segmenter, word_spans

    # loading the encoder alone drops the pre-training head: expected, so no load report; restore after
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model, tokenizer = load(cfg.model, task="base")
    finally:
        transformers.logging.set_verbosity(verbosity)
    n = sum(p.numel() for p in model.parameters())
    summary = dict(model=cfg.model, family=family_of(model.config), cls=type(model).__name__,
                   parameters=n, vocab=len(tokenizer), pad=tokenizer.pad_token, pad_id=tokenizer.pad_token_id)
    for k, v in summary.items():
        print(f"{k:12} {v}")
    if cfg.text:
        enc = tokenizer(cfg.text, return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0].tolist()
        words = get_segmenter(cfg.segmenter).cut(cfg.text)
        word_ids = align_words_to_tokens(word_spans(cfg.text, words), offsets)
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
        print("words       ", " / ".join(words))
        print("tokens      ", " ".join(f"{t}[{w}]" if w is not None else t for t, w in zip(tokens, word_ids)))
        inputs = dict(enc)
        if model.config.is_encoder_decoder:
            inputs["decoder_input_ids"] = enc["input_ids"][:, :1]
        with torch.no_grad():
            hidden = model(**inputs).last_hidden_state
        print("hidden      ", tuple(hidden.shape), f"mean {hidden.mean():.4f} std {hidden.std():.4f}")
        summary.update(tokens=tokens, words=words, hidden_shape=tuple(hidden.shape))
    return summary


# --------------------------------------------------------------------------------------------------- data check
@dataclass
class DataCheckConfig:
    data: str = option("", "data folder (default $DATA or ../shared/data)")
    need: list[str] = option(["vocab/google_zh_vocab.txt", "vocab/chinese_xlnet_spiece.model",
                              "corpus/uer_samples/CLUECorpusSmall_sampled.txt"],
                             "paths under the data folder that must exist (default: what `make demo` reads)")


def data_check(cfg: DataCheckConfig) -> Path:
    from .data import data_dir, require

    missing = []
    for rel in cfg.need:
        try:
            require(rel, cfg.data or None)
        except MissingDataError as e:
            missing.append(str(e))
    if missing:
        raise MissingDataError("\n".join(missing))
    root = data_dir(cfg.data or None)
    print(f"data folder {root.resolve()}: all {len(cfg.need)} required paths present")
    return root


# ---------------------------------------------------------------------------------------------- fine-tuning
def finetune(cfg):
    from .finetune.userdata import finetune_user

    return finetune_user(cfg)


def clue_run(cfg):
    from .clue.run import clue_run as run

    return run(cfg)


def clue_submit(cfg):
    from .clue.run import clue_submit as run

    return run(cfg)


def clue_validate(cfg):
    from .clue.run import clue_validate as run

    return run(cfg)


# --------------------------------------------------------------------------------------------------- deployment
def export(cfg):
    from .export.run import export_model

    return export_model(cfg)


def predict(cfg):
    from .export.run import predict as run

    return run(cfg)


def serve(cfg):
    from .export.server import serve as run

    return run(cfg)


# --------------------------------------------------------------------------------------------------- generation
def textgen_train(cfg):
    from .textgen.train import train_textgen

    result = train_textgen(cfg)
    print(f"dev {result.metrics} -> {result.out}")
    return result


def generate(cfg):
    from .export.generate import generate_texts

    return generate_texts(cfg)


# ------------------------------------------------------------------------------------------------- multimodal
def oscar_train(cfg):
    from .multimodal.oscar.train import oscar_train as run

    return run(cfg)


def oscar_caption(cfg):
    import json

    from .multimodal.oscar.caption import oscar_caption as run

    results = run(cfg)
    for r in results:
        print(json.dumps({k: r[k] for k in ("name", "caption", "reference", "tags")}, ensure_ascii=False))
    return results


def video_train(cfg):
    import json

    from .multimodal.video.train import video_train as run

    out = run(cfg)
    r = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    print(f"held-out temporal-order accuracy {r['held_out_temporal_order_acc']:.3f} on {r['held_out_clips']} clips "
          f"(chance {r['chance']:.2f}) after {r['steps']} steps -> {out}")
    return out


def haic_bench(cfg):
    import json

    from .multimodal.haic.benchmark import haic_bench as run

    out = run(cfg)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    per = ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in metrics["categories"].items())
    print(f"HAIC QA ({metrics['answerer']} answerer on {metrics['captions']} captions): overall "
          f"{metrics['overall']['accuracy']:.3f} (chance {metrics['chance']:.2f}); {per} -> {out}")
    if metrics.get("direct_qa"):
        print(f"HAIC QA, the video model choosing directly: overall {metrics['direct_qa']['overall']['accuracy']:.3f}")
    return out


def clue_text2text(cfg):
    from .clue.text2text import clue_text2text as run

    return run(cfg)


def clue_prompt(cfg):
    from .clue.prompts import clue_prompt as run

    return run(cfg)


def recipes(cfg):
    from .recipebook import recipes as run

    return run(cfg)


def push(cfg):
    from .hub import push as run

    return run(cfg)


# ------------------------------------------------------------------------------------------------------- parser
COMMANDS: dict[str, tuple[Callable, type, str, tuple[str, ...]]] = {
    # name: (function, config class, help, positional fields)
    "presets": (presets, PresetsConfig, "list every Mengzi variant", ()),
    "init": (init, InitConfig, "random-init checkpoint + tokenizer from a preset", ("preset", "out")),
    "pretrain": (pretrain, PretrainConfig, "pre-train or continue pre-training (MLM/WWM, SOP, POS/NE, T5 span "
                 "corruption, causal LM, distillation); run under `accelerate launch` to scale out", ()),
    "finetune": (finetune, UserFinetuneConfig, "fine-tune on your own CSV/TSV/JSONL data with the CLUE engine and "
                 "its techniques", ()),
    "info": (info, InfoConfig, "describe a checkpoint; tokenize, segment and encode a text", ("model",)),
    "export": (export, ExportConfig, "ONNX export of any head (+ fusion, INT8, fp16), checked by a numeric and a "
               "task gate", ("model",)),
    "predict": (predict, PredictConfig, "predict with an export folder (ONNX Runtime, no torch); --clue writes the "
                "CLUE test predictions", ("model",)),
    "serve": (serve, ServeConfig, "JSON HTTP API over an export folder, with dynamic batching", ("model",)),
    "generate": (generate, GenerateConfig, "T5 / GPT-Neo text generation (greedy, beam, sampling) from a checkpoint "
                 "or an export folder", ("model",)),
    "push": (push, PushConfig, "upload a run's model/ (weights, tokenizer, model card) to the Hugging Face Hub",
             ("run", "repo_id")),
    "recipes": (recipes, RecipesConfig, "the recipes that ship with mengzi: list them, show or copy one (use one "
                "with --recipe NAME)", ("action", "name")),
}
GROUPS = {
    "tokenizer": {"train": (tokenizer_train, TokenizerTrainConfig, "train a WordPiece or SentencePiece tokenizer", ())},
    "data": {"check": (data_check, DataCheckConfig, "check the data folder, say what to download", ())},
    "textgen": {"train": (textgen_train, TextGenConfig, "fine-tune T5 / GPT-Neo to generate: CSL keywords, your "
                          "source/target pairs, or causal LM on text files", ())},
    "oscar": {
        "train": (oscar_train, OscarTrainConfig, "train an Oscar captioner or image-text matcher (region features from "
                  "a pluggable extractor, not a detector)", ()),
        "caption": (oscar_caption, OscarCaptionConfig, "Chinese captions for images or region-feature files", ()),
    },
    "video": {"train": (video_train, VideoTrainConfig, "train the Mavors-style video LM in stages (synthetic "
                        "temporal-order clips)", ())},
    "haic": {"bench": (haic_bench, HaicConfig, "HAIC QA on synthetic clips: answer from captions and, with --model, "
                       "directly with a video model; per-category accuracy", ())},
    "clue": {
        "run": (clue_run, ClueRunConfig, "train on a CLUE task, evaluate on dev, predict its test files", ("task",)),
        "text2text": (clue_text2text, Text2TextConfig, "a CLUE classification task as text-to-text with label words "
                      "(T5 / GPT-Neo)", ("task",)),
        "prompt": (clue_prompt, PromptConfig, "zero-/few-shot prompting over Chinese templates (BERT cloze, T5, "
                   "GPT-Neo)", ("task",)),
        "submit": (clue_submit, SubmitConfig, "zip run folders' predictions with the official names, validated",
                   ("runs",)),
        "validate": (clue_validate, ValidateConfig, "check a submission zip: names, ids, order, labels, shape",
                     ("zip",)),
    },
}


def prepare(argv: list[str]) -> tuple[Callable, object]:
    """(the command's function, its resolved config) for a command line, without running it: flags parsed, the
    recipe found (`--recipe NAME` or a file) and read, every field checked. `main` runs what this returns; tests
    check README's commands through it."""
    args = build_parser().parse_args(argv)
    func, cls, positional, command = args._spec
    if getattr(args, "config", None):
        from .recipebook import SECTIONS, find

        args.config = str(find(args.config, SECTIONS.get(command, "")))
    return func, resolve(cls, args, **{k: getattr(args, f"_pos_{k}") or None for k in positional})


def _add_command(sub, name: str, spec, group: str = "") -> None:
    func, cls, help_text, positional = spec
    p = sub.add_parser(name, help=help_text, description=help_text)
    list_fields = {f.name for f in dataclasses.fields(cls) if typing.get_origin(typing.get_type_hints(cls)[f.name])
                   is list}
    for field_name in positional:
        p.add_argument(f"_pos_{field_name}", metavar=field_name.upper(), nargs="*" if field_name in list_fields else "?")
    add_arguments(p, cls, skip=positional)
    p.set_defaults(_spec=(func, cls, positional, f"{group} {name}".strip()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mengzi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mengzi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, spec in COMMANDS.items():
        _add_command(sub, name, spec)
    for group, commands in GROUPS.items():
        g = sub.add_parser(group, help=f"{group} commands: {', '.join(commands)}")
        gsub = g.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        for name, spec in commands.items():
            _add_command(gsub, name, spec, group)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not getattr(args, "_spec", None):
        parser.print_help()
        return 0
    try:
        func, cfg = prepare(argv)
        func(cfg)
    except BrokenPipeError:  # `mengzi recipes list | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ConfigError, MissingDataError, ExportError, FileNotFoundError, FileExistsError, KeyError,
            ValueError, DiskFullError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        command = " ".join(filter(None, [args.command, getattr(args, "subcommand", None)]))
        print(f"mengzi {command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
