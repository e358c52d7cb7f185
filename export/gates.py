"""The two gates every export passes before its folder is written.

* Numeric: the ONNX graph against PyTorch on the same sample batch, padded (rows of different lengths in one
  batch) and unpadded (each row alone); the largest absolute difference over real positions (padding, padded
  choices excluded) must stay within the precision's tolerance. For fp32 that is relative to the logit scale,
  max(1, largest |logit|): rounding error grows with the values, and a random-init T5-base has logits near 130 that
  differ by 2e-4 (1.6e-6 relative), which an absolute 1e-4 would reject. fp16 and int8 keep absolute bounds: their
  error is what the gate is for, and an int8 graph exported without --check-data has no other guard.
* Task: the dev metric of the ONNX graph against PyTorch's on a dev set; a quantised graph must keep at least
  `min_ratio` of it. Both sides decode with the same code (`mengzi.finetune.encoding`), so the comparison is of
  the numbers alone.
"""

from __future__ import annotations

import logging

import numpy as np

from mengzi.finetune import encoding

from .onnx_export import torch_outputs
from .predictor import batch_logits, length_batches, own_logits, pad_batch
from .session import ExportError

log = logging.getLogger("mengzi.export")

# default per-precision tolerance on the largest logit difference (fp32: times the logit scale; --tolerance)
TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2, "int8": 1.0}

# a few real-looking Chinese inputs of different lengths (padding happens in every batch)
SAMPLES = [
    ("花呗怎么还款", "花呗如何还钱"),
    ("孟子预训练模型由澜舟科技发布，在中文理解评测CLUE上取得了很好的成绩。", "澜舟科技发布了孟子模型"),
    ("今天天气很好", "明天会下雨吗？我想出去走走，顺便买点东西，再去图书馆还书。"),
    ("为什么我的借呗额度突然降低了，之前一直按时还款的，也没有逾期记录", "借呗额度下降"),
    ("深度学习", "机器学习的一个分支，使用多层神经网络从数据中学习表示。"),
]


def sample_dataset(kind: str, samples=SAMPLES) -> encoding.Columns:
    a = [s[0] for s in samples]
    b = [s[1] for s in samples]
    if kind == "multiple_choice":
        return encoding.Columns(context=[x + y for x, y in zip(a, b)], question=[""] * len(a),
                                choices=[[b[i], a[(i + 1) % len(a)], b[(i + 2) % len(a)]][: 2 + i % 2]
                                         for i in range(len(a))])
    if kind == "span":
        return encoding.Columns(question=a, context=[y * (1 + 30 * (i == 2)) for i, y in enumerate(b)])
    return encoding.Columns(text=a, text_pair=b)


def _features(head, tokenizer, max_seq_len: int, doc_stride: int) -> list[dict]:
    if head.kind in encoding.ENCODERS:
        return encoding.encode(head.kind, sample_dataset(head.kind), tokenizer, max_seq_len, doc_stride).features
    texts = [s[0] + ("[MASK]" if head.kind == "fill_mask" else "") + s[1] for s in SAMPLES]
    enc = tokenizer(texts, truncation=True, max_length=max_seq_len)
    return [{"input_ids": i, "token_type_ids": t} for i, t in zip(enc["input_ids"], enc["token_type_ids"])]


def logit_scale(arrays) -> float:
    """max(1, largest |value|) of the reference outputs: what the tolerance is relative to."""
    return max([1.0] + [float(np.max(np.abs(a))) for a in arrays if a.size])


def _max_diff(head, feeds: dict, ours: list[np.ndarray], theirs: list[np.ndarray]) -> tuple[float, float]:
    """(max |ours - theirs|, logit scale of theirs) over real positions."""
    mask = feeds["attention_mask"].astype(bool)
    worst, refs = 0.0, []
    for a, b in zip(ours, theirs):
        if head.choice_axis:
            valid = mask.any(-1)  # [batch, choices]: real choices only
        elif a.ndim >= 2 and a.shape[1] == mask.shape[1]:
            valid = mask  # per-token outputs: real tokens only
        else:
            valid = np.ones(a.shape[:1], dtype=bool)
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))[valid]
        if not np.isfinite(diff).all():
            return float("inf"), 1.0
        worst = max(worst, float(diff.max()) if diff.size else 0.0)
        refs.append(np.asarray(b, dtype=np.float64)[valid])
    return worst, logit_scale(refs)


