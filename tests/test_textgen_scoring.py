"""`mengzi.textgen.scoring`: the batched, padded scorers equal a hand-computed reference that runs each example
alone (no padding, plain forward pass, log_softmax picked by hand), for T5, GPT-Neo and BERT's cloze."""

from __future__ import annotations

import pytest
import torch

from mengzi.textgen.scoring import causal_ids, score_continuations, score_label_words

PROMPTS = ["“花呗怎么还款”和“借呗如何还钱”的意思", "这条新闻属于哪一类：国足三比零取胜，晋级世界杯决赛圈。答：",
           "他说", "今天北京的天气非常好，我们一起去公园散步吧，顺便买点水果回来。这句话的情感是"]
CANDIDATES = [["相同", "不同"], ["体育", "财经", "国际新闻", "股票"], ["好的", "不好"], ["积极", "消极", "中性"]]


def _reference_t5(model, tok, prompt, continuation, normalize):
    source = torch.tensor([tok(prompt)["input_ids"]])
    target = tok(continuation)["input_ids"]  # ends in </s>
    decoder_input = torch.tensor([[model.config.decoder_start_token_id, *target[:-1]]])
    logits = model(input_ids=source, decoder_input_ids=decoder_input).logits[0]
    lp = logits.log_softmax(-1)[torch.arange(len(target)), torch.tensor(target)]
    return float(lp.sum() / (len(target) if normalize == "mean" else 1))


def _reference_causal(model, tok, prompt, continuation, normalize):
    ids, n = causal_ids(tok, prompt, continuation)
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    lp = logits.log_softmax(-1)[torch.arange(len(ids) - n - 1, len(ids) - 1), torch.tensor(ids[-n:])]
    return float(lp.sum() / (n if normalize == "mean" else 1))


@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_t5_batched_equals_unbatched_reference(data, normalize):
    from mengzi.models.load import init_model

    model, tok = init_model("mengzi-t5-tiny", seed=1)
    got = score_continuations(model, tok, PROMPTS, CANDIDATES, batch_size=3, normalize=normalize)
    assert model.training  # the scorer restores the mode it found
    model.eval()
    with torch.no_grad():
        want = [[_reference_t5(model, tok, p, c, normalize) for c in cs] for p, cs in zip(PROMPTS, CANDIDATES)]
    assert [len(s) for s in got] == [len(c) for c in CANDIDATES]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)
    assert len({round(x, 4) for s in got for x in s}) > 5  # real, distinct scores, not a constant


@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_gpt_neo_batched_equals_unbatched_reference(data, normalize):
    from mengzi.models.load import init_model

    model, tok = init_model("mengzi-gpt-neo-tiny", seed=1)
    got = score_continuations(model, tok, PROMPTS, CANDIDATES, batch_size=5, normalize=normalize)
    model.eval()
    with torch.no_grad():
        want = [[_reference_causal(model, tok, p, c, normalize) for c in cs] for p, cs in zip(PROMPTS, CANDIDATES)]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)


def test_causal_split_keeps_prompt_tokens_and_scores_only_the_continuation(data):
    from mengzi.models.load import init_model

    _, tok = init_model("mengzi-gpt-neo-tiny", seed=1)
    prompt = PROMPTS[0]
    ids, n = causal_ids(tok, prompt, "相同")
    context = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[:-n] == context  # the prompt is tokenised as it would be alone
    assert tok.decode(ids[-n:]).replace("▁", "").strip() == "相同"


def _reference_cloze(model, tok, text, word, normalize):
    left, right = text.split("[MASK]")
    word_ids = tok(word, add_special_tokens=False)["input_ids"]
    masked = left + "[MASK]" * len(word_ids) + right
    ids = tok(masked)["input_ids"]
    first = ids.index(tok.mask_token_id)
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    lp = logits.log_softmax(-1)[torch.arange(first, first + len(word_ids)), torch.tensor(word_ids)]
    return float(lp.sum() / (len(word_ids) if normalize == "mean" else 1))


@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_bert_cloze_batched_equals_unbatched_reference(data, normalize):
    from mengzi.models.load import init_model

    model, tok = init_model("mengzi-bert-tiny", task="masked-lm", seed=1)
    texts = ["“花呗怎么还款”和“借呗如何还钱”的意思[MASK]。", "这是一条[MASK]新闻：国足三比零取胜，晋级世界杯决赛圈。",
             "[MASK]：今天天气很好"]
    words = ["体育", "国际新闻", "好", "不相同"]  # three word lengths: three widths of the slot
    got = score_label_words(model, tok, texts, words, batch_size=2, normalize=normalize)
    model.eval()
    with torch.no_grad():
        want = [[_reference_cloze(model, tok, t, w, normalize) for w in words] for t in texts]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-4)


def test_bad_input_is_refused(data):
    from mengzi.models.load import init_model

    model, tok = init_model("mengzi-bert-tiny", task="masked-lm", seed=1)
    with pytest.raises(ValueError, match="exactly once"):
        score_label_words(model, tok, ["no slot here"], ["好"])
    with pytest.raises(ValueError, match="normalize"):
        score_label_words(model, tok, ["[MASK]"], ["好"], normalize="max")
    with pytest.raises(ValueError, match="continuations"):
        score_continuations(model, tok, ["a", "b"], [["x"]])


def test_t5_keep_start_scores_the_source_as_fine_tuning_cut_it(data):
    """keep_start: an over-long prompt loses its end (as text-to-text training truncates sources), not its start."""
    from mengzi.models.load import init_model

    model, tok = init_model("mengzi-t5-tiny", seed=1)
    model.eval()  # the reference below runs the model directly: no dropout
    prompt = "孟子预训练模型由澜舟科技发布，在中文理解评测上取得了很好的成绩。" * 3
    cut = tok(prompt, truncation=True, max_length=12)["input_ids"]  # what encode_pairs feeds the encoder
    kept = score_continuations(model, tok, [prompt], [["相同", "不同"]], max_length=12, keep_start=True)[0]
    dropped = score_continuations(model, tok, [prompt], [["相同", "不同"]], max_length=12)[0]
    source = tok.decode(cut[:-1])  # the same 11 pieces + </s> again when encoded
    assert tok(source)["input_ids"] == cut
    assert kept == pytest.approx([_reference_t5(model, tok, source, w, "sum") for w in ("相同", "不同")], abs=1e-4)
    assert dropped != pytest.approx(kept, abs=1e-4)
    with pytest.raises(ValueError, match="T5"):
        gpt, gtok = init_model("mengzi-gpt-neo-tiny", seed=1)
        score_continuations(gpt, gtok, ["提示"], [["词"]], keep_start=True)
