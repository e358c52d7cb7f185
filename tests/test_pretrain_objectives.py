"""Objectives: masking statistics, whole-word and n-gram units, parity of our losses with the stock transformers
heads, span corruption and causal LM wiring, distillation initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mengzi.pretrain.objectives import OBJECTIVES
from mengzi.pretrain.objectives.base import Step
from mengzi.pretrain.objectives.mlm import MaskedLM, MLMConfig, mask_positions


def test_every_objective_is_registered():
    assert {"mlm", "sop", "pos", "ner", "span_corruption", "causal_lm", "distill"} <= set(OBJECTIVES)


def _words(lengths):
    starts = []
    for n in lengths:
        starts += [1] + [0] * (n - 1)
    return np.array(starts)


def test_whole_word_masking_masks_whole_words_at_the_rate():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(1, 5, size=400))
    starts = _words(lengths)
    special = np.zeros(len(starts), bool)
    special[0] = special[-1] = True
    total = 0
    for seed in range(20):
        chosen = mask_positions(starts, special, np.random.default_rng(seed), 0.15)
        assert not chosen[special].any()
        pos = 0
        for n in lengths:  # every word is masked entirely or not at all (the first holds the special)
            word = chosen[pos : pos + n][~special[pos : pos + n]]
            assert word.all() or not word.any()
            pos += n
        total += chosen.sum()
    assert abs(total / (20 * (~special).sum()) - 0.15) < 0.01


def test_ngram_masking_masks_runs_of_words():
    starts = np.ones(2000, dtype=int)  # every token a word: n-grams are runs of tokens
    special = np.zeros(2000, bool)
    chosen = mask_positions(starts, special, np.random.default_rng(0), 0.15, ngram=3)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, chosen.astype(int), 0])))[::2]
    assert abs(chosen.mean() - 0.15) < 0.01 and runs.max() >= 3 and (runs >= 2).mean() > 0.3
    plain = mask_positions(starts, special, np.random.default_rng(0), 0.15, ngram=1)
    plain_runs = np.diff(np.flatnonzero(np.diff(np.r_[0, plain.astype(int), 0])))[::2]
    assert runs.mean() > plain_runs.mean() * 1.3


@pytest.fixture(scope="module")
def bert(data):
    from mengzi.models.load import init_model

    model, tok = init_model("mengzi-bert-tiny", task="pretraining", overrides={"hidden_dropout_prob": 0.0,
                                                                                "attention_probs_dropout_prob": 0.0})
    return model.eval(), tok


def test_mlm_80_10_10_and_masked_only_loss_matches_stock_bert(bert):
    model, tok = bert
    mlm = MaskedLM(MLMConfig(whole_word=False), tok, model.config, "bert")
    ids = torch.randint(1000, 20000, (64, 100))
    ids[:, 0], ids[:, -1] = tok.cls_token_id, tok.sep_token_id
    batch = {"input_ids": ids.clone(), "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "word_start": torch.ones_like(ids)}
    mlm.collate(batch, np.random.default_rng(0))
    labels = batch["mlm_labels"]
    masked = labels != -100
    assert abs(masked.float().mean().item() - 0.15 * 98 / 100) < 0.01
    assert (labels[masked] == ids[masked]).all() and not masked[:, [0, -1]].any()
    new = batch["input_ids"][masked]
    share_mask = (new == tok.mask_token_id).float().mean().item()
    share_kept = (new == ids[masked]).float().mean().item()
    assert abs(share_mask - 0.8) < 0.03 and abs(share_kept - 0.1) < 0.03
    with torch.no_grad():
        ours, metrics = mlm.loss(Step(model, None, None, batch, hidden_states=False))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).prediction_logits
    # the stock head scores every position; ours only the masked ones: the same loss
    stock = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert torch.allclose(ours, stock, atol=1e-5)
    assert 0 <= metrics["acc"] <= 1


def test_sop_uses_berts_own_seq_relationship_head(bert):
    model, tok = bert
    sop = OBJECTIVES["sop"](OBJECTIVES["sop"].Config(), tok, model.config, "bert")
    ids = torch.randint(1000, 20000, (8, 20))
    labels = torch.tensor([0, 1, 0, 1, -100, 0, 1, 1])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "sop_label": labels}
    with torch.no_grad():
        ours, _ = sop.loss(Step(model, None, None, batch, hidden_states=False))
        logits = model(input_ids=ids, attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).seq_relationship_logits
    assert torch.allclose(ours, torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100), atol=1e-6)


def test_objective_for_the_wrong_family_is_refused(bert):
    model, tok = bert
    with pytest.raises(ValueError, match="trains t5 models, not bert"):
        OBJECTIVES["span_corruption"](OBJECTIVES["span_corruption"].Config(), tok, model.config, "bert")


def test_span_corruption_and_causal_lm_losses_match_the_models_own(t5_tokenizer_dir):
    from mengzi.models.load import init_model

    t5, tok = init_model("mengzi-t5-tiny", tokenizer=str(t5_tokenizer_dir))
    obj = OBJECTIVES["span_corruption"](OBJECTIVES["span_corruption"].Config(), tok, t5.config, "t5")
    raw_len = obj.chunk_len(64)
    ids = torch.randint(5, 7000, (4, raw_len))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    obj.collate(batch, np.random.default_rng(0))
    assert batch["input_ids"].shape == (4, 64) and (batch["input_ids"][:, -1] == tok.eos_token_id).all()
    assert batch["labels"][0, 0].item() == tok.convert_tokens_to_ids("<extra_id_0>")
    t5.eval()
    with torch.no_grad():
        ours, _ = obj.loss(Step(t5, None, None, batch, hidden_states=False))
        stock = t5(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    assert torch.allclose(ours, stock, atol=1e-5)

    gpt, gtok = init_model("mengzi-gpt-neo-tiny", tokenizer=str(t5_tokenizer_dir))
    causal = OBJECTIVES["causal_lm"](OBJECTIVES["causal_lm"].Config(), gtok, gpt.config, "gpt-neo")
    ids = torch.randint(5, 7000, (3, 40))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    gpt.eval()
    with torch.no_grad():
        ours, _ = causal.loss(Step(gpt, None, None, batch, hidden_states=False))
        stock = gpt(input_ids=ids, labels=ids).loss
    assert torch.allclose(ours, stock, atol=1e-5)


def test_distillation_initialises_from_the_teacher_and_agrees_with_itself(tmp_path, bert):
    from mengzi.models.load import init_model, save_pretrained
    from mengzi.pretrain.objectives.distill import Distillation, DistillConfig

    teacher, tok = bert
    save_pretrained(teacher, tok, tmp_path / "teacher")
    student, _ = init_model("mengzi-bert-tiny", task="pretraining", seed=1, overrides={"num_hidden_layers": 1})
    distill = Distillation(DistillConfig(teacher=str(tmp_path / "teacher")), tok, student.config, "bert")
    assert distill.layer_map == [0, 2]
    distill.setup(student, fresh=True)
    for a, b in zip(student.bert.encoder.layer[0].parameters(), teacher.bert.encoder.layer[1].parameters()):
        assert torch.equal(a, b)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    # a student identical to its teacher: zero KL, zero hidden MSE, full agreement
    same = Distillation(DistillConfig(teacher=str(tmp_path / "teacher")), tok, teacher.config, "bert")
    mlm = MaskedLM(MLMConfig(whole_word=False), tok, teacher.config, "bert")
    ids = torch.randint(1000, 20000, (4, 30))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids),
             "word_start": torch.ones_like(ids)}
    mlm.collate(batch, np.random.default_rng(0))
    step = Step(teacher, None, {}, batch, hidden_states=True)
    with torch.no_grad():
        mlm.loss(step)
        loss, metrics = same.loss(step)
    assert loss.item() < 1e-6 and metrics["teacher_agreement"].item() == 1.0
