"""Each fine-tuning technique changes training as intended (and only that)."""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset

from mengzi.config import ConfigError
from mengzi.finetune.config import TrainConfig
from mengzi.finetune.kinds import get_kind
from mengzi.finetune.techniques import Step, all_techniques, build_techniques
from mengzi.finetune.techniques.base import input_embedding

TEXTS = ["今天天气很好", "我不喜欢下雨天", "蚂蚁借呗怎么还款", "花呗逾期了怎么办", "这部电影非常好看", "股票市场大跌"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, data):
    from mengzi.models.load import init_model, save_pretrained

    model, tok = init_model("mengzi-bert-tiny", task="sequence-classification", seed=0,
                            overrides={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0})
    return save_pretrained(model, tok, tmp_path_factory.mktemp("tiny") / "model")


def classifier(folder, labels=2, dropout=0.0):
    from mengzi.models.load import load

    model, tok = load(folder, task="sequence-classification",
                      config_overrides={"num_labels": labels, "hidden_dropout_prob": dropout,
                                        "attention_probs_dropout_prob": dropout})
    return model.train(), tok


def pair_data(n=6):
    return Dataset.from_list([{"id": i, "text": TEXTS[i % 6], "text_pair": TEXTS[(i + 1) % 6], "label": i % 2}
                              for i in range(n)])


def make_step(model, tok, kind_name="classification", dataset=None, smoothing=0.0):
    kind = get_kind(kind_name)
    dataset = dataset if dataset is not None else pair_data()
    enc = kind.encode(dataset, tok, TrainConfig(max_seq_len=32))
    batch = kind.collate(enc.features, tok.pad_token_id)

    def forward(b):
        return kind.logits(model(**kind.model_inputs(b, "cpu")))

    def task_loss(logits, b):
        return kind.loss(logits, b, smoothing)

    logits = forward(batch)
    loss = task_loss(logits, batch)
    return Step(model=model, batch=batch, logits=logits, loss=loss, kind=kind, forward=forward, task_loss=task_loss,
                backward=lambda x: x.backward()), enc


def grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


# ---------------------------------------------------------------------------------------------------- registry
def test_registry_has_every_technique_the_issue_names():
    assert {"fgm", "pgd", "ema", "rdrop", "llrd", "distill", "choice_smoothing", "swap_pairs", "lora"} <= set(
        all_techniques())


@pytest.mark.parametrize("spec, message", [
    ({"nope": {}}, "unknown technique"),
    ({"fgm": {"eps": 1}}, "unknown option"),
    ({"choice_smoothing": {}}, "applies to"),
    ({"fgm": {}, "pgd": {}}, "pick one"),
    ({"ema": {"decay": 2.0}}, "decay"),
])
def test_bad_technique_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_techniques(spec, "classification")


# ------------------------------------------------------------------------------------------------- adversarial
@pytest.mark.parametrize("name, options", [("fgm", {"epsilon": 0.5}), ("pgd", {"epsilon": 0.5, "alpha": 0.2, "steps": 3})])
def test_adversarial_step_adds_a_gradient_and_restores_the_embedding_exactly(tiny_folder, name, options):
    model, tok = classifier(tiny_folder)
    step, _ = make_step(model, tok)
    step.loss.backward()
    clean = grads(model)
    emb_before = input_embedding(model).detach().clone()
    (technique,) = build_techniques({name: options}, "classification")
    technique.after_backward(step)
    assert torch.equal(input_embedding(model), emb_before), "embedding not restored bit for bit"
    after = grads(model)
    changed = [n for n in clean if not torch.allclose(after[n], clean[n])]
    assert changed, "adversarial pass left the gradients unchanged"


def test_fgm_gradient_is_clean_plus_gradient_at_the_perturbed_point(tiny_folder):
    model, tok = classifier(tiny_folder)
    twin = copy.deepcopy(model)
    step, _ = make_step(model, tok)
    step.loss.backward()
    g = input_embedding(model).grad.clone()
    clean = grads(model)
    build_techniques({"fgm": {"epsilon": 0.7}}, "classification")[0].after_backward(step)
    with torch.no_grad():  # by hand: move the twin's embedding 0.7 along g/|g| and take its gradient there
        input_embedding(twin).add_(0.7 * g / g.norm())
    twin_step, _ = make_step(twin, tok)
    twin_step.loss.backward()
    for n, p in twin.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads(model)[n], clean[n] + p.grad, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------------------- EMA
def test_ema_follows_the_formula_and_swaps_weights_only_inside_eval(tiny_folder):
    model, _ = classifier(tiny_folder)
    (ema,) = build_techniques({"ema": {"decay": 0.5}}, "classification")
    name, param = next((n, p) for n, p in model.named_parameters() if n.endswith("classifier.weight"))
    w0 = param.detach().clone()
    ema.after_optimizer_step(model)  # starts from the current weights
    with torch.no_grad():
        param.add_(1.0)
    ema.after_optimizer_step(model)
    expected = 0.5 * w0 + 0.5 * (w0 + 1.0)
    torch.testing.assert_close(ema.shadow[name], expected)
    raw = param.detach().clone()
    with ema.eval_weights(model):
        torch.testing.assert_close(param.detach(), expected)
    assert torch.equal(param.detach(), raw)
    restored = build_techniques({"ema": {}}, "classification")[0]
    restored.load_state_dict(ema.state_dict())
    assert torch.equal(restored.shadow[name], ema.shadow[name])


