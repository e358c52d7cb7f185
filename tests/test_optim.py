"""LAMB against the formula in plain torch, the no-decay split on a real BertModel, and the LR schedules."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from mengzi.engine.optim import OPTIMIZERS, Lamb, build_optimizer, build_scheduler, register_optimizer


def lamb_reference(p, grads, lr, betas, eps, weight_decay, bias_correction=True, max_trust_ratio=None):
    """LAMB written out step by step (You et al. 2019, Algorithm 2), in float64."""
    p = p.double().clone()
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.double()
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat = m / (1 - betas[0] ** t) if bias_correction else m
        v_hat = v / (1 - betas[1] ** t) if bias_correction else v
        r = m_hat / (torch.sqrt(v_hat) + eps) + weight_decay * p
        w_norm, r_norm = torch.linalg.norm(p).item(), torch.linalg.norm(r).item()
        ratio = w_norm / r_norm if w_norm > 0 and r_norm > 0 else 1.0
        if max_trust_ratio is not None:
            ratio = min(ratio, max_trust_ratio)
        p = p - lr * ratio * r
    return p


def run_lamb(p0, grads, **options):
    p = nn.Parameter(p0.clone())
    optimizer = Lamb([p], **options)
    for g in grads:
        p.grad = g.clone()
        optimizer.step()
    return p.detach()


def test_lamb_single_step_by_hand():
    p0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    g = torch.tensor([[0.1, 0.2], [-0.3, 0.05]])
    lr, wd, eps = 0.01, 0.1, 1e-6
    # step 1 from zero moments: m_hat = g, v_hat = g^2, so r = g / (|g| + eps) + wd * p
    r = g / (g.abs() + eps) + wd * p0
    expected = p0 - lr * (p0.norm() / r.norm()) * r
    got = run_lamb(p0, [g], lr=lr, weight_decay=wd, eps=eps)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    "options",
    [
        dict(lr=0.01, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01),
        dict(lr=0.1, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.0),
        dict(lr=0.01, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.1, bias_correction=False),
        dict(lr=0.01, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, max_trust_ratio=0.5),
    ],
)
def test_lamb_matches_reference_over_several_steps(options):
    torch.manual_seed(0)
    p0 = torch.randn(5, 3)
    grads = [torch.randn(5, 3) for _ in range(5)]
    reference = lamb_reference(p0, grads, **{"max_trust_ratio": None, **options}).float()
    got = run_lamb(p0, grads, **{"max_trust_ratio": None, **options})
    torch.testing.assert_close(got, reference, rtol=1e-5, atol=1e-6)


def test_trust_ratio_clamp_default():
    """A big tensor with a tiny Adam step would move ||p|| / ||r|| = 1000 times lr * r; the default clamp is 10."""
    p0 = torch.full((4,), 1000.0)
    g = torch.ones(4)
    step = p0 - run_lamb(p0, [g], lr=0.01)  # r = 1 (to eps), ||p|| / ||r|| = 1000
    torch.testing.assert_close(step, torch.full((4,), 0.01 * 10), rtol=1e-3, atol=0)  # float32 ulp at 1000: 6e-5
    step = p0 - run_lamb(p0, [g], lr=0.01, max_trust_ratio=None)
    torch.testing.assert_close(step, torch.full((4,), 0.01 * 1000), rtol=1e-3, atol=0)


def test_trust_ratio_is_one_for_a_zero_parameter():
    g = torch.tensor([0.5, -1.0, 2.0])
    got = run_lamb(torch.zeros(3), [g], lr=0.1, weight_decay=0.01, eps=0.0)
    torch.testing.assert_close(got, -0.1 * torch.sign(g))  # plain Adam first step: r = g / |g|


def test_zero_gradient_leaves_the_parameter_alone():
    p0 = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(run_lamb(p0, [torch.zeros(2)], lr=0.1), p0)  # ||r|| = 0: ratio 1, step 0


def test_lamb_trains_a_tiny_regression():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1) + 0.5
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = build_optimizer(model, "lamb", lr=0.02, weight_decay=0.01)
    losses = []
    for _ in range(200):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_lamb_rejects_sparse_gradients_and_bad_options():
    embedding = nn.Embedding(10, 4, sparse=True)
    optimizer = Lamb(embedding.parameters())
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        optimizer.step()
    with pytest.raises(ValueError):
        Lamb([nn.Parameter(torch.ones(1))], betas=(0.9, 1.0))
    with pytest.raises(ValueError):
        Lamb([nn.Parameter(torch.ones(1))], lr=-1.0)


def test_lamb_state_dict_round_trip():
    torch.manual_seed(0)
    p0, grads = torch.randn(3, 3), [torch.randn(3, 3) for _ in range(4)]
    p = nn.Parameter(p0.clone())
    optimizer = Lamb([p], lr=0.01, weight_decay=0.01)
    for g in grads[:2]:
        p.grad = g.clone()
        optimizer.step()
    resumed_p = nn.Parameter(p.detach().clone())
    resumed = Lamb([resumed_p], lr=0.01, weight_decay=0.01)
    resumed.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # as through torch.save / torch.load
    for g in grads[2:]:
        p.grad, resumed_p.grad = g.clone(), g.clone()
        optimizer.step()
        resumed.step()
    torch.testing.assert_close(resumed_p, p)


@pytest.fixture(scope="module")
def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return BertModel(config)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_no_decay_on_bias_and_layernorm(tiny_bert, name):
    optimizer = build_optimizer(tiny_bert, name, lr=1e-3, weight_decay=0.01)
    names = {id(p): n for n, p in tiny_bert.named_parameters()}
    decay = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.01 for p in g["params"]}
    no_decay = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert decay | no_decay == set(names.values()) and not decay & no_decay
    assert no_decay == {n for n in names.values() if n.endswith("bias") or "LayerNorm" in n}
    assert "embeddings.LayerNorm.weight" in no_decay and "encoder.layer.1.output.LayerNorm.weight" in no_decay
    assert "embeddings.word_embeddings.weight" in decay and "encoder.layer.0.attention.self.query.weight" in decay
    expected_type = {"adamw": torch.optim.AdamW, "lamb": Lamb}[name]
    assert type(optimizer) is expected_type
    assert all(g["lr"] == 1e-3 for g in optimizer.param_groups)


def test_no_decay_on_rmsnorm_and_named_params():
    """Named parameters work too; an RMSNorm's 1-D scale is no-decay, frozen and tied tensors are not duplicated."""
    linear = nn.Linear(4, 4)
    frozen = nn.Linear(4, 4).requires_grad_(False)
    norm = nn.RMSNorm(4)
    named = [("a.weight", linear.weight), ("a.bias", linear.bias), ("tied.weight", linear.weight)]
    named += [("norm.weight", norm.weight), ("frozen.weight", frozen.weight)]
    optimizer = build_optimizer(named, "lamb", weight_decay=0.1)
    decay, no_decay = (g["params"] for g in optimizer.param_groups)
    assert [id(p) for p in decay] == [id(linear.weight)]
    assert [id(p) for p in no_decay] == [id(linear.bias), id(norm.weight)]


