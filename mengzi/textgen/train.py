"""`train_textgen(cfg)`: fine-tune T5 (seq2seq) or GPT-Neo (causal LM) to generate text, on accelerate.

    mengzi textgen train --config recipes/textgen/csl-keywords-tiny.yaml

* T5 (`AutoModelForSeq2SeqLM`): source ids -> target ids (+ EOS); labels pad to -100.
* GPT-Neo (`AutoModelForCausalLM`) on source -> target pairs: one sequence `source + target + EOS` whose loss
  covers only the target and EOS (the prompt's labels are -100), so it learns to answer, not to write prompts;
  at generation the source is the prompt. On the `corpus` task: plain causal LM on blocks of `block_size` tokens.

Run folder `out/`: `config.yaml` (resolved), `train.log`, `metrics.jsonl` (training loss, lr; dev loss and metrics
or perplexity at every evaluation), `checkpoints/step-N/` (accelerate state: weights as safetensors, optimizer,
scheduler, RNG), `model/` (final weights, `save_pretrained`), `metrics.json` (the final dev evaluation) and, for pair
tasks, `predictions.jsonl` (id, source, reference, prediction). Everything is written atomically; `resume: true`
continues from the last complete checkpoint with the same data position and RNG, so a killed run ends where an
unkilled one would.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..config import ConfigError, save_yaml
from ..pretrain.trainer import (
    _fresh_accelerator_state,
    _log_to,
    _mixed_precision,
    checkpoints,
    restore_or_start,
    save_checkpoint,
)
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
def _prepare_run_folder(cfg: TextGenConfig, out: Path) -> None:
    existing = checkpoints(out / "checkpoints")
    finished = (out / "metrics.json").is_file()
    if (existing or finished) and not cfg.resume and not cfg.overwrite:
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue or --overwrite to start again")
    if cfg.overwrite and not cfg.resume:
        for name in ("checkpoints", "model", "metrics.jsonl", "metrics.json", "predictions.jsonl"):
            target = out / name
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def train_textgen(cfg: TextGenConfig, splits: dict | None = None) -> TextGenResult:
    """Fine-tune `cfg.model` on `cfg.task` and evaluate it on dev; see the module doc for the run folder.

    `splits`: ready data instead of the task's own, `{"train": Dataset, "dev": Dataset}` (`datasets.Dataset`s, or
    anything with column access `ds["source"]`), each with the columns `id` (str), `source` (the model input, any
    prompt already in it) and `target` (the text to generate). Set `cfg.task = "pairs"` (or "csl-keywords" to add
    the keyword F1s to the metrics); `cfg.dataset` is then ignored and the metrics are TEXT_METRICS (character
    ROUGE-1/2/L, BLEU, exact match) plus the teacher-forced dev loss. `cfg.train.max_eval_examples` still caps the dev examples generated.
    Returns the run folder, the final dev metrics and the dev predictions.
    """
    from accelerate import Accelerator

    if not cfg.out:
        raise ConfigError("textgen train needs a run folder: --out RUN")
    out, t = Path(cfg.out), cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    if t.batch_size % t.micro_batch_size:
        raise ConfigError(f"train.batch_size {t.batch_size} is not a multiple of micro_batch_size {t.micro_batch_size}")
    _fresh_accelerator_state()
    accelerator = Accelerator(mixed_precision=_mixed_precision(t.mixed_precision), cpu=not torch.cuda.is_available())
    if accelerator.num_processes > 1:  # the data order and the run folder are written for one process
        raise ConfigError("textgen train runs in one process (one GPU or the CPU); launch it without "
                          "`accelerate launch --num_processes N`")
    if splits is None and cfg.task != "corpus":  # users' pair files are read and checked before the run folder
        splits = {"train": textdata.load_pairs(cfg, "train", t.max_train_examples), "dev": textdata.load_pairs(cfg, "dev")}
    _prepare_run_folder(cfg, out)
    save_yaml(cfg, out / "config.yaml", header="resolved config of this run (mengzi textgen train --config this)")
    handler = _log_to(out / "train.log")
    try:
        return _train(cfg, accelerator, out, splits)
    finally:
        logging.getLogger("mengzi").removeHandler(handler)
        handler.close()


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


def _train(cfg: TextGenConfig, accelerator, out: Path, splits) -> TextGenResult:
    import json

    from accelerate.utils import set_seed
    from tqdm import tqdm

    from ..models.load import save_pretrained
    from ..pretrain.optim import build_optimizer, build_scheduler

    t = cfg.train
    set_seed(t.seed)
    model, tokenizer, family = build_model(cfg)
    features, dev = _load_data(cfg, tokenizer, family, splits)
    if not features:
        raise ValueError("no training examples")
    total = t.max_steps or max(1, math.ceil(t.epochs * len(features) / t.batch_size))
    optimizer = build_optimizer(model, "adamw", lr=t.lr, weight_decay=t.weight_decay)
    scheduler = build_scheduler(optimizer, t.schedule, warmup_steps=int(t.warmup_ratio * total), total_steps=total)
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    state, metrics_log, resumed = restore_or_start(accelerator, out, cfg.resume, {"step": 0, "train_seconds": 0.0})
    if resumed:
        log.info("resumed from %s (step %d)", resumed, state["step"])
    inner = accelerator.unwrap_model(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    log.info("fine-tuning %s (%s, %.1fM parameters) on %s: %d steps of %d", cfg.model, family,
             sum(p.numel() for p in inner.parameters()) / 1e6, cfg.task, total, t.batch_size)

    def evaluate_and_log(final: bool = False):
        metrics, rows = evaluate(cfg, inner, tokenizer, family, dev, with_predictions=final)
        metrics_log.write({"split": "dev", "step": state["step"], **metrics})
        log.info("step %d dev: %s", state["step"], ", ".join(f"{k} {v}" for k, v in metrics.items()))
        model.train()
        return metrics, rows

    if t.eval_at_start and state["step"] == 0:  # kept in the checkpointed state: a resumed run reports it too
        state["dev_at_start"] = evaluate_and_log()[0]
    bar = tqdm(total=total, initial=state["step"], desc=f"textgen {cfg.task}", unit="step", mininterval=2)
    accumulation = t.batch_size // t.micro_batch_size
    model.train()
    window, window_steps = 0.0, 0
    while state["step"] < total:
        started = time.perf_counter()
        indices = step_indices(state["step"], t.batch_size, len(features), t.seed)
        step_loss = 0.0
        for k in range(accumulation):
            batch = collate([features[i] for i in indices[k * t.micro_batch_size : (k + 1) * t.micro_batch_size]],
                            pad, family)
            with accelerator.autocast():
                loss = model(**{key: v.to(accelerator.device) for key, v in batch.items()}).loss / accumulation
            accelerator.backward(loss)
            step_loss += float(loss.detach())
        if t.clip_norm:
            accelerator.clip_grad_norm_(model.parameters(), t.clip_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["train_seconds"] += time.perf_counter() - started
        window, window_steps = window + step_loss, window_steps + 1
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}")
        if state["step"] % t.log_every == 0 or state["step"] == total:
            metrics_log.write({"split": "train", "step": state["step"], "loss": round(window / window_steps, 5),
                               "lr": scheduler.get_last_lr()[0]})
            window, window_steps = 0.0, 0
        if t.eval_every and state["step"] % t.eval_every == 0 and state["step"] < total:
            evaluate_and_log()
        if t.save_every and state["step"] % t.save_every == 0 and state["step"] < total:
            save_checkpoint(accelerator, out / "checkpoints", state, t.keep_last)
    bar.close()
    save_pretrained(inner, tokenizer, out / "model", overwrite=True)  # first: a failing evaluation loses no training
    metrics, predictions = evaluate_and_log(final=True)
    if predictions:
        textdata.write_jsonl(out / "predictions.jsonl", predictions)
    summary = {"task": cfg.task, "model": cfg.model, "steps": state["step"],
               "train_seconds": round(state["train_seconds"], 1), "dev": metrics}
    if "dev_at_start" in state:
        summary["dev_at_start"] = state["dev_at_start"]
    atomic.write_text(out / "metrics.json", json.dumps(summary, ensure_ascii=False, indent=1))
    accelerator.end_training()
    log.info("done: %d steps; dev %s; model -> %s", state["step"], metrics, out / "model")
    return TextGenResult(out=out, metrics=metrics, predictions=predictions)
