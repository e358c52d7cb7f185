"""ONNX Runtime sessions and the export folder's manifest. Torch-free: the deployment runtime imports this.

An export folder holds the ONNX graph(s), `tokenizer.json` (the `tokenizers` library reads it; no transformers at
run time) and `mengzi_export.json`, the manifest:

    {"format": 1, "head": "sequence-classification", "family": "bert", "files": {"model": "model.onnx"},
     "inputs": ["input_ids", "attention_mask", "token_type_ids"], "outputs": ["logits"],
     "precision": "fp32" | "fp16" | "int8", "optimized": bool, "labels": [...] | null,
     "task": {"name": "afqmc", "kind": "classification", "max_seq_len": 128, ...} | null,
     "special": {"cls": 101, "sep": 102, "pad": 0, "mask": 103, ...}, "gates": {...}, "source": "..."}

Provider choice: TensorRT, then CUDA, then CPU, among those this onnxruntime build offers; `providers=` overrides
it. TensorRT runs the unfused graph (its own fusion beats ORT's contrib ops) with fp16 and an engine cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "mengzi_export.json"
FORMAT = 1
PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
ALIASES = {"tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider",
           "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}


class ExportError(RuntimeError):
    """An export folder that cannot be used, or an export that failed a gate (the message says why)."""


def read_manifest(folder: str | os.PathLike) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ExportError(f"{folder}: no {MANIFEST}; is this a `mengzi export` folder?")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from e
    if manifest.get("format") != FORMAT:
        raise ExportError(f"{path}: format {manifest.get('format')!r}, this mengzi reads format {FORMAT}")
    for key in ("head", "files"):
        if key not in manifest:
            raise ExportError(f"{path}: field {key!r} is missing")
    return manifest


def write_manifest(folder: str | os.PathLike, manifest: dict) -> Path:
    from mengzi import atomic  # torch-free

    manifest = {"format": FORMAT, **manifest}
    path = Path(folder) / MANIFEST
    atomic.write_text(path, json.dumps(manifest, ensure_ascii=False, indent=1))
    return path


def choose_providers(requested: str | list[str] | None = None) -> list[str]:
    """Execution providers to use, best first. `requested`: None/"auto" (TensorRT > CUDA > CPU, what is
    available), or names/aliases ("cuda", "cpu", "tensorrt", or full provider names), comma-separated or a list."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested in (None, "", "auto"):
        return [p for p in PREFERENCE if p in available]
    names = requested.split(",") if isinstance(requested, str) else list(requested)
    chosen = [ALIASES.get(n.strip().lower(), n.strip()) for n in names if n.strip()]
    missing = [p for p in chosen if p not in available]
    if missing:
        raise ExportError(f"provider(s) {', '.join(missing)} not in this onnxruntime build (available: "
                          f"{', '.join(available)}); GPU providers need `pip install mengzi[gpu]`")
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")  # the fallback for ops a GPU provider does not take
    return chosen


def provider_options(provider: str, cache_dir: str | os.PathLike | None = None, fp16: bool = True) -> dict:
    """Settings per provider. TensorRT: fp16 kernels and an engine cache beside the model (building an engine
    takes minutes; the cache makes the second start fast)."""
    if provider == "TensorrtExecutionProvider":
        options = {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True, "trt_timing_cache_enable": True}
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            options.update(trt_engine_cache_path=str(cache_dir), trt_timing_cache_path=str(cache_dir))
        return options
    if provider == "CUDAExecutionProvider":
        return {"cudnn_conv_algo_search": "HEURISTIC"}
    return {}


def make_session(path: str | os.PathLike, providers: str | list[str] | None = None, threads: int = 0,
                 cache_dir: str | os.PathLike | None = None, spin: bool = True):
    """An `onnxruntime.InferenceSession` for one graph: all graph optimisations on, `threads` intra-op threads
    (0: onnxruntime's default, one per physical core), providers as `choose_providers`. `spin=False` stops idle
    worker threads from busy-waiting: slower alone, but fair when another runtime (torch) shares the cores."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such ONNX file")
    chosen = choose_providers(providers)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initializers etc. are noise for users
    cache = cache_dir if cache_dir is not None else path.parent / "trt_cache"
    with_options = [(p, provider_options(p, cache)) for p in chosen]
    return ort.InferenceSession(str(path), sess_options=options, providers=with_options)
