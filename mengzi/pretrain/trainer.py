"""`pretrain(cfg)`: the loop every text variant trains with, on accelerate.

    accelerate launch --num_processes 2 -m mengzi pretrain --config recipes/pretrain/mengzi-bert-tiny.yaml

Run folder `out/`: `config.yaml` (resolved), `train.log`, `corpus_stats.json`, `metrics.jsonl` (loss per
objective, accuracies, lr, tokens/s), `loss.png`, `checkpoints/step-NNNNNNNN/` (accelerate state: weights as
safetensors, optimizer, scheduler, every process's RNG, plus `trainer_state.json`), `model/` (final weights in
plain transformers format, extra heads beside them) and `metrics.json` (the final evaluation).

Checkpoints are written to a temporary folder and renamed when complete; `resume: true` continues from the last
complete one with the same data position, masks and RNG, so a killed run ends where an unkilled one would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import atomic
from ..config import ConfigError, save_yaml
from .batches import StepBatches, collate, epoch_of, example_order
from .config import PretrainConfig
from .model import PRETRAIN_TASK, PretrainModule, build_heads, build_objectives, merged_packing
from .runlog import MetricsLog, plot

log = logging.getLogger("mengzi.pretrain")
STATE = "trainer_state.json"


class _TiedWeightsNote(logging.Filter):
    """accelerate warns at every checkpoint that BERT's tied decoder weight was stored once; it is re-tied on
    load (the resume test checks the weights), so the warning is noise in a run log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


logging.getLogger("accelerate.utils.other").addFilter(_TiedWeightsNote())


# ------------------------------------------------------------------------------------------------- building
def build_model(cfg: PretrainConfig):
    """(model, tokenizer, family, fresh): a preset initialised from scratch, or a checkpoint to continue."""
    from ..models.load import family_of, init_model, load
    from ..models.presets import get_preset

    if cfg.model.init_from:
        family = family_of(_config_of(cfg.model.init_from))
        model, tokenizer = load(cfg.model.init_from, task=PRETRAIN_TASK[family])
        return model.train(), tokenizer, family, False
    family = get_preset(cfg.model.preset).family
    if family not in PRETRAIN_TASK:
        raise ConfigError(f"model.preset: {cfg.model.preset} is a {family} model; text pre-training covers "
                          f"{sorted(PRETRAIN_TASK)}")
    model, tokenizer = init_model(cfg.model.preset, tokenizer=cfg.model.tokenizer or None, task=PRETRAIN_TASK[family],
                                  seed=cfg.train.seed, data=cfg.data or None, overrides=cfg.model.overrides)
    return model.train(), tokenizer, family, True


def _config_of(name_or_path: str):
    from transformers import AutoConfig

    from ..models.load import model_folder

    return AutoConfig.from_pretrained(model_folder(name_or_path, None))


def build_packer(family: str, tokenizer, objectives, cfg: PretrainConfig):
    from .packing import ChunkPacker, SegmentPairPacker

    wants = merged_packing(objectives)
    if family == "bert":
        return SegmentPairPacker(tokenizer, cfg.packing.max_seq_len, seed=cfg.train.seed,
                                 short_seq_prob=cfg.packing.short_seq_prob,
                                 sentence_order=wants.get("sentence_order", False),
                                 segmenter=wants.get("segmenter"), tag_schemes=wants["tag_schemes"])
    chunk = cfg.packing.max_seq_len
    for o in objectives:
        chunk = o.chunk_len(chunk) if hasattr(o, "chunk_len") else chunk
    return ChunkPacker(tokenizer, chunk, seed=cfg.train.seed)


def load_corpus(cfg: PretrainConfig, packer, accelerator):
    """(train, eval, train stats); the main process builds the cache first, the others then read it."""
    from .corpus import cached_split, streaming_split

    if not cfg.corpus.sources:
        raise ConfigError("corpus.sources: name at least one file, folder or glob")
    if cfg.corpus.stream:
        train, stats = streaming_split(cfg.corpus, "train", packer, cfg.train.seed, cfg.data or None)
        evaluation, _ = streaming_split(cfg.corpus, "eval", packer, cfg.train.seed, cfg.data or None)
        return train, evaluation, stats
    with accelerator.main_process_first():
        train, stats = cached_split(cfg.corpus, "train", packer, cfg.data or None)
        evaluation, _ = cached_split(cfg.corpus, "eval", packer, cfg.data or None)
    return train, evaluation, stats


