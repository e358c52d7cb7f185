"""Optimisers and learning-rate schedules for every stage: LAMB, AdamW, and the no-decay parameter split.

Why this file exists: Mengzi pre-training uses large batches, where Adam's per-element step is too aggressive for
some layers and too timid for others. LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning") rescales
each tensor's Adam step by a trust ratio ||p|| / ||update||, so every layer moves by a similar *relative* amount.
torch has no LAMB, so it is written out here. The rest is the usual plumbing, kept in one place:

    optimizer = build_optimizer(model, "lamb", lr=1e-3, weight_decay=0.01)
    scheduler = build_scheduler(optimizer, "linear", warmup_steps=1000, total_steps=100_000)

Biases and LayerNorm/RMSNorm scales get no weight decay (decaying a norm's gain towards 0 only hurts). Adding an
optimiser is one decorated factory: `@register_optimizer("name")`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

# ----------------------------------------------------------------------------------------------------------------------
# LAMB


class Lamb(torch.optim.Optimizer):
    """LAMB with weight decay decoupled inside the update, as in the paper (Algorithm 2) and NVIDIA's FusedLAMB.

    For each tensor p with gradient g, at step t:

        m = b1 * m + (1 - b1) * g                 v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)                 v_hat = v / (1 - b2 ** t)        (if bias_correction)
        r = m_hat / (sqrt(v_hat) + eps) + weight_decay * p
        trust_ratio = ||p|| / ||r||               (1 when either norm is 0), then min(trust_ratio, max_trust_ratio)
        p = p - lr * trust_ratio * r

    `max_trust_ratio` (default 10.0, None for no clamp): the paper bounds the scaling function phi(||p||) and
    common implementations clamp at 10 (cybertronai/pytorch-lamb clamps ||p||; we clamp the ratio itself, which
    bounds the effective step of any tensor at 10 * lr * ||r|| whatever its size). With near-zero Adam steps (e.g. a
    parameter whose gradients cancel out) the unclamped ratio can explode. NVIDIA's FusedLAMB does not clamp, and
    also clips the global gradient norm: do that outside, with `torch.nn.utils.clip_grad_norm_`.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
        max_trust_ratio: float | None = 10.0,
    ):
        if lr < 0.0 or eps < 0.0 or weight_decay < 0.0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if max_trust_ratio is not None and max_trust_ratio <= 0:
            raise ValueError(f"max_trust_ratio must be > 0 or None, got {max_trust_ratio}")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
            max_trust_ratio=max_trust_ratio,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Lamb does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]

                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                m_hat, v_hat = m, v
                if group["bias_correction"]:
                    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
                update = m_hat / (v_hat.sqrt() + group["eps"])
                if group["weight_decay"] != 0:
                    update.add_(p, alpha=group["weight_decay"])

                # trust ratio: a tensor-level step size, 1 when either norm is 0 (fresh zero init, or no update)
                p_norm, update_norm = p.norm(), update.norm()
                trust_ratio = torch.where((p_norm > 0) & (update_norm > 0), p_norm / update_norm, 1.0)
                if group["max_trust_ratio"] is not None:
                    trust_ratio = trust_ratio.clamp(max=group["max_trust_ratio"])
                p.add_(update * trust_ratio, alpha=-group["lr"])
        return loss


# ----------------------------------------------------------------------------------------------------------------------
# registry: name -> factory(param_groups, lr, betas, eps) -> Optimizer (weight decay is set per group)

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {}


def register_optimizer(name: str):
    """Decorator: make a factory `f(param_groups, lr, betas, eps)` available to `build_optimizer(..., name=name)`."""

    def register(factory):
        OPTIMIZERS[name] = factory
        return factory

    return register


@register_optimizer("adamw")
def _adamw(param_groups, lr, betas, eps):
    return torch.optim.AdamW(param_groups, lr=lr, betas=betas, eps=eps)


@register_optimizer("lamb")
def _lamb(param_groups, lr, betas, eps):
    return Lamb(param_groups, lr=lr, betas=betas, eps=eps)


def decay_groups(
    named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float, frozen: bool = False
) -> list[dict[str, list[nn.Parameter] | float]]:
    """Two parameter groups: matrices and embeddings decay; biases and norm scales (every tensor with < 2 dims, which
    in transformer models is exactly the biases and LayerNorm/RMSNorm weights) don't; embedding tables, T5's
    `relative_attention_bias` included, decay. Repeated (tied) parameters are skipped, and frozen ones unless
    `frozen` (a staged run that unfreezes them later; AdamW skips a tensor without a gradient)."""
    decay, no_decay, seen = [], [], set()
    for _, p in named_params:
        if not (p.requires_grad or frozen) or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    params: nn.Module | Iterable[tuple[str, nn.Parameter]] | list[dict],
    name: str = "adamw",
    lr: float = 1e-4,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """An optimiser from `OPTIMIZERS` over a model (or its `named_parameters()`), without decay on biases and norms;
    or over ready parameter groups (dicts with their own `weight_decay`, maybe `lr`)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    if isinstance(params, nn.Module):
        params = params.named_parameters()
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else decay_groups(params, weight_decay)
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ValueError("no trainable parameters to optimise")
    return OPTIMIZERS[name](groups, lr=lr, betas=tuple(betas), eps=eps)


# ----------------------------------------------------------------------------------------------------------------------
# schedules

# our name -> transformers' name. transformers' "constant" ignores num_warmup_steps; "constant_with_warmup" with 0
# warmup steps is the same flat line, so "constant" always means constant after an (optional) linear warmup.
SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def build_scheduler(
    optimizer: torch.optim.Optimizer, name: str = "linear", warmup_steps: int = 0, total_steps: int | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup from 0 over `warmup_steps`, then linear decay to 0 at `total_steps`, half-cosine decay to 0, or
    constant. Call `scheduler.step()` once per optimiser step."""
    from transformers import get_scheduler  # here, so importing this module stays cheap

    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}; choose from {sorted(SCHEDULERS)}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if name != "constant" and (total_steps is None or total_steps < warmup_steps):
        raise ValueError(f"{name!r} needs total_steps >= warmup_steps ({warmup_steps}), got {total_steps}")
    return get_scheduler(SCHEDULERS[name], optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)
