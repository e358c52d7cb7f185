"""ONNX export of the generative heads (T5 seq2seq LM, GPT-Neo causal LM) with a KV cache, and its numeric gate.

Graphs written into `out` (names are also listed in the manifest fragment, which is the contract with the
torch-free runtime `generation.py`):

* T5 (`kind: seq2seq`):
  - `encoder.onnx`: input_ids, attention_mask (B, S; right padding) -> encoder_hidden_states (B, S, d_model)
  - `decoder.onnx`: decoder_input_ids (B, T), encoder_hidden_states, encoder_attention_mask -> logits (B, T, V),
    present.{i}.decoder.key/value (B, H, T, Dh) and present.{i}.encoder.key/value (B, H, S, Dh). It serves the first
    step of cached generation and every step of `use_cache=False`.
  - `decoder_with_past.onnx`: decoder_input_ids (B, T), encoder_attention_mask, past_key_values.{i}.decoder.key/value
    (B, H, P, Dh), past_key_values.{i}.encoder.key/value (B, H, S, Dh) -> logits, present.{i}.decoder.key/value
    (B, H, P+T, Dh). The cross-attention keys/values come from `decoder.onnx` once and are fed back unchanged, so
    the encoder output is never re-projected.
* GPT-Neo (`kind: causal-lm`):
  - `decoder.onnx`: input_ids, attention_mask, position_ids (B, T) -> logits (B, T, V), present.{i}.key/value
  - `decoder_with_past.onnx`: the same plus past_key_values.{i}.key/value (B, H, P, Dh); attention_mask covers
    past + new tokens (B, P+T). Two graphs rather than one with an empty past: a zero-length past is an edge case
    some exporters and providers mishandle, and the no-past graph is the plain "full forward" for `use_cache=False`.
  Prompts are LEFT padded; position_ids are `cumsum(mask) - 1` (0 on pads), as transformers' `generate` makes them.

transformers 5 keeps the cache in `DynamicCache`/`EncoderDecoderCache` objects, so the wrappers below take flat past
tensors, build the cache objects inside `forward` and return the flat present tensors. They also build the 4D
additive attention masks themselves (transformers returns a 4D mask as-is): its own mask code branches in Python on
tensor contents and shapes, which the tracing exporter would freeze at the example's values.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache

from .generation import pad_prompts  # torch-free; the runtime pads prompts the same way

SAMPLE_TEXTS = ("孟子是一个中文预训练模型，支持多种下游任务。", "今天天气很好")


def _family(model) -> str:
    kind = model.config.model_type
    if kind not in ("t5", "gpt_neo"):
        raise ValueError(f"export_generative: model type {kind!r} is not supported (T5 or GPT-Neo)")
    return kind


def _bias(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean 'may attend' -> additive mask, 0 or the dtype's minimum, exactly as transformers' eager masks."""
    return torch.where(allowed, torch.zeros((), dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))


def _causal(q_len, kv_len) -> torch.Tensor:
    """(q_len, kv_len) lower-right aligned causal pattern: the new tokens are the last q_len of kv_len."""
    q = torch.arange(q_len) + (kv_len - q_len)
    return torch.arange(kv_len)[None, :] <= q[:, None]


class T5Encoder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        mask = _bias(attention_mask[:, None, None, :].bool(), self.model.dtype)
        return self.model.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state


class T5Decoder(nn.Module):
    """One decoder pass over `decoder_input_ids`, with (`with_past`) or without a past. Calls the full
    `T5ForConditionalGeneration.forward` with `encoder_outputs`, so the model's own rules (e.g. T5 v1.0's output
    scaling for a tied head, `config.scale_decoder_outputs`) apply unchanged."""

    def __init__(self, model, with_past: bool):
        super().__init__()
        self.model, self.with_past = model, with_past
        self.layers = model.config.num_decoder_layers

    def forward(self, decoder_input_ids, *args):
        dtype = self.model.dtype
        if self.with_past:
            encoder_attention_mask, *past = args
            self_cache, cross_cache = DynamicCache(), DynamicCache()
            for i in range(self.layers):
                self_cache.update(past[4 * i], past[4 * i + 1], i)
                cross_cache.update(past[4 * i + 2], past[4 * i + 3], i)
            cross_key = past[2]
            # Only its presence matters (it selects cross-attention); the keys/values come from the cache, which
            # EncoderDecoderCache marks as filled. Dead code in the exported graph.
            encoder_hidden_states = cross_key.new_zeros(cross_key.shape[0], cross_key.shape[2], self.model.model_dim)
            past_len = past[0].shape[2]
        else:
            encoder_hidden_states, encoder_attention_mask = args
            self_cache, cross_cache = DynamicCache(), DynamicCache()
            past_len = 0
        cache = EncoderDecoderCache(self_cache, cross_cache)
        q_len = decoder_input_ids.shape[1]
        self_mask = _bias(_causal(q_len, past_len + q_len)[None, None], dtype)
        cross_mask = _bias(encoder_attention_mask[:, None, None, :].bool(), dtype)
        out = self.model(encoder_outputs=(encoder_hidden_states,), attention_mask=cross_mask,
                         decoder_input_ids=decoder_input_ids, decoder_attention_mask=self_mask,
                         past_key_values=cache, use_cache=True, return_dict=True)
        flat = []
        for i in range(self.layers):
            layer = cache.self_attention_cache.layers[i]
            flat += [layer.keys, layer.values]
            if not self.with_past:
                cross = cache.cross_attention_cache.layers[i]
                flat += [cross.keys, cross.values]
        return (out.logits, *flat)