# ---------------------------------------------------------------------------------------------- checkpoints
def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a temporary folder left by a kill is not one)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / STATE).is_file())


def save_checkpoint(accelerator, root: Path, state: dict, keep_last: int) -> Path:
    final = root / f"step-{state['step']:08d}"
    tmp = root / f".tmp-step-{state['step']:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(atomic.share(tmp), final)
        for old in checkpoints(root)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def restore_or_start(accelerator, out: Path, resume: bool, state: dict) -> tuple[dict, MetricsLog, Path | None]:
    """(state, metrics log, checkpoint resumed from or None). With `resume` and a complete checkpoint, load it
    (weights, optimizer, scheduler, RNG, registered objects) and drop the log lines written after it; otherwise
    start the log afresh (also `--resume` with no complete checkpoint: no rows from an earlier attempt)."""
    metrics_log = MetricsLog(out / "metrics.jsonl")
    done = checkpoints(out / "checkpoints")
    if resume and done:
        accelerator.load_state(str(done[-1]))
        state = json.loads((done[-1] / STATE).read_text(encoding="utf-8"))
        if accelerator.is_main_process:
            metrics_log.truncate(state["step"])
        return state, metrics_log, done[-1]
    if accelerator.is_main_process:
        metrics_log.path.unlink(missing_ok=True)
    return state, metrics_log, None


# --------------------------------------------------------------------------------------------------- the loop
def _mixed_precision(choice: str) -> str:
    """auto: bf16 on GPUs with it, else fp16; on CPUs with native bf16 (avx512_bf16 / AMX) bf16 autocast, measured
    1.3x (tiny) to 1.8x (base) faster per step than fp32 here (benchmarks/cpu_bf16.py); else fp32."""
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: stay in fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _fresh_accelerator_state() -> None:
    """accelerate keeps one process-wide state: a second run in the same Python process (a notebook, a test, the
    benchmark) with another precision would be refused. Outside a distributed launch, forget the previous one."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state(reset_partial_state=True)


def _prepare_run_folder(cfg: PretrainConfig, out: Path) -> None:
    existing = checkpoints(out / "checkpoints")
    if existing and not cfg.resume and not cfg.overwrite:
        raise FileExistsError(f"{out} already has checkpoints ({existing[-1].name}); pass --resume to continue "
                              "or --overwrite to start again")
    if cfg.overwrite and not cfg.resume:
        for name in ("checkpoints", "model", "metrics.jsonl", "metrics.json", "loss.png"):
            target = out / name
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def pretrain(cfg: PretrainConfig) -> Path:
    from accelerate import Accelerator, DistributedDataParallelKwargs

    if not cfg.out:
        raise ConfigError("pretrain needs a run folder: --out RUN")
    out = Path(cfg.out)
    t = cfg.train
    if t.threads:
        torch.set_num_threads(t.threads)
    _fresh_accelerator_state()
    find_unused = "sop" not in cfg.objectives  # BERT's pooler/seq_relationship sit idle without SOP
    # cpu=True on a machine without CUDA: under `accelerate launch --multi_gpu` (torchrun) that makes accelerate
    # join the processes with gloo (MULTI_CPU) instead of running each alone
    accelerator = Accelerator(mixed_precision=_mixed_precision(t.mixed_precision), cpu=not torch.cuda.is_available(),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused)])
    main = accelerator.is_main_process
    if not main:  # one process speaks for the run
        logging.getLogger("mengzi").setLevel(logging.WARNING)
    if main:
        _prepare_run_folder(cfg, out)
        save_yaml(cfg, out / "config.yaml", header="resolved config of this run (mengzi pretrain --config this)")
    handler = _log_to(out / "train.log") if main else None
    try:
        return _train(cfg, accelerator, out)
    finally:
        if handler is not None:
            logging.getLogger("mengzi").removeHandler(handler)
            handler.close()


def _log_to(path: Path) -> logging.Handler:
    """The run's INFO log goes to `train.log` whatever the console shows."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("mengzi")
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


