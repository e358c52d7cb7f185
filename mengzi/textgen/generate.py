"""Generation and perplexity with PyTorch models (`mengzi generate` on a checkpoint comes here, through
`mengzi.export.generate`, which also serves export folders).

    texts = generate(model, tokenizer, ["关键词：..."], GenerationOptions(num_beams=4))
    ppl = perplexity(model, tokenizer, held_out_paragraphs, block_size=128)

T5 encodes the prompt (right padded) and decodes from its start token; GPT-Neo continues the prompt, left padded
(so every row's last prompt token is in the last column) and only the new tokens are decoded. Decoding is
transformers' `generate` with exactly the options given (its generation config's own defaults, such as top_k=50
for sampling, do not leak in).
"""

from __future__ import annotations

import math
from pathlib import Path

from .config import GenerationOptions


def hf_kwargs(options: GenerationOptions) -> dict:
    """transformers `generate` keywords for `options`, every decoding knob explicit."""
    kw = dict(max_new_tokens=options.max_new_tokens, min_new_tokens=options.min_new_tokens or None,
              num_beams=options.num_beams, do_sample=options.do_sample,
              repetition_penalty=options.repetition_penalty, length_penalty=options.length_penalty)
    if options.do_sample:
        kw.update(top_k=options.top_k, top_p=options.top_p, temperature=options.temperature)
    else:  # greedy / beam: the sampling warpers must not apply, whatever the model's generation config says
        kw.update(top_k=None, top_p=None, temperature=None)
    return kw


def generate(model, tokenizer, texts: list[str], options: GenerationOptions | None = None,
             batch_size: int = 16, max_source_len: int | None = None) -> list[str]:
    """One generated string per prompt (special tokens dropped), prompts cut to `max_source_len` tokens if given.
    Deterministic for a given `options.seed`; the caller's torch RNG state is left as it was."""
    import torch

    options = options or GenerationOptions()
    causal = not model.config.is_encoder_decoder
    side = tokenizer.padding_side
    tokenizer.padding_side = "left" if causal else "right"
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    out: list[str] = []
    truncation = dict(truncation=True, max_length=max_source_len) if max_source_len else {}
    try:
        device = next(model.parameters()).device
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=not causal, **truncation)
            if causal and enc["input_ids"].shape[1] == 0:  # every prompt empty: start from BOS
                enc = {"input_ids": torch.full((len(chunk), 1), model.config.bos_token_id),
                       "attention_mask": torch.ones(len(chunk), 1, dtype=torch.long)}
            enc = {k: v.to(device) for k, v in enc.items()}
            # seeded per batch (by its offset): a batch's draws do not depend on how many the batches before it took
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(options.seed + start)
                ids = model.generate(**enc, pad_token_id=pad, **hf_kwargs(options))
            new = ids[:, enc["input_ids"].shape[1]:] if causal else ids
            out.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return [text.strip() for text in out]


def perplexity(model, tokenizer, texts: list[str], block_size: int = 128, batch_size: int = 16) -> float:
    """exp(token-weighted mean negative log-likelihood) of a causal LM over `texts`, cut into blocks as training
    cuts them (`data.token_blocks`): every token after the first of its block is predicted once."""
    from .data import token_blocks

    nll, tokens = _nll(model, token_blocks(tokenizer, texts, block_size), tokenizer.pad_token_id or 0, batch_size)
    return math.exp(nll / max(tokens, 1))


def _nll(model, blocks: list[list[int]], pad: int, batch_size: int) -> tuple[float, int]:
    """(summed NLL, predicted tokens) over `blocks`."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    try:
        for start in range(0, len(blocks), batch_size):
            chunk = blocks[start : start + batch_size]
            width = max(len(b) for b in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, block in enumerate(chunk):
                ids[row, : len(block)], mask[row, : len(block)] = torch.tensor(block), 1
            ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                           ignore_index=-100, reduction="sum"))
            count += int((labels != -100).sum())
    finally:
        model.train(was_training)
    return total, count


# ------------------------------------------------------------------------------------ checkpoints that generate
def checkpoint_family(name: str) -> tuple[Path, str]:
    """(folder, family) of a checkpoint folder, a run folder (its model/), a preset with a checkpoint or a hub id."""
    from transformers import AutoConfig

    from ..models.load import family_of, model_folder

    path = Path(name)
    if (path / "model" / "config.json").is_file():
        path = path / "model"
    folder = path if path.is_dir() else model_folder(name, None)
    return folder, family_of(AutoConfig.from_pretrained(folder))


def load_generator(name: str, task: str | None = None):
    """(model, tokenizer) of `checkpoint_family`'s folder, with the generative head of its family."""
    from ..models.load import load

    folder, family = checkpoint_family(name)
    if family not in ("t5", "gpt-neo"):
        raise ValueError(f"{name}: a {family} model does not generate text (T5 or GPT-Neo)")
    return load(folder, task=task or ("seq2seq-lm" if family == "t5" else "causal-lm"))
