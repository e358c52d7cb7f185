"""Graph optimisation after export: ONNX Runtime's transformer fusion, fp16 conversion, INT8 quantisation.
Torch-free (onnx + onnxruntime only).

* `fuse`: `onnxruntime.transformers` rewrites a BERT graph into its contrib ops (EmbedLayerNormalization,
  Attention, SkipLayerNormalization, BiasGelu). It only recognises the attention pattern of eager attention
  exported by the TorchScript exporter (`dynamo=False`): SDPA or dynamo graphs come out unfused, so `fuse` checks
  that every layer's attention was fused and says so when it was not.
* `to_fp16`: weights and compute in fp16, inputs/outputs kept as they were (for GPU; CPU fp16 is slow).
* `quantize_int8`: dynamic (weights int8 per tensor or per channel, activations quantised at run time; needs no
  data) or static (activation scales calibrated on real text; QDQ format). ORT 1.32 fails on a fused graph unless
  untyped tensors default to float (`DefaultTensorType`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

log = logging.getLogger("mengzi.export")


def fuse(src: str | os.PathLike, dst: str | os.PathLike, num_heads: int, hidden_size: int,
         num_layers: int) -> dict[str, int]:
    """Fused BERT graph `dst` from `src`; returns the fused-operator counts. Raises if attention stayed unfused."""
    from onnxruntime.transformers import optimizer

    for name in list(logging.root.manager.loggerDict):  # the fusion modules log every step at INFO
        if name.startswith(("fusion_", "onnx_model")):
            logging.getLogger(name).setLevel(logging.WARNING)
    model = optimizer.optimize_model(str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                     opt_level=0)  # graph-level fusions only; ORT's own level-2 runs at load time
    stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    if stats.get("Attention", 0) < num_layers:
        raise RuntimeError(f"fusion found {stats.get('Attention', 0)} of {num_layers} attention blocks ({stats}); "
                           "export with eager attention and dynamo=False for ORT's BERT fusion")
    model.save_model_to_file(str(dst), use_external_data_format=False)
    return stats


def to_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    model.convert_float_to_float16(keep_io_types=True)  # callers feed int64 ids and read float32 logits as before
    model.save_model_to_file(str(dst), use_external_data_format=False)


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike, mode: str = "dynamic", per_channel: bool = False,
                  calibration: Iterable[dict] | None = None) -> None:
    """INT8 graph `dst` from `src`. `calibration`: feeds (input name -> int64 array) for `mode="static"`."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    logging.getLogger("root").setLevel(logging.ERROR)  # the quantizer's "consider pre-processing" advice
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    if mode == "dynamic":
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         extra_options=extra)
    elif mode == "static":
        if calibration is None:
            raise ValueError("static INT8 needs calibration data (real text: --check-data or --calibration-data)")
        quantize_static(str(src), str(dst), _Reader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gemm", "Attention"],
                        extra_options=extra | {"ActivationSymmetric": False, "WeightSymmetric": True,
                                                # int32 biases need a scale for every input; the pooler's
                                                # [CLS] gather has none, and fp32 biases cost nothing
                                                "QuantizeBias": False})
    else:
        raise ValueError(f"unknown INT8 mode {mode!r}: dynamic or static")


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over an iterable of feeds."""

    def __init__(self, feeds: Iterable[dict]):
        self._feeds: Iterator[dict] = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - called by some calibrators; one pass is what we give
        pass