# ------------------------------------------------------------------------------------------------------ R-Drop
def test_rdrop_adds_nothing_without_dropout_and_a_positive_kl_with_it(tiny_folder):
    (rdrop,) = build_techniques({"rdrop": {"alpha": 4.0}}, "classification")
    model, tok = classifier(tiny_folder, dropout=0.0)
    step, _ = make_step(model, tok)
    assert abs(float(rdrop.extra_loss(step).detach())) < 1e-6
    model, tok = classifier(tiny_folder, dropout=0.3)
    torch.manual_seed(0)
    step, _ = make_step(model, tok)
    extra = rdrop.extra_loss(step)
    assert step.extras["rdrop_kl"] > 0
    assert extra.requires_grad


# --------------------------------------------------------------------------------------------------------- LLRD
def test_layerwise_lr_decay_scales_each_layer(tiny_folder):
    from mengzi.engine.optim import build_optimizer
    from mengzi.finetune.config import FinetuneConfig
    from mengzi.finetune.trainer import parameter_groups

    model, _ = classifier(tiny_folder)
    techniques = build_techniques({"llrd": {"decay": 0.5}}, "classification")
    cfg = FinetuneConfig(train=TrainConfig(lr=1.0))
    optimizer = build_optimizer(parameter_groups(model, cfg, techniques), lr=1.0)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["classifier.weight"])] == 1.0
    assert lr_of[id(named["bert.encoder.layer.1.output.dense.weight"])] == 0.5  # top layer of 2
    assert lr_of[id(named["bert.encoder.layer.0.output.dense.weight"])] == 0.25
    assert lr_of[id(named["bert.embeddings.word_embeddings.weight"])] == 0.125
    assert {g["weight_decay"] for g in optimizer.param_groups if any(p.ndim == 1 for p in g["params"])} == {0.0}


# ---------------------------------------------------------------------------------------------- choice smoothing
def test_choice_smoothing_spreads_only_over_real_choices(tiny_folder):
    kind = get_kind("multiple_choice")
    logits = torch.tensor([[2.0, 0.0, -1.0, 5.0]])  # the 4th choice is padding
    batch = {"choice_mask": torch.tensor([[True, True, True, False]]), "labels": torch.tensor([0])}
    logp = torch.log_softmax(torch.tensor([[2.0, 0.0, -1.0]]), -1)[0]
    expected = -(0.9 * logp[0] + 0.05 * logp[1] + 0.05 * logp[2])
    torch.testing.assert_close(kind.loss(logits, batch, smoothing=0.1), expected)
    torch.testing.assert_close(kind.loss(logits, batch, smoothing=0.0), -logp[0])
    (cs,) = build_techniques({"choice_smoothing": {"epsilon": 0.2}}, "multiple_choice")
    assert cs.smoothing() == 0.2


# ------------------------------------------------------------------------------------------------- swap pairs
def test_swap_pairs_adds_every_pair_in_the_other_order():
    (swap,) = build_techniques({"swap_pairs": {}}, "classification")
    data = pair_data(4)
    out = swap.prepare_train_data(data, "classification")
    assert len(out) == 8
    assert out[4]["text"] == data[0]["text_pair"] and out[4]["text_pair"] == data[0]["text"]
    assert out[4]["label"] == data[0]["label"]


# -------------------------------------------------------------------------------------------------- distillation
def test_distillation_attaches_teacher_logits_and_matches_the_formula(tiny_folder):
    model, tok = classifier(tiny_folder)
    (distill,) = build_techniques({"distill": {"teacher": str(tiny_folder), "alpha": 1.0, "temperature": 2.0}},
                                  "classification")
    kind = get_kind("classification")
    enc = kind.encode(pair_data(), tok, TrainConfig(max_seq_len=32))
    from accelerate import Accelerator

    distill.prepare_train_features(enc, kind, Accelerator(cpu=True))
    assert all(len(f["teacher_logits"]) == 2 for f in enc.features)
    batch = kind.collate(enc.features, tok.pad_token_id)
    logits = kind.logits(model(**kind.model_inputs(batch, "cpu")))
    # the teacher is this very model: KL is 0, so with alpha 1 the total loss (task + extra) is 0
    step = Step(model=model, batch=batch, logits=logits, loss=kind.loss(logits, batch), kind=kind, forward=None,
                task_loss=None, backward=None)
    total = step.loss + distill.extra_loss(step)
    assert abs(float(total)) < 1e-5
    batch["teacher_logits"] = torch.tensor([[5.0, -5.0]] * len(enc.features))
    step.batch = batch
    t = torch.softmax(batch["teacher_logits"] / 2, -1)
    s = torch.log_softmax(logits / 2, -1)
    expected = 4 * (t * (t.log() - s)).sum(-1).mean()
    torch.testing.assert_close(step.loss + distill.extra_loss(step), expected, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------------------- LoRA
def test_lora_trains_adapters_and_head_and_merges_into_a_plain_model(tiny_folder):
    from transformers import BertForSequenceClassification

    model, tok = classifier(tiny_folder)
    (lora,) = build_techniques({"lora": {"r": 4}}, "classification")
    wrapped = lora.prepare_model(model, "classification")
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n or "pooler" in n for n in trainable)
    with torch.no_grad():  # make the adapters matter
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    wrapped.eval()
    step_inputs = get_kind("classification").collate(
        get_kind("classification").encode(pair_data(), tok, TrainConfig(max_seq_len=32)).features, tok.pad_token_id)
    inputs = {k: step_inputs[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        before = wrapped(**inputs).logits
        merged = lora.finalize_model(wrapped)
        after = merged(**inputs).logits
    assert type(merged) is BertForSequenceClassification
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(before, after, rtol=1e-4, atol=1e-5)
    assert any("lora_" in n for n, _ in wrapped.named_parameters()), "merging must not strip the training model"
