"""Torch-free text generation over the graphs `seq2seq.export_generative` writes (numpy + onnxruntime + tokenizers).

Decoding follows transformers 5 `generate` step for step, so greedy and beam search give the same ids:

* greedy / sampling (`_sample`): logits processors, argmax or a draw, finished rows continue with the pad token and
  the loop stops when every row has produced EOS or `max_new_tokens` is reached;
* beam search (`_beam_search`, the vectorised version): 2*num_beams candidates a step, length-normalised finished
  hypotheses (`score / generated_len ** length_penalty`), the same early-stop heuristic, `early_stopping` False
  (transformers' default), True or "never"; the best hypothesis is returned.

Logits processors, in transformers' order: repetition penalty (positive scores divided, negative multiplied, over
the tokens already in the sequence), then for sampling temperature, top-k, top-p. Beam search applies them to
log-probabilities, as transformers does. One deliberate difference: the penalty ignores GPT-Neo's left-padding
columns (transformers also penalises the pad id there), so a batched row behaves as the same prompt alone.
Sampling draws from numpy's generator seeded with `seed`: reproducible, not the same draws as torch.

Encoder inputs are right padded; GPT-Neo prompts are left padded with position ids `cumsum(mask) - 1`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .session import ExportError, make_session

NEG = np.float32(-1.0e9)  # transformers' "never pick" offset in beam search


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values per row, largest first (ties: lower index first). Partition first: a full
    sort of beams * vocab scores every step would dominate beam search's time."""
    out = np.empty((len(x), k), dtype=np.int64)
    for r, row in enumerate(x):
        if k >= row.size:
            out[r] = np.argsort(-row, kind="stable")[:k]
            continue
        kth = np.partition(row, row.size - k)[row.size - k]
        idx = np.flatnonzero(row >= kth)  # ascending, so the stable sort keeps lower indices first among ties
        out[r] = idx[np.argsort(-row[idx], kind="stable")[:k]]
    return out


def pad_prompts(prompts, pad, side):
    """Prompts as (ids, mask) int64 arrays, padded on `side` ("left" for GPT, "right" for T5)."""
    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, p in enumerate(prompts):
        cols = slice(width - len(p), width) if side == "left" else slice(0, len(p))
        ids[row, cols], mask[row, cols] = p, 1
    return ids, mask


class _Runner:
    """Runs one exported model: `start` encodes/prefills a batch and returns the first next-token logits, `step`
    feeds the newest token (cached) or the whole sequence (`use_cache=False`) and returns the next logits, `reorder`
    follows beam search's choice of parents. Sequences are (rows, length) int64; `valid` marks non-pad columns."""

    def __init__(self, sessions: dict, gen: dict, use_cache: bool, pad: int):
        self.s, self.gen, self.use_cache, self.pad = sessions, gen, use_cache, pad
        self.past: dict[str, np.ndarray] = {}

    def _run(self, graph: str, values: dict) -> dict:
        spec = self.gen["graphs"][graph]
        outs = self.s[graph].run(None, {name: values[name] for name in spec["inputs"]})
        return dict(zip(spec["outputs"], outs))

    def _keep(self, outs: dict, which: str) -> None:
        self.past |= {past: outs[present] for present, past in self.gen["cache"][which]}

    def reorder(self, rows: np.ndarray) -> None:
        # cross-attention entries are identical for all beams of an input, so only the self cache moves
        for _, past in self.gen["cache"]["self"]:
            if past in self.past:
                self.past[past] = self.past[past][rows]


class _Seq2Seq(_Runner):
    def start(self, prompts, expand: int):
        ids, mask = pad_prompts(prompts, self.pad, "right")
        encoded = self._run("encoder", {"input_ids": ids, "attention_mask": mask})["encoder_hidden_states"]
        # encode once per input, then one copy per beam (as transformers expands the encoder outputs)
        self.encoded, self.mask = np.repeat(encoded, expand, axis=0), np.repeat(mask, expand, axis=0)
        seqs = np.full((len(self.mask), 1), self.gen["decoder_start_token_id"], dtype=np.int64)
        outs = self._run("decoder", self._decoder_values(seqs))
        if self.use_cache:
            self._keep(outs, "self")
            self._keep(outs, "cross")
        return seqs, np.ones_like(seqs, dtype=bool), outs["logits"][:, -1]

    def _decoder_values(self, seqs):
        return {"decoder_input_ids": seqs, "encoder_hidden_states": self.encoded, "encoder_attention_mask": self.mask}

    def step(self, seqs):
        if not self.use_cache:
            return self._run("decoder", self._decoder_values(seqs))["logits"][:, -1]
        values = {"decoder_input_ids": seqs[:, -1:], "encoder_attention_mask": self.mask, **self.past}
        outs = self._run("decoder_with_past", values)
        self._keep(outs, "self")
        return outs["logits"][:, -1]


