"""`train_textgen(cfg)`: fine-tune T5 (seq2seq) or GPT-Neo (causal LM) to generate text, on accelerate.

    mengzi textgen train --config recipes/textgen/csl-keywords-tiny.yaml

* T5 (`AutoModelForSeq2SeqLM`): source ids -> target ids (+ EOS); labels pad to -100.
* GPT-Neo (`AutoModelForCausalLM`) on source -> target pairs: one sequence `source + target + EOS` whose loss
  covers only the target and EOS (the prompt's labels are -100), so it learns to answer, not to write prompts;
  at generation the source is the prompt. On the `corpus` task: plain causal LM on blocks of `block_size` tokens.

Training runs on the engine (`mengzi.engine`), which writes the run folder: `run.json`, `config.yaml`, `train.log`,
`metrics.jsonl` (training loss, lr; dev loss and metrics or perplexity at every evaluation), `metrics.json`,
`curves.png`, `model/`, checkpoints while training; this module adds `predictions.jsonl` for pair tasks (id, source,
reference, prediction). A killed run resumed with `resume: true` ends where an unkilled one would.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..engine import loop, runfolder
from . import data as textdata
from .config import TextGenConfig
from .metrics import KEYWORD_METRICS, TEXT_METRICS, score

log = logging.getLogger("mengzi.textgen")


@dataclass
class TextGenResult:
    out: Path
    metrics: dict  # the final dev evaluation (pairs: loss + generation metrics; corpus: loss + perplexity)
    predictions: list[dict] = field(default_factory=list)  # pairs: {id, source, reference, prediction}


# ------------------------------------------------------------------------------------------------------ building
def build_model(cfg: TextGenConfig):
    """(model, tokenizer, family): a checkpoint with its generative head, or a preset initialised from scratch."""
    from ..models.load import init_model
    from ..models.presets import get_preset
    from .generate import load_generator

    if cfg.from_scratch:
        family = get_preset(cfg.model).family
        if family not in ("t5", "gpt-neo"):
            raise ConfigError(f"model: {cfg.model} is a {family} preset; text generation takes T5 or GPT-Neo")
        task = "seq2seq-lm" if family == "t5" else "causal-lm"
        model, tokenizer = init_model(cfg.model, tokenizer=cfg.tokenizer or None, task=task, seed=cfg.train.seed,
                                      data=cfg.data or None, overrides=cfg.overrides)
    else:
        model, tokenizer = load_generator(cfg.model)
    family = "t5" if model.config.is_encoder_decoder else "gpt-neo"
    return model.train(), tokenizer, family


def encode_pairs(dataset, tokenizer, family: str, max_source_len: int, max_target_len: int) -> list[dict]:
    """Training features {input_ids, labels} of source/target pairs (see the module doc)."""
    eos = tokenizer.eos_token_id
    if family == "t5":
        sources = tokenizer(list(dataset["source"]), truncation=True, max_length=max_source_len)["input_ids"]
        targets = tokenizer(list(dataset["target"]), truncation=True, max_length=max_target_len)["input_ids"]
        return [{"input_ids": s, "labels": t} for s, t in zip(sources, targets)]
    sources = tokenizer(list(dataset["source"]), add_special_tokens=False)["input_ids"]
    targets = tokenizer(list(dataset["target"]), add_special_tokens=False)["input_ids"]
    out = []
    for s, t in zip(sources, targets):
        s, t = s[:max_source_len], t[: max_target_len - 1] + [eos]
        out.append({"input_ids": s + t, "labels": [-100] * len(s) + t})
    return out


def collate(features: list[dict], pad: int, family: str) -> dict[str, torch.Tensor]:
    """Right-padded tensors; labels padded with -100 (T5's labels have their own length)."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    label_width = width if family != "t5" else max(len(f["labels"]) for f in features)
    labels = torch.full((len(features), label_width), -100, dtype=torch.long)
    for row, f in enumerate(features):
        ids[row, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
        mask[row, : len(f["input_ids"])] = 1
        labels[row, : len(f["labels"])] = torch.tensor(f["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def step_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Training examples of optimizer step `step`: one seeded shuffle per epoch, read in order, so the batch of a
    step depends on nothing but (step, seed): a resumed run sees the data an unkilled one would."""
    orders: dict[int, np.ndarray] = {}
    out = []
    for k in range(step * batch_size, (step + 1) * batch_size):
        epoch, position = divmod(k, n)
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(orders[epoch][position]))
    return out


# --------------------------------------------------------------------------------------------------- the command
def train_textgen(cfg: TextGenConfig, splits: dict | None = None) -> TextGenResult:
    """Fine-tune `cfg.model` on `cfg.task` and evaluate it on dev; see the module doc for the run folder.

    `splits`: ready data instead of the task's own, `{"train": Dataset, "dev": Dataset}` (`datasets.Dataset`s, or
    anything with column access `ds["source"]`), each with the columns `id` (str), `source` (the model input, any
    prompt already in it) and `target` (the text to generate). Set `cfg.task = "pairs"` (or "csl-keywords" to add
    the keyword F1s to the metrics); `cfg.dataset` is then ignored and the metrics are TEXT_METRICS (character
    ROUGE-1/2/L, BLEU, exact match) plus the teacher-forced dev loss. `cfg.train.max_eval_examples` still caps the dev examples generated.
    Returns the run folder, the final dev metrics and the dev predictions.
    """
    from accelerate.utils import set_seed

    if not cfg.out:
        raise ConfigError("textgen train needs a run folder: --out RUN")
    out, t = Path(cfg.out), cfg.train
    if t.batch_size % t.micro_batch_size:
        raise ConfigError(f"train.batch_size {t.batch_size} is not a multiple of micro_batch_size {t.micro_batch_size}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # the data order is written for one process
        raise ConfigError("textgen train runs in one process (one GPU or the CPU); launch it without "
                          "`accelerate launch --num_processes N`")
    if splits is None and cfg.task != "corpus":  # users' pair files are read and checked before the run folder
        splits = {"train": textdata.load_pairs(cfg, "train", t.max_train_examples), "dev": textdata.load_pairs(cfg, "dev")}
    with loop.session(cfg, t, out, "mengzi textgen train") as accelerator:
        set_seed(t.seed)
        model, tokenizer, family = build_model(cfg)
        features, dev = _load_data(cfg, tokenizer, family, splits)
        if not features:
            raise ValueError("no training examples")
        log.info("fine-tuning %s (%s, %.1fM parameters) on %s", cfg.model, family,
                 sum(p.numel() for p in model.parameters()) / 1e6, cfg.task)
        stage = TextGenStage(cfg, model, tokenizer, family, features, dev)
        info = runfolder.RunInfo("textgen", task=cfg.task, model=cfg.model, max_seq_len=t.max_source_len,
                                 extra={"family": family, "max_target_len": t.max_target_len})
        state = loop.train(stage, t, out, accelerator, resume=cfg.resume, info=info)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["dev"]
    log.info("done: %d steps; dev %s; model -> %s", state["step"], metrics, out / "model")
    saved = out / "predictions.jsonl"
    return TextGenResult(out=out, metrics=metrics, predictions=[json.loads(x) for x in saved.read_text(
        encoding="utf-8").splitlines()] if saved.is_file() else [])


def _load_data(cfg: TextGenConfig, tokenizer, family: str, splits: dict | None):
    """(training features, dev: a pairs Dataset or held-out paragraphs)."""
    t = cfg.train
    if cfg.task == "corpus":
        if family != "gpt-neo":
            raise ConfigError(f"task corpus trains a causal LM (GPT-Neo); {cfg.model} is {family}")
        docs = textdata.corpus_documents(cfg.dataset.corpus, cfg.dataset.eval_fraction, cfg.data or None,
                                         t.max_train_examples)
        blocks = textdata.token_blocks(tokenizer, docs["train"], t.block_size)
        log.info("corpus: %d training paragraphs -> %d blocks of %d tokens; %d held-out paragraphs",
                 len(docs["train"]), len(blocks), t.block_size, len(docs["dev"]))
        dev = docs["dev"][: t.max_eval_examples] if t.max_eval_examples else docs["dev"]
        return [{"input_ids": b, "labels": b} for b in blocks], dev
    for name in ("train", "dev"):
        missing = [c for c in textdata.PAIR_COLUMNS if c not in splits[name].column_names]
        if missing:
            raise ValueError(f"splits[{name!r}] lacks the column(s) {missing} (needs {list(textdata.PAIR_COLUMNS)})")
    train, dev = splits["train"], splits["dev"]
    if t.max_train_examples and len(train) > t.max_train_examples:
        train = train.select(range(t.max_train_examples))
    if t.max_eval_examples and len(dev) > t.max_eval_examples:
        dev = dev.select(range(t.max_eval_examples))
    log.info("%d training pairs, %d dev pairs", len(train), len(dev))
    return encode_pairs(train, tokenizer, family, t.max_source_len, t.max_target_len), dev


@torch.no_grad()
def evaluate(cfg: TextGenConfig, model, tokenizer, family: str, dev, with_predictions: bool) -> tuple[dict, list]:
    """Dev loss, and generation metrics (pairs) or perplexity (corpus); predictions when asked."""
    from .generate import generate, perplexity

    t, pad = cfg.train, tokenizer.pad_token_id or 0
    if cfg.task == "corpus":
        ppl = perplexity(model, tokenizer, dev, t.block_size, t.eval_batch_size)
        return {"loss": round(math.log(ppl), 5), "perplexity": round(ppl, 3)}, []
    features = encode_pairs(dev, tokenizer, family, t.max_source_len, t.max_target_len)
    losses, counts = 0.0, 0
    model.eval()
    device = next(model.parameters()).device
    for start in range(0, len(features), t.eval_batch_size):
        batch = collate(features[start : start + t.eval_batch_size], pad, family)
        n = int((batch["labels"] != -100).sum())
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
        losses, counts = losses + float(loss) * n, counts + n
    sources, references = list(dev["source"]), list(dev["target"])
    predictions = generate(model, tokenizer, sources, cfg.generation, batch_size=t.eval_batch_size,
                           max_source_len=t.max_source_len)
    names = KEYWORD_METRICS if cfg.task == "csl-keywords" else TEXT_METRICS
    metrics = {"loss": round(losses / max(counts, 1), 5)}
    metrics |= {k: round(v, 5) for k, v in score(predictions, references, names).items()}
    rows = [{"id": i, "source": s, "reference": r, "prediction": p}
            for i, s, r, p in zip(list(dev["id"]), sources, references, predictions)] if with_predictions else []
    return metrics, rows


class TextGenStage(loop.Stage):
    def __init__(self, cfg: TextGenConfig, model, tokenizer, family: str, features: list[dict], dev):
        super().__init__(model)
        self.cfg, self.tokenizer, self.family, self.features, self.dev = cfg, tokenizer, family, features, dev
        self.name = f"textgen {cfg.task}"
        self.steps_per_epoch = math.ceil(len(features) / cfg.train.batch_size)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.predictions: list[dict] = []

    def micro_batches(self, run: loop.Run) -> list[loop.Micro]:
        t = self.cfg.train
        indices = step_indices(run.step, t.batch_size, len(self.features), t.seed)
        out = []
        for k in range(0, len(indices), t.micro_batch_size):
            batch = collate([self.features[i] for i in indices[k : k + t.micro_batch_size]], self.pad, self.family)
            out.append(loop.Micro(batch, len(batch["input_ids"]), int(batch["attention_mask"].sum())))
        return out

    def loss(self, run: loop.Run, batch):
        return run.model(**{key: v.to(run.accelerator.device) for key, v in batch.items()}).loss, {}

    def evaluate(self, run: loop.Run) -> dict:
        final = run.step == run.total_steps
        metrics, rows = evaluate(self.cfg, run.unwrapped, self.tokenizer, self.family, self.dev, with_predictions=final)
        if final:
            self.predictions = rows
        run.model.train()
        return metrics

    def save_model(self, run: loop.Run, folder: Path) -> None:
        from ..models.load import save_pretrained

        save_pretrained(run.unwrapped, self.tokenizer, folder, overwrite=True)

    def finish(self, run: loop.Run) -> dict:
        if self.predictions:
            textdata.write_jsonl(run.out / "predictions.jsonl", self.predictions)
        state = run.state
        summary = {"task": self.cfg.task, "model": self.cfg.model,
                   "dev": loop.figures(state["last_eval"])}
        if state.get("start_eval"):
            summary["dev_at_start"] = loop.figures(state["start_eval"])
        return summary
