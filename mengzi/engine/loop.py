"""The one training loop: every stage (pre-training, fine-tuning, text generation, Oscar, video) trains here.

    accelerator = make_accelerator(cfg.train, out)
    state = train(MyStage(...), cfg.train, out, accelerator, resume=cfg.resume)

A stage supplies what is its own: the model, the micro-batches of each optimizer step, the loss of one micro-batch,
an evaluation and how to save the model (`Stage` below). The engine owns the rest: the optimizer and schedule,
accumulation, mixed precision, clipping, the evaluation cadence, best-checkpoint keeping and early stopping,
checkpoints (every counter and the logging window in them, so a killed and resumed run reports the figures an
unkilled one would), a full disk, trackers, metrics.jsonl, curves and the run folder's run.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import atomic
from ..config import ConfigError
from .args import TrainArgs
from .optim import build_optimizer, build_scheduler, decay_groups
from .runfolder import MetricsLog, RunInfo, model_card, plot, read_run, write_run

log = logging.getLogger("mengzi.engine")
STATE = "trainer_state.json"
for _name in ("accelerate.checkpointing", "accelerate.accelerator"):  # every file of every checkpoint at INFO
    logging.getLogger(_name).setLevel(logging.WARNING)


# accelerate warns at every checkpoint that a tied weight was stored once; it is re-tied on load
logging.getLogger("accelerate.utils.other").addFilter(lambda record: "Removed shared tensor" not in record.getMessage())


@dataclass
class Micro:
    """One micro-batch of this process: what the stage's `loss` takes, and how much of the step it is."""

    batch: object
    samples: int
    tokens: int = 0


class Stage:
    """What a stage gives the engine. Override `micro_batches`, `loss` (or `train_micro`), `evaluate`, `save_model`."""

    name = "stage"
    main_metric: str | None = None  # dev metric that picks the best model (kept in model/) and stops early
    eval_split = "eval"
    steps_per_epoch: int | None = None  # None: the data has no epochs (streams); train.max_steps is needed

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def parameter_groups(self, args: TrainArgs) -> list[dict]:
        """Optimizer groups: decay on matrices and embeddings, none on biases and norms."""
        return decay_groups(self.model.named_parameters(), args.weight_decay)

    def checkpoint_objects(self) -> list:
        """Objects with state_dict()/load_state_dict() saved in every checkpoint beside model and optimizer."""
        return []

    def start(self, run: Run) -> None:
        """Called once the state is restored: position the data at `run.state["step"]`."""

    def micro_batches(self, run: Run) -> list[Micro]:
        raise NotImplementedError

    def loss(self, run: Run, batch) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def train_micro(self, run: Run, micro: Micro, weight: float) -> dict[str, float]:
        """Forward and backward of one micro-batch (its loss scaled by `weight`); the metrics to log."""
        with run.accelerator.autocast():
            loss, metrics = self.loss(run, micro.batch)
        run.accelerator.backward(loss * weight)
        return {"loss": float(loss.detach()), **metrics}

    def after_step(self, run: Run) -> None:
        """After every optimizer step (an EMA update)."""

    def evaluate(self, run: Run) -> dict:
        return {}

    def save_model(self, run: Run, folder: Path) -> None:
        raise NotImplementedError

    def finish(self, run: Run) -> dict:
        """On the main process once training ended: write what is the stage's own; return its part of
        metrics.json (the engine adds steps, samples and tokens seen, training time)."""
        return {"eval": run.state["last_eval"] or {}}


@dataclass
class Run:
    """What a stage sees while training."""

    accelerator: object
    args: TrainArgs
    out: Path
    model: torch.nn.Module
    total_steps: int
    state: dict = field(default_factory=dict)
    optimizer: object = None
    scheduler: object = None

    @property
    def step(self) -> int:
        return self.state["step"]

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)


# ------------------------------------------------------------------------------------------------- the process
def mixed_precision(choice: str) -> str:
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