class _CausalLM(_Runner):
    def start(self, prompts, expand: int):
        ids, mask = pad_prompts(prompts, self.pad, "left")
        ids, mask = np.repeat(ids, expand, axis=0), np.repeat(mask, expand, axis=0)
        self.mask = mask
        self.positions = np.where(mask == 1, mask.cumsum(-1) - 1, 0)
        outs = self._run("decoder", {"input_ids": ids, "attention_mask": mask, "position_ids": self.positions})
        if self.use_cache:
            self._keep(outs, "self")
        # left padding: the last column is every row's last real token
        return ids, mask.astype(bool), outs["logits"][:, -1]

    def step(self, seqs):
        self.mask = np.concatenate([self.mask, np.ones_like(self.mask[:, :1])], axis=1)
        self.positions = np.concatenate([self.positions, self.positions[:, -1:] + 1], axis=1)
        if not self.use_cache:
            values = {"input_ids": seqs, "attention_mask": self.mask, "position_ids": self.positions}
            return self._run("decoder", values)["logits"][:, -1]
        values = {"input_ids": seqs[:, -1:], "attention_mask": self.mask, "position_ids": self.positions[:, -1:],
                  **self.past}
        outs = self._run("decoder_with_past", values)
        self._keep(outs, "self")
        return outs["logits"][:, -1]

    def reorder(self, rows):
        super().reorder(rows)
        self.mask, self.positions = self.mask[rows], self.positions[rows]


