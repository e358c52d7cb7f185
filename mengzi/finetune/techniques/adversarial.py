"""Adversarial training on the word embeddings: FGM (Miyato et al. 2017) and PGD (Madry et al. 2018).

After the clean backward, the embedding matrix is pushed along its gradient (the direction that raises the loss
most), the loss of the perturbed model is back-propagated on top of the clean gradients, and the embedding is
restored bit for bit before the optimizer steps: the update is the clean gradient plus the adversarial one, the
weights themselves never keep a perturbation. This is the recipe Chinese leaderboard entries (Mengzi's included)
use on CLUE classification tasks.
"""

from __future__ import annotations

import torch

from .base import Step, Technique, input_embedding, register_technique


def _unit(grad: torch.Tensor) -> torch.Tensor | None:
    norm = torch.linalg.vector_norm(grad)
    if norm == 0 or not torch.isfinite(norm):
        return None
    return grad / norm


@register_technique("fgm")
class FGM(Technique):
    """One step of size `epsilon` along the normalised embedding gradient."""

    def __init__(self, epsilon: float = 1.0):
        if epsilon <= 0:
            raise ValueError("epsilon must be > 0")
        self.epsilon = epsilon

    @torch.no_grad()
    def _perturb(self, emb: torch.nn.Parameter) -> torch.Tensor | None:
        direction = _unit(emb.grad) if emb.grad is not None else None
        if direction is None:
            return None
        backup = emb.data.clone()
        emb.data.add_(self.epsilon * direction)
        return backup

    def after_backward(self, step: Step) -> None:
        emb = input_embedding(step.model)
        backup = self._perturb(emb)
        if backup is None:
            return
        try:
            step.backward(step.task_loss(step.forward(step.batch), step.batch))
        finally:
            emb.data.copy_(backup)


@register_technique("pgd")
class PGD(Technique):
    """`steps` ascent steps of size `alpha`, each projected back into the ball of radius `epsilon` around the clean
    embedding. Only the last step's gradient is kept (added to the clean one), as in the usual implementation."""

    def __init__(self, epsilon: float = 1.0, alpha: float = 0.3, steps: int = 3):
        if epsilon <= 0 or alpha <= 0 or steps < 1:
            raise ValueError("epsilon and alpha must be > 0, steps >= 1")
        self.epsilon, self.alpha, self.steps = epsilon, alpha, steps

    def after_backward(self, step: Step) -> None:
        emb = input_embedding(step.model)
        if emb.grad is None or _unit(emb.grad) is None:
            return
        params = [p for p in step.model.parameters() if p.requires_grad]
        clean_grads = [None if p.grad is None else p.grad.clone() for p in params]
        clean_emb = emb.data.clone()
        try:
            for k in range(self.steps):
                with torch.no_grad():
                    direction = _unit(emb.grad)
                    if direction is None:  # a vanishing gradient: keep the clean update alone
                        for p, g in zip(params, clean_grads):
                            p.grad = None if g is None else g.clone()
                        break
                    emb.data.add_(self.alpha * direction)
                    delta = emb.data - clean_emb
                    norm = torch.linalg.vector_norm(delta)
                    if norm > self.epsilon:
                        emb.data.copy_(clean_emb + delta * (self.epsilon / norm))
                    last = k == self.steps - 1
                    for p, g in zip(params, clean_grads):  # the last step adds onto the clean gradients
                        if last:
                            p.grad = None if g is None else g.clone()
                        elif p.grad is not None:
                            p.grad.zero_()
                step.backward(step.task_loss(step.forward(step.batch), step.batch))
        finally:
            emb.data.copy_(clean_emb)