def numeric_gate(model, head, session, tokenizer, precision: str, tolerance: float | None = None,
                 max_seq_len: int = 128, doc_stride: int = 128) -> dict:
    """Max |ONNX - PyTorch| on a padded batch and on each row alone; raises ExportError above the tolerance (for
    fp32, times the logit scale)."""
    tolerance = TOLERANCE[precision] if tolerance is None else tolerance
    features = _features(head, tokenizer, max_seq_len, doc_stride)
    pad = tokenizer.pad_token_id or 0
    inputs = [i.name for i in session.get_inputs()]
    result, scale = {}, 1.0
    for name, batches in (("padded", [features]), ("unpadded", [[f] for f in features])):
        worst = 0.0
        for batch in batches:
            feeds = pad_batch(batch, pad)
            ours = session.run(None, {k: v for k, v in feeds.items() if k in inputs})
            diff, batch_scale = _max_diff(head, feeds, ours, torch_outputs(model, head, feeds))
            worst, scale = max(worst, diff), max(scale, batch_scale)
        result[name] = worst
    result["max_abs_diff"] = max(result.values())
    result["scale"] = scale
    log.info("numeric gate (%s): max |onnx - torch| padded %.3g, unpadded %.3g (tolerance %.3g x scale %.3g)",
             precision, result["padded"], result["unpadded"], tolerance, scale)
    return enforce_tolerance(result, precision, tolerance)


def enforce_tolerance(result: dict, precision: str, tolerance: float | None = None) -> dict:
    """`result` (with `max_abs_diff`, the logit `scale` (1 if absent), and `padded`/`unpadded` when measured)
    marked passed, or ExportError with the measured difference when it exceeds the tolerance (x scale for fp32)."""
    tolerance = TOLERANCE[precision] if tolerance is None else tolerance
    result["scale"] = scale = result.get("scale", 1.0) if precision == "fp32" else 1.0
    result.update(tolerance=tolerance, precision=precision, passed=result["max_abs_diff"] <= tolerance * scale)
    if not result["passed"]:
        where = f" (padded {result['padded']:.4g}, unpadded {result['unpadded']:.4g})" if "padded" in result else ""
        raise ExportError(f"numeric gate failed for the {precision} graph: max |onnx - pytorch| = "
                          f"{result['max_abs_diff']:.4g}{where} > tolerance {tolerance:.3g} x logit scale "
                          f"{scale:.3g}")
    return result


def torch_predictions(model, head, dataset, tokenizer, max_seq_len: int, doc_stride: int, max_answer_len: int,
                      batch_size: int = 32) -> list:
    """PyTorch's predictions on `dataset`, batched (by length) and padded as the Predictor does."""
    encoded = encoding.encode(head.kind, dataset, tokenizer, max_seq_len, doc_stride)
    pad = tokenizer.pad_token_id or 0
    feats = encoded.features
    logits: list = [None] * len(feats)
    for indices in length_batches(feats, batch_size):
        batch = [feats[i] for i in indices]
        rows = batch_logits(head.kind, torch_outputs(model, head, pad_batch(batch, pad)))
        for i, f, row in zip(indices, batch, rows):
            logits[i] = own_logits(head.kind, f, row)
    return encoding.predict(head.kind, logits, encoded, dataset, max_answer_len)


def task_gate(reference: dict, onnx: dict, main: str, precision: str, min_ratio: float = 0.99,
              allow_drop: bool = False) -> dict:
    """Compare dev metrics ({name: value}); fail a quantised graph below `min_ratio` of PyTorch's main metric."""
    ratio = onnx[main] / reference[main] if reference[main] else (1.0 if onnx[main] == reference[main] else 0.0)
    result = {"metric": main, "pytorch": reference, "onnx": onnx, "ratio": ratio, "min_ratio": min_ratio,
              "passed": ratio >= min_ratio}
    log.info("task gate (%s): %s pytorch %.4g, onnx %.4g (ratio %.4f, at least %.2f)", precision, main,
             reference[main], onnx[main], ratio, min_ratio)
    if not result["passed"]:
        message = (f"task gate failed for the {precision} graph: dev {main} {onnx[main]:.4g} vs PyTorch "
                   f"{reference[main]:.4g} = {ratio:.2%} of it, below the required {min_ratio:.0%}")
        if not allow_drop:
            raise ExportError(message + " (--allow-metric-drop writes it anyway)")
        log.warning("%s; written anyway (--allow-metric-drop)", message)
    return result
