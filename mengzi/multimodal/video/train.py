"""`video_train(cfg)`: train a MavorsVideoLM on synthetic temporal-order clips, stage by stage, on the engine.

What is the video LM's own: the stages (which parts learn when), a batch of clips drawn by (seed, step), the
held-out temporal-order accuracy. The engine (`mengzi.engine`) writes the run folder: run.json, config.yaml,
train.log, metrics.jsonl, curves.png, checkpoints while training (a killed run resumes with --resume), model/
(loadable with `MavorsVideoLM.load`); metrics.json holds the held-out accuracy.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ... import atomic
from ...engine import loop, runfolder
from ...engine.optim import decay_groups
from .config import VideoTrain, VideoTrainConfig
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


class VideoStage(loop.Stage):
    name = "video"

    def __init__(self, model: MavorsVideoLM, train: list, held_out: list, stages: dict[str, int]):
        super().__init__(model)
        self.train, self.held_out, self.stages = train, held_out, list(stages.items())
        self.current = None

    def parameter_groups(self, args) -> list[dict]:
        """Every parameter, frozen ones included: a later stage unfreezes them."""
        return decay_groups(self.model.named_parameters(), args.weight_decay, frozen=True)

    def stage_at(self, step: int) -> str:
        for name, steps in self.stages:
            if step < steps:
                return name
            step -= steps
        return self.stages[-1][0]

    def micro_batches(self, run: loop.Run) -> list[loop.Micro]:
        stage = self.stage_at(run.step)
        if stage != self.current:
            log.info("step %d: stage %s, trainable %s", run.step, stage, set_stage(run.unwrapped, stage))
            self.current = stage
        t = run.args
        rng = np.random.default_rng([t.seed, run.step])  # a resumed run draws the same batches
        chosen = rng.choice(len(self.train), size=min(t.batch_size, len(self.train)), replace=False)
        batch = [self.train[i] for i in chosen]
        return [loop.Micro(batch[i : i + t.micro_batch_size], len(batch[i : i + t.micro_batch_size]))
                for i in range(0, len(batch), t.micro_batch_size)]

    def loss(self, run: loop.Run, batch):
        return run.model([e[0] for e in batch], [PROMPT] * len(batch), [e[1] for e in batch]).loss, {}

    def evaluate(self, run: loop.Run) -> dict:
        return {"temporal_order_acc": temporal_order_accuracy(run.unwrapped, self.held_out)} if self.held_out else {}

    def save_model(self, run: loop.Run, folder: Path) -> None:
        with atomic.folder(folder, overwrite=True) as tmp:
            run.unwrapped.save(tmp)

    def finish(self, run: loop.Run) -> dict:
        return {"held_out_temporal_order_acc": (run.state["last_eval"] or {}).get("temporal_order_acc"),
                "held_out_clips": len(self.held_out), "chance": 0.5}


def _check_stages(stages: dict) -> None:
    for name, steps in stages.items():
        if name not in STAGES or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"VideoTrainConfig.stages: {name!r}: {steps!r} must be one of {list(STAGES)} -> steps >= 0")
    if not sum(stages.values()):
        raise ValueError("VideoTrainConfig.stages: no steps to train")


def video_train(cfg: VideoTrainConfig) -> Path:
    """Train (or with `resume`, continue) the run in `cfg.out`; returns the run folder."""
    _check_stages(cfg.stages)
    out = Path(cfg.out)
    args = dataclasses.replace(cfg.train, max_steps=sum(cfg.stages.values()))
    with loop.session(cfg, args, out, "mengzi video train") as accelerator:
        mc = cfg.model
        train = temporal_order_examples(cfg.data, cfg.data.train_pairs, cfg.data.seed, mc.image_size, mc.fps,
                                        mc.chunk_frames)
        held_out = temporal_order_examples(cfg.data, cfg.data.eval_pairs, cfg.data.seed + 1, mc.image_size, mc.fps,
                                           mc.chunk_frames)
        stage = VideoStage(MavorsVideoLM(mc), train, held_out, cfg.stages)
        info = runfolder.RunInfo("video", task="temporal-order", model=mc.lm_preset, extra={"stages": cfg.stages})
        loop.train(stage, args, out, accelerator, resume=cfg.resume, info=info)
    return out


def train_examples(model: MavorsVideoLM, examples, stages: dict[str, int], batch_size: int = 16, lr: float = 3e-3,
                   seed: int = 0, progress: bool = True) -> list[float]:
    """Train `model` in place on ready clips through the engine (tests and benchmarks; no run folder is kept);
    returns the loss of every step."""
    _check_stages(stages)
    args = VideoTrain(max_steps=sum(stages.values()), batch_size=batch_size, micro_batch_size=batch_size, lr=lr,
                      seed=seed, threads=0, eval_every=0, eval_at_start=False, log_every=1, save_every=10**9)
    logger = logging.getLogger("mengzi")
    level = logger.level
    if not progress:
        logger.setLevel(logging.WARNING)
    try:
        _, rows = loop.train_in_place(VideoStage(model, examples, [], stages), args, runfolder.RunInfo("video"))
    finally:
        logger.setLevel(level)
    model.train()
    return [r["loss"] for r in rows if r.get("split") == "train"]