class GPTNeoDecoder(nn.Module):
    """GPT-Neo causal LM step. The local layers' window is applied by the model itself (its `bias` buffer, indexed by
    the key length = past + new), so the past must hold every earlier token, pads included (left padding shifts all
    of a row by the same amount, so column distance equals token distance)."""

    def __init__(self, model, with_past: bool):
        super().__init__()
        self.model, self.with_past = model, with_past
        self.layers = model.config.num_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache()
        for i in range(self.layers if self.with_past else 0):
            cache.update(past[2 * i], past[2 * i + 1], i)
        q_len = input_ids.shape[1]
        kv_len = attention_mask.shape[1]
        allowed = _causal(q_len, kv_len)[None, None] & attention_mask[:, None, None, :].bool()
        out = self.model(input_ids=input_ids, attention_mask=_bias(allowed, self.model.dtype),
                         position_ids=position_ids, past_key_values=cache, use_cache=True, return_dict=True)
        flat = []
        for i in range(self.layers):
            flat += [cache.layers[i].keys, cache.layers[i].values]
        return (out.logits, *flat)


def _t5_graphs(model) -> dict:
    """name -> (wrapper, example args, input names, output names, dynamic axes)."""
    cfg = model.config
    n, h, dh = cfg.num_decoder_layers, cfg.num_heads, cfg.d_kv
    b, s, t, p = 2, 7, 3, 5  # distinct sizes, so the tracer cannot confuse one axis with another
    ids = torch.randint(3, cfg.vocab_size, (b, s))
    mask = torch.ones(b, s, dtype=torch.long)
    mask[1, -2:] = 0
    hidden = torch.randn(b, s, cfg.d_model)
    dec = torch.randint(3, cfg.vocab_size, (b, t))
    past = [torch.randn(b, h, p if kind == "decoder" else s, dh)
            for _ in range(n) for kind in ("decoder", "decoder", "encoder", "encoder")]
    self_names = [f"{{}}.{i}.decoder.{kv}" for i in range(n) for kv in ("key", "value")]
    all_names = [f"{{}}.{i}.{part}.{kv}" for i in range(n) for part in ("decoder", "encoder") for kv in ("key", "value")]
    batch = {0: "batch"}
    enc_axes = {0: "batch", 1: "encoder_sequence"}
    dec_axes = {0: "batch", 1: "decoder_sequence"}

    def kv_axes(name, length):
        return {name: {0: "batch", 2: "encoder_sequence" if ".encoder." in name else length}}

    graphs = {"encoder": (T5Encoder(model), (ids, mask), ["input_ids", "attention_mask"], ["encoder_hidden_states"],
                          {"input_ids": enc_axes, "attention_mask": enc_axes,
                           "encoder_hidden_states": enc_axes})}
    outs = ["logits"] + [x.format("present") for x in all_names]
    axes = {"decoder_input_ids": dec_axes, "encoder_hidden_states": enc_axes, "encoder_attention_mask": enc_axes,
            "logits": dec_axes | batch}
    for name in outs[1:]:
        axes |= kv_axes(name, "decoder_sequence")
    graphs["decoder"] = (T5Decoder(model, with_past=False), (dec, hidden, mask),
                         ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask"], outs, axes)
    ins = ["decoder_input_ids", "encoder_attention_mask"] + [x.format("past_key_values") for x in all_names]
    outs = ["logits"] + [x.format("present") for x in self_names]
    axes = {"decoder_input_ids": dec_axes, "encoder_attention_mask": enc_axes, "logits": dec_axes}
    for name in ins[2:]:
        axes |= kv_axes(name, "past_decoder_sequence")
    for name in outs[1:]:
        axes |= kv_axes(name, "total_decoder_sequence")
    graphs["decoder_with_past"] = (T5Decoder(model, with_past=True), (dec[:, :1], mask, *past), ins, outs, axes)
    return graphs


def _gpt_neo_graphs(model) -> dict:
    cfg = model.config
    n, h = cfg.num_layers, cfg.num_heads
    dh = cfg.hidden_size // h
    b, t, p = 2, 6, 5
    ids = torch.randint(3, cfg.vocab_size, (b, t))
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, :2] = 0  # left padding
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    names = [f"{{}}.{i}.{kv}" for i in range(n) for kv in ("key", "value")]
    seq = {0: "batch", 1: "sequence"}
    graphs = {}
    outs = ["logits"] + [x.format("present") for x in names]
    axes = {"input_ids": seq, "attention_mask": seq, "position_ids": seq, "logits": seq}
    axes |= {name: {0: "batch", 2: "sequence"} for name in outs[1:]}
    graphs["decoder"] = (GPTNeoDecoder(model, with_past=False), (ids, mask, positions),
                         ["input_ids", "attention_mask", "position_ids"], outs, axes)
    past = [torch.randn(b, h, p, dh) for _ in range(2 * n)]
    mask_past = torch.ones(b, p + 1, dtype=torch.long)
    mask_past[1, :2] = 0
    ins = ["input_ids", "attention_mask", "position_ids"] + [x.format("past_key_values") for x in names]
    axes = {"input_ids": seq, "position_ids": seq, "logits": seq, "attention_mask": {0: "batch", 1: "total_sequence"}}
    axes |= {name: {0: "batch", 2: "past_sequence"} for name in ins[3:]}
    axes |= {name: {0: "batch", 2: "total_sequence"} for name in outs[1:]}
    graphs["decoder_with_past"] = (GPTNeoDecoder(model, with_past=True),
                                   (ids[:, :1], mask_past, positions[:, -1:] + 1, *past), ins, outs, axes)
    return graphs