def make_accelerator(args: TrainArgs, out: Path, find_unused: bool = False):
    """The accelerate process state for a run. Outside a distributed launch, a previous run's state in this Python
    process (a notebook, a test) is forgotten, so another precision is allowed. `cpu=True` without CUDA makes
    `accelerate launch` join CPU processes over gloo."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    if args.threads:
        torch.set_num_threads(args.threads)
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state(reset_partial_state=True)
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true") and not torch.cuda.is_available():
        # accelerate 1.16 turns FSDP on only for GPU-like devices: on CPU processes it would silently train plain
        # data parallel (MULTI_CPU), or, with cpu=False, run each process alone into the same run folder
        raise ConfigError("FSDP through accelerate needs GPUs; on CPU processes accelerate ignores it. Launch "
                          "data-parallel instead: accelerate launch --multi_gpu --num_processes N -m mengzi ...")
    return Accelerator(mixed_precision=mixed_precision(args.mixed_precision), cpu=not torch.cuda.is_available(),
                       log_with=list(args.report_to) or None, project_dir=str(out),
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused)])


def total_steps(args: TrainArgs, steps_per_epoch: int | None) -> int:
    if args.max_steps:
        return args.max_steps
    if not steps_per_epoch:
        raise ConfigError("train.max_steps: this data has no epochs (a stream); give a number of steps")
    return max(1, math.ceil(args.epochs * steps_per_epoch))


# --------------------------------------------------------------------------------------------------- checkpoints
def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a temporary folder left by a kill is not one)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / STATE).is_file())


def save_checkpoint(accelerator, root: Path, state: dict, keep_last: int) -> Path:
    """accelerate's state (weights as safetensors, optimizer, scheduler, RNG, registered objects) and the engine's
    counters, written to a temporary folder and renamed when complete."""
    final, tmp = root / f"step-{state['step']:08d}", root / f".tmp-step-{state['step']:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            (tmp / STATE).write_text(json.dumps(state), encoding="utf-8")
    except (OSError, RuntimeError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not atomic.disk_full(e):
            raise
        kept = checkpoints(root)
        raise atomic.full(final, e, f"the last complete checkpoint is {kept[-1]} (--resume continues from it)" if kept
                          else "no earlier checkpoint") from None
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(atomic.share(tmp), final)
        for old in checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _restore(run: Run, metrics_log: MetricsLog, resume: bool) -> Path | None:
    done = checkpoints(run.out / "checkpoints")
    main = run.accelerator.is_main_process
    if resume and done:
        run.accelerator.load_state(str(done[-1]))
        run.state = json.loads((done[-1] / STATE).read_text(encoding="utf-8"))
        if not main:  # the logging window was summed over processes when saved: the main process carries it
            run.state["window"] = _empty_window()
        if main:
            metrics_log.truncate(run.state["step"])
        return done[-1]
    if main:  # a fresh start: no rows from an earlier attempt
        metrics_log.path.unlink(missing_ok=True)
    return None


# ------------------------------------------------------------------------------------------------------ the loop
def _empty_window() -> dict:
    return {"sums": {}, "counts": {}, "samples": 0, "tokens": 0, "seconds": 0.0, "steps": 0}


def sum_over_processes(accelerator, values: list[float]) -> list[float]:
    """Each value summed over the processes (float64, so counts stay exact)."""
    if accelerator.num_processes == 1:
        return [float(v) for v in values]
    return accelerator.reduce(torch.tensor(values, dtype=torch.float64, device=accelerator.device), "sum").tolist()


def _reduce_window(accelerator, window: dict, keys: list[str]) -> dict:
    """The window summed over processes (same keys everywhere: a key a process never saw counts 0)."""
    if accelerator.num_processes == 1:
        return window
    total = sum_over_processes(accelerator, [window["samples"], window["tokens"]] + [
        window["sums"].get(k, 0.0) for k in keys] + [window["counts"].get(k, 0) for k in keys])
    n = len(keys)
    return {"sums": {k: v for k, v, c in zip(keys, total[2:2 + n], total[2 + n:]) if c},
            "counts": {k: c for k, c in zip(keys, total[2 + n:]) if c}, "samples": int(total[0]),
            "tokens": int(total[1]), "seconds": window["seconds"], "steps": window["steps"]}


def train(stage: Stage, args: TrainArgs, out: Path, accelerator, *, resume: bool, info: RunInfo,
          metric_keys: list[str] = ("loss",)) -> dict:
    """Train `stage` to the end (or an early stop); returns the final state: step, samples_seen, tokens_seen,
    train_seconds, best (the best evaluation row, when the stage has a main metric), last_eval."""
    from tqdm import tqdm

    main = accelerator.is_main_process
    done_state = out / STATE
    previous = read_run(out) if resume else None
    if previous is not None and previous.status == "finished" and done_state.is_file():
        log.info("%s: already finished; nothing to resume", out)
        return json.loads(done_state.read_text(encoding="utf-8"))
    total = total_steps(args, stage.steps_per_epoch)
    world = accelerator.num_processes
    if accelerator.distributed_type.name == "DEEPSPEED" and args.batch_size != args.micro_batch_size * world:
        raise ConfigError("DeepSpeed steps inside backward: set train.batch_size = micro_batch_size x processes "
                          f"({args.micro_batch_size} x {world}), no mengzi-side accumulation")
    run = Run(accelerator, args, out, stage.model, total)
    optimizer = build_optimizer(stage.parameter_groups(args), args.optimizer, lr=args.lr, betas=tuple(args.betas),
                                eps=args.adam_epsilon)
    warmup = args.warmup_steps or int(args.warmup_ratio * total)
    if warmup > total:
        log.warning("warmup %d > %d steps: warming up over all of them", warmup, total)
    run.scheduler = build_scheduler(optimizer, args.schedule, warmup_steps=min(warmup, total), total_steps=total)
    run.model, run.optimizer = accelerator.prepare(stage.model, optimizer)
    accelerator.register_for_checkpointing(run.scheduler)  # stepped once per optimizer step, whatever the world
    for obj in stage.checkpoint_objects():
        accelerator.register_for_checkpointing(obj)
    run.state = {"step": 0, "samples_seen": 0, "tokens_seen": 0, "train_seconds": 0.0, "best": None,
                 "bad_evals": 0, "last_eval": None, "start_eval": None, "window": _empty_window()}
    metrics_log = MetricsLog(out / "metrics.jsonl")
    if main:
        write_run(out, info)
    resumed = _restore(run, metrics_log, resume)
    if resumed:
        log.info("resumed from %s (step %d of %d)", resumed, run.step, total)
    if args.report_to:
        accelerator.init_trackers(out.name, config={k: v for k, v in vars(args).items()
                                                    if isinstance(v, int | float | str | bool)})
    stage.start(run)
    eval_every = args.eval_every or (stage.steps_per_epoch if not args.max_steps and stage.steps_per_epoch else total)
    save_every = args.save_every or eval_every
    state, keys = run.state, list(metric_keys)

    def evaluate() -> bool:
        """Evaluate, keep the best, log; True when early stopping says stop."""
        metrics = stage.evaluate(run)
        row = {"split": stage.eval_split, "step": state["step"], **metrics}
        stop = False
        if main and metrics:
            metrics_log.write(row)
            improved = None
            if stage.main_metric and stage.main_metric in metrics:
                best = state["best"]
                improved = best is None or metrics[stage.main_metric] > best[stage.main_metric]
                if improved:
                    state["best"], state["bad_evals"] = row, 0
                    stage.save_model(run, out / "model")
                else:
                    state["bad_evals"] += 1
            state["last_eval"] = row
            if state["step"] == 0:
                state["start_eval"] = row
            log.info("step %d %s: %s%s", state["step"], stage.eval_split, ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
                if isinstance(v, int | float | str)), " (best so far)" if improved else "")
            if args.report_to:
                accelerator.log({f"{stage.eval_split}/{k}": v for k, v in metrics.items()
                                 if isinstance(v, int | float)}, step=state["step"])
            stop = bool(args.early_stopping_patience and state["bad_evals"] >= args.early_stopping_patience)
        accelerator.wait_for_everyone()
        for key in ("best", "bad_evals", "last_eval", "start_eval"):
            state[key] = _broadcast(state[key], accelerator)
        return _broadcast(stop, accelerator)

    log.info("%s: %d steps of %d examples (%d per micro-batch, %d process(es), %s, %s), evaluation every %d, "
             "checkpoint every %d", stage.name, total, args.batch_size, args.micro_batch_size, world,
             accelerator.distributed_type.name, accelerator.mixed_precision, eval_every, save_every)
    if args.eval_at_start and state["step"] == 0 and not resumed:
        evaluate()
    bar = tqdm(total=total, initial=state["step"], desc=stage.name, unit="step", disable=not main, mininterval=2)
    run.model.train()
    window, stopped = state["window"], False
    while state["step"] < total and not stopped:
        started = time.perf_counter()
        micros = stage.micro_batches(run)
        share = sum(m.samples for m in micros) or 1
        for k, micro in enumerate(micros):
            sync = k == len(micros) - 1
            with accelerator.no_sync(run.model) if not sync else contextlib.nullcontext():
                metrics = stage.train_micro(run, micro, micro.samples / share)
            for key, value in metrics.items():
                window["sums"][key] = window["sums"].get(key, 0.0) + float(value) * micro.samples
                window["counts"][key] = window["counts"].get(key, 0) + micro.samples
                if key not in keys:
                    keys.append(key)
            window["samples"] += micro.samples
            window["tokens"] += micro.tokens
        if args.clip_norm > 0:
            accelerator.clip_grad_norm_(run.model.parameters(), args.clip_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        stage.after_step(run)
        state["step"] += 1
        window["steps"] += 1
        window["seconds"] += time.perf_counter() - started
        bar.update(1)
        final = state["step"] == total
        if state["step"] % args.log_every == 0 or final:
            _log_window(run, stage, metrics_log, bar, keys)
            window = state["window"]
        if final or state["step"] % eval_every == 0:
            stopped = evaluate() and not final
            if stopped:
                log.info("early stopping at step %d: no better %s for %d evaluations", state["step"],
                         stage.main_metric, args.early_stopping_patience)
        if ((final or stopped) and args.keep_checkpoints) or (not (final or stopped) and state["step"] % save_every == 0):
            state["window"] = _reduce_window(accelerator, window, keys)
            save_checkpoint(accelerator, out / "checkpoints", state, args.keep_last)
            window = state["window"] = state["window"] if main else _empty_window()
    bar.close()
    if window["steps"]:  # an early stop between log lines
        _log_window(run, stage, metrics_log, bar, keys)
    if main and not stage.main_metric:
        stage.save_model(run, out / "model")
    accelerator.wait_for_everyone()
    if main:
        _finish(run, stage, info, metrics_log)
    accelerator.wait_for_everyone()
    if args.report_to:
        for tracker in accelerator.trackers:
            tracker.finish()
        accelerator.trackers = []
    return state


def _log_window(run: Run, stage: Stage, metrics_log: MetricsLog, bar, keys: list[str]) -> None:
    state, accelerator = run.state, run.accelerator
    window = _reduce_window(accelerator, state["window"], keys)
    seconds = max(window["seconds"], 1e-9)
    state["samples_seen"] += window["samples"]
    state["tokens_seen"] += window["tokens"]
    state["train_seconds"] += window["seconds"]
    row = {"split": "train", "step": state["step"], "lr": run.scheduler.get_last_lr()[-1],
           **{k: round(window["sums"][k] / window["counts"][k], 5) for k in keys if window["counts"].get(k)},
           "samples_per_s": round(window["samples"] / seconds, 1)}
    if window["tokens"]:
        row["tokens_per_s"] = round(window["tokens"] / seconds, 1)
    if stage.steps_per_epoch:
        row["epoch"] = round(state["step"] / stage.steps_per_epoch, 3)
    row |= {"samples_seen": state["samples_seen"], "tokens_seen": state["tokens_seen"]}
    if accelerator.is_main_process:
        metrics_log.write(row)
        if "loss" in row:
            bar.set_postfix(loss=f"{row['loss']:.3f}")
        if run.args.report_to:
            accelerator.log({f"train/{k}": v for k, v in figures(row).items()}, step=row["step"])
    state["window"] = _empty_window()


def _finish(run: Run, stage: Stage, info: RunInfo, metrics_log: MetricsLog) -> None:
    """The finished run: metrics.json, counters in trainer_state.json, curves, the model card, run.json finished,
    and the checkpoints removed (optimizer state is ~2x the model) unless kept."""
    out, state = run.out, run.state
    atomic.write_text(out / "metrics.json", json.dumps({**stage.finish(run), **summary(state)}, ensure_ascii=False,
                                                       indent=1))
    atomic.write_text(out / STATE, json.dumps(state))
    plot({"": metrics_log.rows()}, out / "curves.png", title=stage.name)
    if (out / "model").is_dir():
        model_card(out / "model", info, state["best"] or state["last_eval"] or {},
                   {k: v for k, v in asdict(run.args).items() if k != "report_to"} | summary(state))
    info.status = "finished"
    write_run(out, info)
    if not run.args.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    for old in checkpoints(out / "checkpoints")[:-1]:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def session(cfg, args: TrainArgs, out: Path, command: str, find_unused: bool = False):
    """The accelerator of a run whose folder is prepared (`cfg.resume` / `cfg.overwrite`), with `config.yaml`
    written and the log going to `train.log`; the log handler and the process group are released after."""
    from ..config import save_yaml
    from .runfolder import log_to, prepare

    accelerator = make_accelerator(args, out, find_unused)
    main = accelerator.is_main_process
    if not main:  # one process speaks for the run
        logging.getLogger("mengzi").setLevel(logging.WARNING)
    if main:
        prepare(out, cfg.resume, cfg.overwrite)
        save_yaml(cfg, out / "config.yaml", header=f"resolved config of this run ({command} --config this)")
    accelerator.wait_for_everyone()
    handler = log_to(out / "train.log") if main else None
    try:
        yield accelerator
    finally:
        if handler is not None:
            logging.getLogger("mengzi").removeHandler(handler)
            handler.close()
        accelerator.end_training()


def train_in_place(stage: Stage, args: TrainArgs, info: RunInfo) -> tuple[dict, list[dict]]:
    """Train `stage.model` in place with no run folder to keep (tests, benchmarks, PET inside a prediction): the
    engine writes into a temporary folder, removed after. Returns the final state and the metrics rows."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        state = train(stage, args, out, make_accelerator(args, out), resume=False, info=info)
        return state, MetricsLog(out / "metrics.jsonl").rows()


def _broadcast(value, accelerator):
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def figures(row: dict | None) -> dict:
    """A metrics row (an evaluation in `state["last_eval"]`, say) without its split and step."""
    return {k: v for k, v in (row or {}).items() if k not in ("split", "step")}


def summary(state: dict) -> dict:
    """The training figures every stage's metrics.json carries."""
    return {"steps": state["step"], "samples_seen": state["samples_seen"], "tokens_seen": state["tokens_seen"],
            "train_seconds": round(state["train_seconds"], 1),
            "train_samples_per_s": round(state["samples_seen"] / max(state["train_seconds"], 1e-9), 1)}