def _train(cfg: PretrainConfig, accelerator, out: Path) -> Path:
    from accelerate.utils import set_seed
    from tqdm import tqdm

    from ..models.load import save_pretrained
    from .optim import build_optimizer, build_scheduler

    t, main = cfg.train, accelerator.is_main_process
    accelerator.wait_for_everyone()
    set_seed(t.seed)

    model, tokenizer, family, fresh = build_model(cfg)
    objectives = build_objectives(cfg.objectives, tokenizer, model.config, family)
    for objective in objectives:
        objective.setup(model, fresh=fresh)
    heads = build_heads(model.config, objectives, cfg.model.init_from or None)
    if t.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    module = PretrainModule(model, heads, objectives)
    packer = build_packer(family, tokenizer, objectives, cfg)
    train_data, eval_data, stats = load_corpus(cfg, packer, accelerator)
    if main and cfg.corpus.stream:
        log.info("corpus: streaming; its statistics fill as it is read (logged and saved at the end)")
    elif main:
        _report_corpus(stats, out)

    optimizer = build_optimizer(module, t.optimizer, lr=t.lr, weight_decay=t.weight_decay, betas=tuple(t.betas),
                                eps=t.eps)
    if t.warmup_steps > t.max_steps:  # a short smoke run of a long recipe
        log.warning("warmup_steps %d > max_steps %d: warming up over all %d steps", t.warmup_steps, t.max_steps,
                    t.max_steps)
    scheduler = build_scheduler(optimizer, t.schedule, warmup_steps=min(t.warmup_steps, t.max_steps),
                                total_steps=t.max_steps)
    module, optimizer = accelerator.prepare(module, optimizer)
    accelerator.register_for_checkpointing(scheduler)  # stepped once per optimizer step, whatever the world size

    state, metrics_log, resumed = restore_or_start(
        accelerator, out, cfg.resume, {"step": 0, "examples_seen": 0, "tokens_seen": 0, "train_seconds": 0.0})
    if resumed and main:
        log.info("resumed from %s (step %d, %d examples seen)", resumed, state["step"], state["examples_seen"])

    streaming = cfg.corpus.stream
    rank, world = accelerator.process_index, accelerator.num_processes
    if accelerator.distributed_type.name == "DEEPSPEED" and t.batch_size != t.micro_batch_size * world:
        raise ConfigError("DeepSpeed steps inside backward: set train.batch_size = micro_batch_size x processes "
                          f"({t.micro_batch_size} x {world}), no mengzi-side accumulation")
    batches = StepBatches(example_order(train_data, streaming, t.seed, start=state["examples_seen"]),
                          t.batch_size, t.micro_batch_size, rank, world)
    eval_examples = _eval_examples(eval_data, t.micro_batch_size * t.eval_batches)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    inner = accelerator.unwrap_model(module)
    log.info("training %s (%s, %.1fM parameters) on %d process(es): %d steps of %d examples, %d micro-batches of "
             "%d per process per step", cfg.model.init_from or cfg.model.preset, family,
             sum(p.numel() for p in inner.model.parameters()) / 1e6, world, t.max_steps, t.batch_size,
             batches.accumulation, t.micro_batch_size)

    window: dict[str, float] = {}
    window_count, window_tokens, window_start = 0, 0, time.perf_counter()
    bar = tqdm(total=t.max_steps, initial=state["step"], desc="pre-training", unit="step", disable=not main,
               mininterval=2)

    def evaluate_and_log() -> None:
        row = evaluate(module, inner, eval_examples, t, pad_id, accelerator) | {"step": state["step"]}
        if main:
            metrics_log.write(row)
            log.info("step %d held-out: %s", state["step"],
                     ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float)))

    if eval_examples and t.eval_at_start and state["step"] == 0:
        evaluate_and_log()
    module.train()
    while state["step"] < t.max_steps:
        micro_batches = batches.next_step()
        for k, examples in enumerate(micro_batches):
            # masks seeded by the global micro-batch index: 1 process x 2 micro-batches == 2 processes x 1
            rng = np.random.default_rng([t.seed, state["step"], rank * len(micro_batches) + k])
            batch = inner.collate(collate(examples, pad_id), rng)
            tokens = int(batch["attention_mask"].sum())
            batch = {key: v.to(accelerator.device) for key, v in batch.items()}
            sync = k == len(micro_batches) - 1
            with accelerator.no_sync(module) if not sync else contextlib.nullcontext():
                loss, metrics = module(batch)
                accelerator.backward(loss / len(micro_batches))
            for key, v in metrics.items():
                window[key] = window.get(key, 0.0) + float(v)
            window_count += 1
            window_tokens += tokens
        if t.clip_norm > 0:
            accelerator.clip_grad_norm_(module.parameters(), t.clip_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["examples_seen"] += t.batch_size
        bar.update(1)

        if state["step"] % t.log_every == 0 or state["step"] == t.max_steps:
            elapsed = time.perf_counter() - window_start
            summed = accelerator.reduce(torch.tensor([window_tokens, *window.values()], dtype=torch.float64,
                                                     device=accelerator.device), "sum").tolist()
            tokens_all, values = summed[0], [v / (window_count * world) for v in summed[1:]]
            state["tokens_seen"] += int(tokens_all)
            state["train_seconds"] += elapsed
            row = {"split": "train", "step": state["step"], "lr": scheduler.get_last_lr()[0],
                   **{k: round(v, 5) for k, v in zip(window, values)}, "tokens_per_s": round(tokens_all / elapsed, 1),
                   "examples_seen": state["examples_seen"], "tokens_seen": state["tokens_seen"],
                   "epoch": epoch_of(train_data, streaming, state["examples_seen"])}
            if main:
                metrics_log.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", tok_s=f"{row['tokens_per_s']:.0f}")
            window, window_count, window_tokens, window_start = {}, 0, 0, time.perf_counter()
        final = state["step"] == t.max_steps
        paused = time.perf_counter()  # evaluation and checkpoints are not training time: keep them out of tokens/s
        if eval_examples and (final or (t.eval_every and state["step"] % t.eval_every == 0)):
            evaluate_and_log()
        if final or state["step"] % t.save_every == 0:
            save_checkpoint(accelerator, out / "checkpoints", state, t.keep_last)
        window_start += time.perf_counter() - paused
    bar.close()

    if main:
        inner = accelerator.unwrap_model(module)
        heads_out = inner.heads if len(inner.heads) else None
        save_pretrained(inner.model, tokenizer, out / "model", heads=heads_out, overwrite=True)
        if cfg.corpus.stream:
            _report_corpus(stats, out)
        rows = metrics_log.rows()
        last_eval = next((r for r in reversed(rows) if r.get("split") == "eval"), {})
        summary = {"steps": state["step"], "examples_seen": state["examples_seen"],
                   "tokens_seen": state["tokens_seen"], "train_seconds": round(state["train_seconds"], 1),
                   "eval": last_eval, "corpus": {k: v for k, v in asdict(stats).items() if k != "problems"}}
        atomic.write_text(out / "metrics.json", json.dumps(summary, indent=1))
        plot(rows, out / "loss.png", title=f"{cfg.model.init_from or cfg.model.preset}: {', '.join(cfg.objectives)}")
        log.info("done: %d steps; model -> %s", state["step"], out / "model")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return out


def _report_corpus(stats, out: Path) -> None:
    log.info("corpus: %s", stats.summary())
    for problem in stats.problems:
        log.warning("skipped %s", problem)
    atomic.write_text(out / "corpus_stats.json", json.dumps(asdict(stats), ensure_ascii=False, indent=1))


def _eval_examples(dataset, n: int) -> list[dict]:
    """The first `n` held-out examples, in file order: the same slice at every evaluation."""
    if dataset is None or n <= 0:
        return []
    out = []
    for example in dataset:
        out.append(example)
        if len(out) >= n:
            break
    return out


@torch.no_grad()
def evaluate(module, inner, examples: list[dict], t, pad_id: int, accelerator) -> dict:
    """Mean held-out metrics with fixed masks (seeded by the batch index), micro-batches split over processes."""
    module.eval()
    sums: dict[str, float] = {}
    count = 0
    for i in range(accelerator.process_index, (len(examples) + t.micro_batch_size - 1) // t.micro_batch_size,
                   accelerator.num_processes):
        chunk = examples[i * t.micro_batch_size : (i + 1) * t.micro_batch_size]
        batch = inner.collate(collate(chunk, pad_id), np.random.default_rng([t.seed, 2**31 - 1, i]))
        batch = {key: v.to(accelerator.device) for key, v in batch.items()}
        _, metrics = module(batch)
        for key, v in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(v)
        count += 1
    keys = sorted(inner_metric_names(inner))
    vector = torch.tensor([count] + [sums.get(k, 0.0) for k in keys], dtype=torch.float64, device=accelerator.device)
    total = accelerator.reduce(vector, "sum").tolist()
    module.train()
    n = max(total[0], 1)
    return {"split": "eval", **{k: round(v / n, 5) for k, v in zip(keys, total[1:])}, "batches": int(total[0])}


def inner_metric_names(inner: PretrainModule) -> set[str]:
    """Every metric the objectives report (the same on every process, so reductions line up)."""
    names = {"loss"}
    for o in inner.objectives:
        names |= {f"{o.name}_loss"} | {f"{o.name}_{m}" for m in o.metric_names}
    return names