def _generation_info(model, graphs: dict) -> dict:
    cfg, gen_cfg = model.config, getattr(model, "generation_config", None)

    def special(name):
        value = getattr(gen_cfg, name, None) if gen_cfg is not None else None
        return value if value is not None else getattr(cfg, name, None)

    info = {"eos_token_id": special("eos_token_id"), "pad_token_id": special("pad_token_id"),
            "bos_token_id": special("bos_token_id"), "vocab_size": cfg.vocab_size,
            "graphs": {name: {"inputs": g[2], "outputs": g[3]} for name, g in graphs.items()},
            "past_layout": "batch, num_heads, sequence, head_dim"}
    if cfg.model_type == "t5":
        n = cfg.num_decoder_layers
        parts = [(i, p, kv) for i in range(n) for p in ("decoder", "encoder") for kv in ("key", "value")]
        info |= {"kind": "seq2seq", "family": "t5", "num_layers": n, "num_heads": cfg.num_heads,
                 "head_dim": cfg.d_kv, "decoder_start_token_id": special("decoder_start_token_id"),
                 "max_position_embeddings": None, "padding_side": "right",  # relative positions: no limit
                 # present output -> past input of the next step; "self" grows, "cross" is computed once
                 "cache": {"self": [[f"present.{i}.{p}.{kv}", f"past_key_values.{i}.{p}.{kv}"]
                                    for i, p, kv in parts if p == "decoder"],
                           "cross": [[f"present.{i}.{p}.{kv}", f"past_key_values.{i}.{p}.{kv}"]
                                     for i, p, kv in parts if p == "encoder"]}}
    else:
        n = cfg.num_layers
        info |= {"kind": "causal-lm", "family": "gpt-neo", "num_layers": n, "num_heads": cfg.num_heads,
                 "head_dim": cfg.hidden_size // cfg.num_heads, "decoder_start_token_id": None,
                 "max_position_embeddings": cfg.max_position_embeddings, "padding_side": "left",
                 "attention_layers": list(cfg.attention_layers), "window_size": cfg.window_size,
                 "cache": {"self": [[f"present.{i}.{kv}", f"past_key_values.{i}.{kv}"]
                                    for i in range(n) for kv in ("key", "value")], "cross": []}}
    return info


