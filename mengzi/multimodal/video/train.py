"""`video_train(cfg)`: train a MavorsVideoLM on synthetic temporal-order clips, stage by stage, into a run folder.

The run folder holds config.yaml, metrics.jsonl (train loss, held-out temporal-order accuracy), checkpoint/
(model + optimizer + position, rewritten atomically every `checkpoint_every` steps: a killed run resumes there
with the same batches) and model/ (the final MavorsVideoLM, loadable with `MavorsVideoLM.load`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from ... import atomic
from ...config import save_yaml
from ...pretrain.runlog import MetricsLog
from .config import VideoTrainConfig
from .model import MavorsVideoLM
from .stages import STAGES, set_stage
from .synthetic import PROMPT, temporal_order_examples

log = logging.getLogger(__name__)


def temporal_order_accuracy(model: MavorsVideoLM, examples, batch_size: int = 32) -> float:
    """Share of clips whose own caption scores above the reversed one."""
    was_training = model.training
    model.eval()
    right = 0
    for at in range(0, len(examples), batch_size):
        part = examples[at: at + batch_size]
        scores = model.score([e[0] for e in part], [PROMPT] * len(part), [[e[1], e[2]] for e in part])
        right += sum(s[0] > s[1] for s in scores)
    model.train(was_training)
    return right / len(examples)


def make_optimizer(model: MavorsVideoLM, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)


def train_step(model: MavorsVideoLM, optimizer, examples, batch_size: int, step: int, lr: float, seed: int) -> float:
    """One update on a batch drawn by (seed, step): a resumed run draws the same batches."""
    rng = np.random.default_rng([seed, step])
    batch = [examples[i] for i in rng.choice(len(examples), size=min(batch_size, len(examples)), replace=False)]
    for group in optimizer.param_groups:
        group["lr"] = lr * min(1.0, (step + 1) / 10)
    loss = model([e[0] for e in batch], [PROMPT] * len(batch), [e[1] for e in batch]).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    return loss.item()


def train_examples(model: MavorsVideoLM, examples, stages: dict[str, int], batch_size: int = 16, lr: float = 3e-3,
                   seed: int = 0, progress: bool = True) -> list[float]:
    """Train in memory (tests and benchmarks); returns the loss of every step."""
    from tqdm.auto import tqdm

    model.train()
    losses, step = [], 0
    for stage, steps in stages.items():
        set_stage(model, stage)
        optimizer = make_optimizer(model, lr, 0.0)
        for _ in tqdm(range(steps), desc=f"video {stage}", disable=not progress, mininterval=2):
            losses.append(train_step(model, optimizer, examples, batch_size, step, lr, seed))
            step += 1
    return losses


def _check_stages(stages: dict) -> None:
    for name, steps in stages.items():
        if name not in STAGES or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"VideoTrainConfig.stages: {name!r}: {steps!r} must be one of {list(STAGES)} -> steps >= 0")


def _save_checkpoint(folder: Path, model: MavorsVideoLM, optimizer, position: dict) -> None:
    with atomic.folder(folder, overwrite=True) as tmp:
        model.save(tmp / "model")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "position.json").write_text(json.dumps(position), encoding="utf-8")


def video_train(cfg: VideoTrainConfig) -> Path:
    """Train (or resume) the run in `cfg.out`; returns the run folder."""
    from tqdm.auto import tqdm

    _check_stages(cfg.stages)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    checkpoint = out / "checkpoint"
    if out.exists() and cfg.overwrite:
        import shutil

        shutil.rmtree(out)
    if (out / "model").exists() and not (checkpoint / "position.json").is_file():
        raise FileExistsError(f"{out} holds a finished run with no checkpoint to resume from; set overwrite: true "
                              "(--overwrite) to train it again, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, out / "config.yaml", "mengzi video train: the config this run used")
    mc = cfg.model
    train = temporal_order_examples(cfg.data, cfg.data.train_pairs, cfg.data.seed, mc.image_size, mc.fps,
                                    mc.chunk_frames)
    held_out = temporal_order_examples(cfg.data, cfg.data.eval_pairs, cfg.data.seed + 1, mc.image_size, mc.fps,
                                       mc.chunk_frames)
    metrics = MetricsLog(out / "metrics.jsonl")
    position = {"stage": 0, "step": 0, "global_step": 0}
    if (checkpoint / "position.json").is_file():
        model = MavorsVideoLM.load(checkpoint / "model")
        position = json.loads((checkpoint / "position.json").read_text(encoding="utf-8"))
        metrics.truncate(position["global_step"])
        log.info("resuming %s at step %d", out, position["global_step"])
    else:
        model = MavorsVideoLM(mc)
        metrics.truncate(-1)
        metrics.write({"split": "eval", "step": 0, "temporal_order_acc": temporal_order_accuracy(model, held_out)})
    started = time.perf_counter()
    stages = list(cfg.stages.items())
    for stage_index in range(position["stage"], len(stages)):
        stage, steps = stages[stage_index]
        trainable = set_stage(model, stage)
        model.train()
        optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
        first = position["step"] if stage_index == position["stage"] else 0
        if first and (checkpoint / "optimizer.pt").is_file():
            optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
        log.info("stage %s: %d steps, trainable %s", stage, steps, trainable)
        for step in tqdm(range(first, steps), desc=f"video {stage}", initial=first, total=steps, mininterval=2):
            global_step = position["global_step"] + 1
            loss = train_step(model, optimizer, train, cfg.batch_size, global_step - 1, cfg.lr, mc.seed)
            position = {"stage": stage_index, "step": step + 1, "global_step": global_step}
            metrics.write({"split": "train", "step": global_step, "stage": stage, "loss": loss})
            if cfg.eval_every and global_step % cfg.eval_every == 0:
                metrics.write({"split": "eval", "step": global_step,
                               "temporal_order_acc": temporal_order_accuracy(model, held_out)})
            if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0:
                _save_checkpoint(checkpoint, model, optimizer, position)
        position = {"stage": stage_index + 1, "step": 0, "global_step": position["global_step"]}
    accuracy = temporal_order_accuracy(model, held_out)
    last = position["global_step"]
    if not (cfg.eval_every and last and last % cfg.eval_every == 0):  # not logged by the loop already
        metrics.write({"split": "eval", "step": last, "temporal_order_acc": accuracy})
    model.save(out / "model")
    atomic.write_text(out / "results.json", json.dumps(
        {"held_out_temporal_order_acc": accuracy, "held_out_clips": len(held_out), "chance": 0.5,
         "steps": position["global_step"], "seconds_this_session": round(time.perf_counter() - started, 1)},
        ensure_ascii=False, indent=2) + "\n")
    return out
