"""Log-probabilities of candidate texts: the scorer behind prompt-based (zero-/few-shot) classification and the
constrained decoding of text-to-text CLUE.

    score_continuations(t5_or_gpt, tokenizer, ["“我饿了”的意思是"], [["相同", "不同"]])  # -> [[-3.2, -4.1]]
    score_label_words(bert, tokenizer, ["这是一条[MASK]新闻：..."], ["体育", "财经"])   # -> [[-1.7, -6.0]]

- T5 (encoder-decoder): the encoder reads the prompt, the decoder is scored on the continuation tokenised as a
  training target (`tokenizer(continuation)`, so it ends in </s>, as text-to-text fine-tuning sees it). Each prompt
  is encoded once and its encoder states are shared by all of its candidates.
- GPT-Neo (causal): the model reads prompt + continuation and only the continuation tokens are scored. The two are
  tokenised together and split where the prompt's own tokens end (SentencePiece would otherwise put a word-start
  "▁" before the continuation that running text never has there); when a token straddles the boundary the
  continuation is tokenised on its own. Batches are right-padded with explicit position ids 0..n-1, so a padded
  row sees exactly the positions it would see alone.
- BERT (masked LM, PET-style cloze): each text holds one slot (`slot`, default "[MASK]") where the label word goes;
  for a word of n tokens the slot becomes n [MASK] tokens and the word scores the sum (or mean) of its tokens'
  log-probabilities at those positions, predicted together in one pass (PET's scoring of multi-token verbalizers
  without autoregressive refilling).

`normalize="sum"` is the text's log-probability; "mean" divides by its token count (a length-fair score when the
candidates differ in length). Over-long prompts lose their *start* (few-shot demonstrations go first, the query
last), keeping `max_length` tokens in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from typing import Literal

import torch

Normalize = Literal["sum", "mean"]


@contextmanager
def _inference(model):
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _reduce(logprobs: torch.Tensor, normalize: Normalize) -> float:
    if normalize not in ("sum", "mean"):
        raise ValueError(f"normalize must be 'sum' or 'mean', got {normalize!r}")
    total = float(logprobs.sum())
    return total / max(len(logprobs), 1) if normalize == "mean" else total


def _check(prompts: Sequence[str], continuations: Sequence[Sequence[str]]) -> None:
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} lists of continuations")
    for i, candidates in enumerate(continuations):
        if not candidates:
            raise ValueError(f"prompt {i} has no candidate continuations")


def _ids(tokenizer, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def is_encoder_decoder(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def causal_ids(tokenizer, prompt: str, continuation: str, max_length: int = 512) -> tuple[list[int], int]:
    """(ids of prompt + continuation, how many of them are the continuation) as a causal LM is scored on them."""
    context = _ids(tokenizer, prompt, special=False)
    whole = _ids(tokenizer, prompt + continuation, special=False)
    if len(whole) > len(context) and whole[: len(context)] == context:
        tail = whole[len(context):]
    else:  # a token straddles the boundary: keep the prompt's own tokens and tokenise the continuation apart
        tail = _ids(tokenizer, continuation, special=False)
    if not tail:
        raise ValueError(f"continuation {continuation!r} has no tokens")
    if not context:  # nothing to condition the first token on: start from BOS (GPT-Neo: <s> or </s>)
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        context = [start]
    keep = max(max_length - len(tail), 1)
    return context[-keep:] + tail, len(tail)


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def _mask(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)


def _seq2seq_source(tokenizer, prompt: str, max_length: int, keep_start: bool) -> list[int]:
    if keep_start:  # exactly as fine-tuning encodes its sources (the end cut, </s> kept)
        return tokenizer(prompt, truncation=True, max_length=max_length)["input_ids"]
    return _ids(tokenizer, prompt, special=True)[-max_length:]


def _score_seq2seq(model, tokenizer, prompts, continuations, batch_size, normalize, max_length, keep_start=False):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device
    scores: list[list[float]] = []
    encoder = model.get_encoder()
    for start in range(0, len(prompts), batch_size):
        chunk = range(start, min(start + batch_size, len(prompts)))
        sources = [_seq2seq_source(tokenizer, prompts[i], max_length, keep_start) for i in chunk]
        ids, mask = _pad(sources, pad).to(device), _mask(sources).to(device)
        states = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        pairs = [(row, _ids(tokenizer, c, special=True)) for row, i in enumerate(chunk) for c in continuations[i]]
        flat: list[float] = []
        for p in range(0, len(pairs), batch_size):  # every candidate of the chunk, batch_size at a time
            part = pairs[p : p + batch_size]
            rows = torch.tensor([row for row, _ in part], device=device)
            labels = _pad([t for _, t in part], -100).to(device)
            out = model(encoder_outputs=(states[rows],), attention_mask=mask[rows], labels=labels)
            logprobs = out.logits.float().log_softmax(-1)
            for k, (_, target) in enumerate(part):
                token_lp = logprobs[k, torch.arange(len(target)), torch.tensor(target, device=device)]
                flat.append(_reduce(token_lp, normalize))
        for i in chunk:
            n = len(continuations[i])
            scores.append(flat[:n])
            flat = flat[n:]
    return scores


def _score_causal(model, tokenizer, prompts, continuations, batch_size, normalize, max_length):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device
    pairs = [(i, *causal_ids(tokenizer, prompts[i], c, max_length)) for i in range(len(prompts))
             for c in continuations[i]]
    flat: list[float] = []
    for p in range(0, len(pairs), batch_size):
        part = pairs[p : p + batch_size]
        rows = [ids for _, ids, _ in part]
        ids, mask = _pad(rows, pad).to(device), _mask(rows).to(device)
        positions = torch.arange(ids.shape[1], device=device).expand_as(ids)  # right padding: 0..n-1 per row
        logprobs = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits.float().log_softmax(-1)
        for k, (_, row, n) in enumerate(part):
            length = len(row)
            targets = torch.tensor(row[length - n :], device=device)
            token_lp = logprobs[k, torch.arange(length - n - 1, length - 1, device=device), targets]
            flat.append(_reduce(token_lp, normalize))
    scores, at = [], 0
    for candidates in continuations:
        scores.append(flat[at : at + len(candidates)])
        at += len(candidates)
    return scores


def score_continuations(model, tokenizer, prompts: Sequence[str], continuations: Sequence[Sequence[str]],
                        batch_size: int = 16, normalize: Normalize = "sum", max_length: int = 512,
                        keep_start: bool = False) -> list[list[float]]:
    """scores[i][j] = log p(continuations[i][j] | prompts[i]) under a T5 or GPT-Neo (see the module doc).
    `keep_start` (T5 only): cut an over-long prompt's end instead of its start, as text-to-text fine-tuning cuts
    its sources, so a fine-tuned model is scored on the inputs it was trained on."""
    _check(prompts, continuations)
    if normalize not in ("sum", "mean"):
        raise ValueError(f"normalize must be 'sum' or 'mean', got {normalize!r}")
    args = (model, tokenizer, list(prompts), [list(c) for c in continuations], batch_size, normalize, max_length)
    with _inference(model):
        if is_encoder_decoder(model):
            return _score_seq2seq(*args, keep_start=keep_start)
        if keep_start:
            raise ValueError("keep_start applies to T5 (seq2seq) scoring only")
        return _score_causal(*args)


def cloze_ids(tokenizer, text: str, n_masks: int, slot: str = "[MASK]", max_length: int = 512) -> tuple[list[int], int]:
    """([CLS] left [MASK]*n right [SEP], index of the first [MASK]) for a text holding `slot` once; the left part
    loses its start and the right part its end when the whole is over `max_length`."""
    if text.count(slot) != 1:
        raise ValueError(f"a cloze text must hold the slot {slot!r} exactly once: {text[:80]!r}")
    left_text, right_text = text.split(slot)
    left, right = _ids(tokenizer, left_text, special=False), _ids(tokenizer, right_text, special=False)
    room = max_length - 2 - n_masks
    if room < 0:
        raise ValueError(f"{n_masks} mask tokens do not fit in max_length={max_length}")
    while len(left) + len(right) > room:  # trim the longer side
        if len(left) >= len(right):
            left = left[1:]
        else:
            right = right[:-1]
    ids = [tokenizer.cls_token_id, *left, *[tokenizer.mask_token_id] * n_masks, *right, tokenizer.sep_token_id]
    return ids, 1 + len(left)


def score_label_words(model, tokenizer, texts_with_mask_slots: Sequence[str], label_words: Sequence[str],
                      batch_size: int = 16, normalize: Normalize = "sum", slot: str = "[MASK]",
                      max_length: int = 512) -> list[list[float]]:
    """scores[i][j] = log-probability of label_words[j] filling the slot of texts_with_mask_slots[i] (a BERT with
    a masked-LM head; see the module doc)."""
    if not label_words:
        raise ValueError("no label words")
    if normalize not in ("sum", "mean"):
        raise ValueError(f"normalize must be 'sum' or 'mean', got {normalize!r}")
    word_ids = [_ids(tokenizer, w, special=False) for w in label_words]
    for word, ids in zip(label_words, word_ids):
        if not ids or tokenizer.unk_token_id in ids:
            raise ValueError(f"label word {word!r} tokenises to {tokenizer.convert_ids_to_tokens(ids)}: "
                             "pick a word the vocabulary covers")
    by_length: dict[int, list[int]] = {}
    for j, ids in enumerate(word_ids):
        by_length.setdefault(len(ids), []).append(j)
    texts = list(texts_with_mask_slots)
    scores = [[0.0] * len(label_words) for _ in texts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = model.device
    with _inference(model):
        for n, words in by_length.items():  # one pass per word length: the slot widens to n [MASK]s
            for start in range(0, len(texts), batch_size):
                built = [cloze_ids(tokenizer, t, n, slot, max_length) for t in texts[start : start + batch_size]]
                rows = [ids for ids, _ in built]
                ids, mask = _pad(rows, pad).to(device), _mask(rows).to(device)
                logprobs = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
                for k, (_, first) in enumerate(built):
                    at = logprobs[k, first : first + n]  # (n, vocab)
                    for j in words:
                        token_lp = at[torch.arange(n), torch.tensor(word_ids[j], device=device)]
                        scores[start + k][j] = _reduce(token_lp, normalize)
    return scores


__all__ = ["score_continuations", "score_label_words", "causal_ids", "cloze_ids",
           "is_encoder_decoder"]