def export_generative(model, out: Path, opset: int = 17, dynamo: bool = False) -> dict:
    """Write the generation graphs of a `T5ForConditionalGeneration` or `GPTNeoForCausalLM` into the existing folder
    `out`; return the manifest fragment `{"files": {...}, "generation": {...}}` (see the module doc)."""
    out = Path(out)
    family = _family(model)
    was_training = model.training
    model.eval()
    try:
        graphs = _t5_graphs(model) if family == "t5" else _gpt_neo_graphs(model)
        files = {}
        for name, (wrapper, args, ins, outs, axes) in graphs.items():
            path = out / f"{name}.onnx"
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings on shape-derived Python ints, deprecation notice
                if dynamo:
                    _export_dynamo(wrapper, args, path, ins, outs, axes, opset, family)
                else:
                    torch.onnx.export(wrapper, args, str(path), input_names=ins, output_names=outs,
                                      dynamic_axes=axes, opset_version=opset, do_constant_folding=True,
                                      dynamo=False)
            files[name] = path.name
        return {"files": files, "generation": _generation_info(model, graphs)}
    finally:
        model.train(was_training)


def _export_dynamo(wrapper, args, path, ins, outs, axes, opset, family) -> None:
    """torch.export-based exporter (works for both families with torch 2.13 + onnxscript, opset >= 18, slower to
    export: ~10-15 s for the tiny presets). Any failure becomes NotImplementedError, so callers know to fall back to
    the TorchScript exporter (dynamo=False)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter emits through onnxscript)
    except ImportError as e:
        raise NotImplementedError("dynamo=True needs the `onnxscript` package (not installed); "
                                  "use dynamo=False (the TorchScript exporter)") from e
    # torch.export needs dynamic_shapes per positional argument (the wrappers take the past as *args, which the
    # dynamic_axes -> dynamic_shapes conversion cannot map); DYNAMIC lets it infer relations such as
    # mask length = past + new. Its ONNX translation starts at opset 18.
    dynamic = torch.export.Dim.DYNAMIC
    specs = [{axis: dynamic for axis in axes.get(name, {})} for name in ins]
    params = list(inspect.signature(wrapper.forward).parameters.values())
    named = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    # torch.export sees a non-empty *args as one tuple argument, an empty one not at all
    shapes = tuple(specs[:named]) + ((tuple(specs[named:]),) if varargs and len(specs) > named else ())
    try:
        program = torch.onnx.export(wrapper, args, input_names=ins, output_names=outs, dynamic_shapes=shapes,
                                    opset_version=max(opset, 18), dynamo=True, optimize=True, verbose=False)
        program.save(str(path))
    except Exception as e:  # the dynamo exporter raises many types; callers need one clear answer
        raise NotImplementedError(f"dynamo=True export of the {family} generation graphs failed "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:300]}); use dynamo=False") from e


# ---------------------------------------------------------------------------------------------------- numeric gate

def check_generative(model, out: Path, manifest: dict, tokenizer_json: Path, providers=None) -> dict:
    """Compare PyTorch and the exported graphs on a padded batch (2 texts of different lengths) and an unpadded one
    (1 text): logits of the first decoder step, of 4 cached steps (feeding PyTorch's argmax tokens to both), and of
    the no-past decoder over the whole sequence at the end. Returns the float32 max |difference| over all of them,
    the logit scale (max(1, largest |PyTorch logit|)) and one entry per comparison; the caller applies the
    tolerance."""
    from tokenizers import Tokenizer

    from .gates import logit_scale
    from .session import make_session

    out, gen = Path(out), manifest["generation"]
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    sessions = {name: make_session(out / f, providers) for name, f in manifest["files"].items()
                if name in gen["graphs"]}
    prompts = [tokenizer.encode(t).ids or [gen["bos_token_id"]] for t in SAMPLE_TEXTS]
    checked, scale = [], 1.0
    model.eval()
    with torch.no_grad():
        for case, batch in (("padded", prompts), ("unpadded", prompts[1:])):
            run = _check_t5 if gen["kind"] == "seq2seq" else _check_gpt_neo
            for what, ref, got in run(model, sessions, gen, batch):
                diff = float(np.max(np.abs(ref.astype(np.float32) - got.astype(np.float32))))
                checked.append({"case": case, "what": what, "max_abs_diff": diff})
                scale = max(scale, logit_scale([ref]))
    return {"max_abs_diff": max(c["max_abs_diff"] for c in checked), "scale": scale, "checked": checked}


def _feed(gen, graph, values: dict) -> dict:
    return {name: values[name] for name in gen["graphs"][graph]["inputs"]}


def _check_t5(model, sessions, gen, prompts, steps=4):
    ids, mask = pad_prompts(prompts, gen["pad_token_id"], "right")
    t_ids, t_mask = torch.from_numpy(ids), torch.from_numpy(mask)
    enc_ref = model.encoder(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
    (enc,) = sessions["encoder"].run(None, {"input_ids": ids, "attention_mask": mask})
    yield "encoder", enc_ref.numpy(), enc
    dec = np.full((len(prompts), 1), gen["decoder_start_token_id"], dtype=np.int64)
    cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
    values = {"decoder_input_ids": dec, "encoder_hidden_states": enc, "encoder_attention_mask": mask}
    outs = dict(zip(gen["graphs"]["decoder"]["outputs"],
                    sessions["decoder"].run(None, _feed(gen, "decoder", values)), strict=True))
    ref = model(encoder_outputs=(enc_ref,), attention_mask=t_mask, decoder_input_ids=torch.from_numpy(dec),
                past_key_values=cache, use_cache=True).logits
    yield "decoder step 0", ref.numpy(), outs["logits"]
    past = {p: outs[o] for o, p in gen["cache"]["self"] + gen["cache"]["cross"]}
    seq = dec
    for step in range(1, steps + 1):
        nxt = ref[:, -1].argmax(-1, keepdim=True)
        seq = np.concatenate([seq, nxt.numpy()], axis=1)
        ref = model(encoder_outputs=(enc_ref,), attention_mask=t_mask, decoder_input_ids=nxt,
                    past_key_values=cache, use_cache=True).logits
        values = {"decoder_input_ids": nxt.numpy(), "encoder_attention_mask": mask, **past}
        outs = dict(zip(gen["graphs"]["decoder_with_past"]["outputs"],
                        sessions["decoder_with_past"].run(None, _feed(gen, "decoder_with_past", values)), strict=True))
        yield f"decoder_with_past step {step}", ref.numpy(), outs["logits"]
        past |= {p: outs[o] for o, p in gen["cache"]["self"]}
    full = model(encoder_outputs=(enc_ref,), attention_mask=t_mask, decoder_input_ids=torch.from_numpy(seq)).logits
    values = {"decoder_input_ids": seq, "encoder_hidden_states": enc, "encoder_attention_mask": mask}
    yield "decoder full sequence", full.numpy(), sessions["decoder"].run(["logits"], _feed(gen, "decoder", values))[0]


def _check_gpt_neo(model, sessions, gen, prompts, steps=4):
    ids, mask = pad_prompts(prompts, gen["pad_token_id"], "left")
    positions = np.where(mask == 1, mask.cumsum(-1) - 1, 0)
    real = mask[:, :, None] == 1  # pads' logits are meaningless; compare the real positions
    cache = DynamicCache()
    ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                position_ids=torch.from_numpy(positions), past_key_values=cache, use_cache=True).logits
    values = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    outs = dict(zip(gen["graphs"]["decoder"]["outputs"],
                    sessions["decoder"].run(None, _feed(gen, "decoder", values)), strict=True))
    yield "decoder step 0", np.where(real, ref.numpy(), 0), np.where(real, outs["logits"], 0)
    past = {p: outs[o] for o, p in gen["cache"]["self"]}
    seq = ids
    for step in range(1, steps + 1):
        nxt = ref[:, -1].argmax(-1, keepdim=True)
        seq = np.concatenate([seq, nxt.numpy()], axis=1)
        mask = np.concatenate([mask, np.ones_like(mask[:, :1])], axis=1)
        positions = np.concatenate([positions, positions[:, -1:] + 1], axis=1)
        ref = model(input_ids=nxt, attention_mask=torch.from_numpy(mask), past_key_values=cache, use_cache=True,
                    position_ids=torch.from_numpy(positions[:, -1:])).logits
        values = {"input_ids": nxt.numpy(), "attention_mask": mask, "position_ids": positions[:, -1:], **past}
        outs = dict(zip(gen["graphs"]["decoder_with_past"]["outputs"],
                        sessions["decoder_with_past"].run(None, _feed(gen, "decoder_with_past", values)), strict=True))
        yield f"decoder_with_past step {step}", ref.numpy(), outs["logits"]
        past = {p: outs[o] for o, p in gen["cache"]["self"]}
    full = model(input_ids=torch.from_numpy(seq), attention_mask=torch.from_numpy(mask),
                 position_ids=torch.from_numpy(positions)).logits.numpy()
    values = {"input_ids": seq, "attention_mask": mask, "position_ids": positions}
    got = sessions["decoder"].run(["logits"], _feed(gen, "decoder", values))[0]
    real = mask[:, :, None] == 1
    yield "decoder full sequence", np.where(real, full, 0), np.where(real, got, 0)