def test_registry_adds_an_optimizer_in_one_place():
    @register_optimizer("sgd-test")
    def _sgd(param_groups, lr, betas, eps):
        return torch.optim.SGD(param_groups, lr=lr, momentum=betas[0])

    try:
        optimizer = build_optimizer(nn.Linear(2, 2), "sgd-test", lr=0.5)
        assert isinstance(optimizer, torch.optim.SGD) and optimizer.param_groups[0]["momentum"] == 0.9
    finally:
        del OPTIMIZERS["sgd-test"]
    with pytest.raises(ValueError, match="unknown optimizer 'sgd-test'"):
        build_optimizer(nn.Linear(2, 2), "sgd-test")


def lrs(name, warmup, total, lr=0.1):
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = build_scheduler(optimizer, name, warmup_steps=warmup, total_steps=total)
    seen = [optimizer.param_groups[0]["lr"]]  # lr for step 0
    for _ in range(total):
        optimizer.step()
        scheduler.step()
        seen.append(optimizer.param_groups[0]["lr"])
    return seen  # seen[k]: the lr used by optimiser step k


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_warmup_then_decay_to_zero(name):
    seen = lrs(name, warmup=10, total=100)
    assert seen[0] == 0.0
    assert seen[5] == pytest.approx(0.05)  # linear warmup
    assert seen[10] == pytest.approx(0.1)  # peak at the end of warmup
    assert seen[100] == pytest.approx(0.0, abs=1e-12)  # zero at the end of training
    assert all(a >= b for a, b in zip(seen[10:], seen[11:]))  # then monotone decay
    midpoint = {"linear": 0.05, "cosine": 0.1 * 0.5 * (1 + math.cos(math.pi * 0.5))}[name]
    assert seen[55] == pytest.approx(midpoint)


def test_constant_with_and_without_warmup():
    seen = lrs("constant", warmup=4, total=20)
    assert seen[2] == pytest.approx(0.05) and seen[4:] == pytest.approx([0.1] * 17)
    assert lrs("constant", warmup=0, total=5) == pytest.approx([0.1] * 6)


def test_scheduler_errors():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="unknown scheduler"):
        build_scheduler(optimizer, "polynomial", 0, 10)
    with pytest.raises(ValueError, match="total_steps"):
        build_scheduler(optimizer, "cosine", 10, None)
    with pytest.raises(ValueError, match="total_steps"):
        build_scheduler(optimizer, "linear", 10, 5)
