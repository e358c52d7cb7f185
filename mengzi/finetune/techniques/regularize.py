"""Techniques that change what the model is trained towards: EMA of weights, R-Drop, choice smoothing, and
knowledge distillation from a teacher run."""

from __future__ import annotations

import contextlib
import logging

import torch

from .base import Step, Technique, kl_divergence, register_technique

log = logging.getLogger("mengzi.finetune")


@register_technique("ema")
class EMA(Technique):
    """Exponential moving average of the trainable weights: shadow = decay * shadow + (1 - decay) * weight after
    every optimizer step. Evaluation, the best checkpoint and the saved model use the average (it generalises better
    late in training); training continues on the raw weights."""

    def __init__(self, decay: float = 0.999):
        if not 0 < decay < 1:
            raise ValueError("decay must be in (0, 1)")
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}

    def _named(self, model):
        # names without DDP's "module." prefix: training steps see the wrapped model, evaluation the unwrapped one
        return [(n.removeprefix("module."), p) for n, p in model.named_parameters() if p.requires_grad]

    @torch.no_grad()
    def after_optimizer_step(self, model) -> None:
        if not self.shadow:  # first step: start from the weights as they are now
            self.shadow = {n: p.detach().float().clone() for n, p in self._named(model)}
            return
        for n, p in self._named(model):
            self.shadow[n].mul_(self.decay).add_(p.detach().float(), alpha=1 - self.decay)

    @contextlib.contextmanager
    def eval_weights(self, model):
        if not self.shadow:
            yield
            return
        named = self._named(model)
        backup = {n: p.detach().clone() for n, p in named}
        with torch.no_grad():
            for n, p in named:
                p.copy_(self.shadow[n].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for n, p in named:
                    p.copy_(backup[n])

    def state_dict(self) -> dict:
        return {"shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.shadow = state.get("shadow", {})


@register_technique("rdrop")
class RDrop(Technique):
    """R-Drop (Liang et al. 2021): a second forward pass with other dropout masks; the loss is the mean of both
    cross-entropies plus `alpha` x the symmetric KL between the two predictions, which pulls the sub-models
    dropout samples together."""

    def __init__(self, alpha: float = 4.0):
        if alpha < 0:
            raise ValueError("alpha must be >= 0")
        self.alpha = alpha

    def extra_loss(self, step: Step):
        second = step.forward(step.batch)
        a, b = step.kind.masked(step.logits, step.batch), step.kind.masked(second, step.batch)
        symmetric_kl = (kl_divergence(a, b) + kl_divergence(b, a)) / 2
        step.extras["rdrop_kl"] = float(symmetric_kl.detach())
        return (step.task_loss(second, step.batch) - step.loss) / 2 + self.alpha * symmetric_kl


@register_technique("choice_smoothing")
class ChoiceSmoothing(Technique):
    """Label smoothing over the real choices of a multiple-choice question (padding choices get nothing)."""

    kinds = ("multiple_choice",)

    def __init__(self, epsilon: float = 0.1):
        if not 0 <= epsilon < 1:
            raise ValueError("epsilon must be in [0, 1)")
        self.epsilon = epsilon

    def smoothing(self) -> float:
        return self.epsilon


@register_technique("distill")
class Distill(Technique):
    """Knowledge distillation from a teacher run (a bigger or ensembled fine-tuned model of the same task and
    vocabulary): its logits on every training feature are computed once before training, and the loss becomes
    (1 - alpha) x task loss + alpha x T^2 x KL(teacher_T || student_T)."""

    def __init__(self, teacher: str = "", alpha: float = 0.5, temperature: float = 2.0):
        if not teacher:
            raise ValueError("name the teacher: its run folder or model folder (teacher: runs/clue/afqmc-base)")
        if not 0 <= alpha <= 1 or temperature <= 0:
            raise ValueError("alpha must be in [0, 1], temperature > 0")
        self.teacher, self.alpha, self.temperature = teacher, alpha, temperature

    def prepare_train_features(self, encoded, kind, accelerator) -> None:
        from pathlib import Path

        from ...models.load import load
        from ..trainer import predict_logits

        folder = Path(self.teacher)
        if (folder / "model" / "config.json").is_file():  # a run folder
            folder = folder / "model"
        teacher, tokenizer = load(folder, task=kind.model_task)
        teacher.to(accelerator.device)
        logits = predict_logits(teacher, encoded, kind, tokenizer.pad_token_id or 0, 64, accelerator)
        for feature, row in zip(encoded.features, logits):
            feature["teacher_logits"] = row.tolist()
        log.info("distill: teacher %s logits for %d training features", folder, len(encoded.features))
        del teacher

    def extra_loss(self, step: Step):
        teacher = step.batch["teacher_logits"].to(step.logits.device)
        student = step.kind.masked(step.logits, step.batch)
        kl = kl_divergence(teacher, student, self.temperature) * self.temperature**2
        step.extras["distill_kl"] = float(kl.detach())
        return self.alpha * (kl - step.loss)