class OnnxGenerator:
    """Generation over an export folder: `folder` holds the graphs named in `manifest["files"]`, `manifest` carries
    `manifest["generation"]` (see `seq2seq.py`), `tokenizer` is a `tokenizers.Tokenizer` from `folder/tokenizer.json`."""

    def __init__(self, folder, manifest: dict, tokenizer, providers=None, threads: int = 0):
        self.folder, self.manifest, self.tokenizer = Path(folder), manifest, tokenizer
        if "generation" not in manifest:
            raise ExportError(f"{folder}: the manifest has no 'generation' section; not a generative export")
        self.gen = manifest["generation"]
        self.sessions = {name: make_session(self.folder / manifest["files"][name], providers, threads)
                         for name in self.gen["graphs"]}
        eos = self.gen["eos_token_id"]
        self.eos = [eos] if isinstance(eos, int) else list(eos or [])
        self.pad = self.gen["pad_token_id"] if self.gen["pad_token_id"] is not None else self.eos[0]

    # ------------------------------------------------------------------------------------------------ public API

    def generate(self, texts: list[str], **kw) -> list[str]:
        """Encode (T5: with its `</s>`; GPT-Neo: as transformers' tokenizer call, no BOS), generate, decode without
        special tokens."""
        prompts = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        return [self.tokenizer.decode(ids, skip_special_tokens=True) for ids in self.generate_ids(prompts, **kw)]

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int = 64, num_beams: int = 1,
                     do_sample: bool = False, top_k: int = 0, top_p: float = 1.0, temperature: float = 1.0,
                     repetition_penalty: float = 1.0, length_penalty: float = 1.0, seed: int | None = None,
                     use_cache: bool = True, early_stopping: bool | str = False) -> list[list[int]]:
        """Generated ids per prompt (prompt and decoder start excluded, cut before the first EOS)."""
        if not prompts:
            return []
        if max_new_tokens < 1 or num_beams < 1 or temperature <= 0 or not 0 < top_p <= 1 or repetition_penalty <= 0:
            raise ValueError("need max_new_tokens >= 1, num_beams >= 1, temperature > 0, 0 < top_p <= 1, "
                             "repetition_penalty > 0")
        # an empty prompt: GPT-Neo starts from BOS, as transformers does when given no input ids; T5 encodes what its
        # tokenizer makes of "" (just </s>)
        start = self.gen["bos_token_id"] if self.gen["kind"] == "causal-lm" else self.eos[0]
        prompts = [list(p) if len(p) else [start] for p in prompts]
        if self.gen["kind"] == "causal-lm":
            limit = self.gen.get("max_position_embeddings")
            longest = max(len(p) for p in prompts) + max_new_tokens
            if limit and longest > limit:
                raise ValueError(f"prompt + max_new_tokens = {longest} exceeds the model's {limit} positions")
        runner = (_Seq2Seq if self.gen["kind"] == "seq2seq" else _CausalLM)(self.sessions, self.gen, use_cache, self.pad)
        options = dict(do_sample=do_sample, top_k=top_k, top_p=top_p, temperature=temperature,
                       repetition_penalty=repetition_penalty, rng=np.random.default_rng(seed))
        if num_beams == 1:
            out = self._greedy_or_sample(runner, prompts, max_new_tokens, **options)
        else:
            out = self._beam(runner, prompts, max_new_tokens, num_beams, length_penalty, early_stopping, **options)
        return [self._cut(row) for row in out]

    # ------------------------------------------------------------------------------------------------ internals

    def _cut(self, row) -> list[int]:
        row = [int(t) for t in row]
        ends = [i for i, t in enumerate(row) if t in self.eos]
        return row[: ends[0]] if ends else row

    def _process(self, scores, seqs, valid, *, do_sample, top_k, top_p, temperature, repetition_penalty, rng):
        """transformers' logits processors on float32 `scores` (rows, vocab); `seqs`/`valid` the tokens so far."""
        scores = scores.astype(np.float32, copy=True)
        if repetition_penalty != 1.0:
            rows = np.repeat(np.arange(len(seqs)), seqs.shape[1])[valid.ravel()]
            cols = seqs.ravel()[valid.ravel()]
            seen = scores[rows, cols]
            scores[rows, cols] = np.where(seen < 0, seen * repetition_penalty, seen / repetition_penalty)
        if not do_sample:
            return scores
        if temperature != 1.0:
            scores = scores / np.float32(temperature)
        if top_k > 0:
            kth = -np.partition(-scores, min(top_k, scores.shape[-1]) - 1, axis=-1)[:, min(top_k, scores.shape[-1]) - 1]
            scores = np.where(scores < kth[:, None], -np.inf, scores).astype(np.float32)
        if top_p < 1.0:
            order = np.argsort(scores, axis=-1, kind="stable")  # ascending, as transformers' TopPLogitsWarper
            cumulative = np.cumsum(_softmax(np.take_along_axis(scores, order, axis=-1)), axis=-1)
            drop_sorted = cumulative <= (1 - top_p)
            drop_sorted[:, -1] = False  # keep at least one token
            drop = np.zeros_like(drop_sorted)
            np.put_along_axis(drop, order, drop_sorted, axis=-1)
            scores = np.where(drop, -np.inf, scores).astype(np.float32)
        return scores

    def _greedy_or_sample(self, runner, prompts, max_new_tokens, **opt):
        seqs, valid, logits = runner.start(prompts, 1)
        start = seqs.shape[1]
        unfinished = np.ones(len(seqs), dtype=bool)
        rng = opt["rng"]
        for step in range(max_new_tokens):
            scores = self._process(logits, seqs, valid, **opt)
            if opt["do_sample"]:
                probs = _softmax(scores.astype(np.float64))
                draws = rng.random(len(probs))[:, None]
                nxt = np.minimum((np.cumsum(probs, axis=-1) < draws).sum(-1), probs.shape[-1] - 1)
            else:
                nxt = scores.argmax(-1)
            nxt = np.where(unfinished, nxt, self.pad).astype(np.int64)
            seqs = np.concatenate([seqs, nxt[:, None]], axis=1)
            valid = np.concatenate([valid, np.ones_like(valid[:, :1])], axis=1)
            unfinished &= ~np.isin(nxt, self.eos)
            if not unfinished.any() or step == max_new_tokens - 1:
                break
            logits = runner.step(seqs)
        return list(seqs[:, start:])

    def _beam(self, runner, prompts, max_new_tokens, k, length_penalty, early_stopping, **opt):
        """transformers 5 `_beam_search`, transcribed to numpy (see its helper functions for the reasoning)."""
        seqs, valid, logits = runner.start(prompts, k)  # rows: batch * beams, beams of one input adjacent
        b, prompt_len = len(prompts), seqs.shape[1]
        max_len = prompt_len + max_new_tokens
        keep = max(2, 1 + len(self.eos)) * k
        top_mask = np.arange(keep) < k
        fill = self.pad
        running = np.full((b, k, max_len), fill, dtype=np.int64)
        running[:, :, :prompt_len] = seqs.reshape(b, k, prompt_len)
        valid_prompt = valid.reshape(b, k, prompt_len)
        best = running.copy()
        running_scores = np.zeros((b, k), dtype=np.float32)
        running_scores[:, 1:] = NEG  # only the first beam's tokens count at step 1 (all beams are equal)
        best_scores = np.full((b, k), NEG, dtype=np.float32)
        finished = np.zeros((b, k), dtype=bool)
        improvable = np.ones((b, 1), dtype=bool)
        running_idx = np.full((b, k, max_new_tokens), -1, dtype=np.int64)
        best_idx = running_idx.copy()
        cur = prompt_len
        gather = lambda x, i: np.take_along_axis(x, i.reshape(i.shape + (1,) * (x.ndim - 2)), axis=1)  # noqa: E731
        while True:
            flat = running[:, :, :cur].reshape(b * k, cur)
            flat_valid = np.concatenate([valid_prompt, np.ones((b, k, cur - prompt_len), dtype=bool)], axis=2)
            log_probs = _log_softmax(logits.astype(np.float32))
            log_probs = self._process(log_probs, flat, flat_valid.reshape(b * k, cur), **opt)
            vocab = log_probs.shape[-1]
            acc = (log_probs.reshape(b, k, vocab) + running_scores[:, :, None]).reshape(b, k * vocab)
            if opt["do_sample"]:  # sampling without replacement = top-k of Gumbel-perturbed scores
                perturbed = acc.astype(np.float64) - np.log(-np.log(opt["rng"].random(acc.shape)))
                top = _topk(np.where(np.isfinite(acc), perturbed, -np.inf), keep)
            else:
                top = _topk(acc, keep)
            top_scores = np.take_along_axis(acc, top, axis=1)
            parent, token = top // vocab, top % vocab
            cand_idx = gather(running_idx, parent)
            cand = gather(running, parent)
            cand[:, :, cur] = token
            cand_idx[:, :, cur - prompt_len] = parent + np.arange(b)[:, None] * k
            hits = np.isin(token, self.eos) | (cur + 1 >= max_len)
            # e. the best unfinished candidates keep running
            run_scores = (top_scores + hits.astype(np.float32) * NEG).astype(np.float32)
            nxt = _topk(run_scores, k)
            running, running_scores, running_idx = gather(cand, nxt), gather(run_scores, nxt), gather(cand_idx, nxt)
            # f. finished candidates among the top k join the hypotheses if they beat the worst kept one
            done = hits & top_mask[None, :]
            scores = (top_scores / np.float32((cur + 1 - prompt_len) ** length_penalty)).astype(np.float32)
            full = np.all(finished, axis=-1, keepdims=True) & (early_stopping is True)
            scores = scores + full.astype(np.float32) * NEG
            scores = scores + (~improvable).astype(np.float32) * NEG
            scores = scores + (~done).astype(np.float32) * NEG
            merged_scores = np.concatenate([best_scores, scores], axis=1)
            pick = _topk(merged_scores, k)
            best = gather(np.concatenate([best, cand], axis=1), pick)
            best_scores = gather(merged_scores, pick)
            best_idx = gather(np.concatenate([best_idx, cand_idx], axis=1), pick)
            finished = gather(np.concatenate([finished, done], axis=1), pick)
            # g. stopping: can a running beam still beat the worst finished one?
            cur += 1
            if early_stopping == "never" and length_penalty > 0.0:
                best_len = max_len - prompt_len
            else:
                best_len = cur - prompt_len
            best_possible = running_scores[:, :1] / np.float32(best_len ** length_penalty)
            worst = np.where(finished, np.min(best_scores, axis=1, keepdims=True), NEG)
            improvable = improvable & np.any(best_possible > worst, axis=-1, keepdims=True)
            open_beam = not (finished.all() and early_stopping is True)
            if not (improvable.any() and open_beam and not hits.all()):
                break
            runner.reorder(running_idx[:, :, cur - 1 - prompt_len].reshape(-1))
            logits = runner.step(running[:, :, :cur].reshape(b * k, cur))
        # generated length of each returned hypothesis = steps that recorded a parent index
        lengths = (best_idx[:, 0] >= 0).sum(-1)
        return [best[i, 0, prompt_len:prompt_len + lengths[i]] for i in range(b)]
