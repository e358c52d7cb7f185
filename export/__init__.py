"""Deployment, importable as `mengzi.export` (the folder sits at the repository top level; see pyproject.toml).

    heads.py        what each exported head takes and gives (a registry)
    onnx_export.py  PyTorch -> ONNX for the BERT-family heads (torch)
    seq2seq.py      T5 encoder / decoder / decoder-with-past and GPT-Neo with past (torch)
    optimize.py     onnxruntime.transformers fusion, fp16, INT8 (dynamic, static)
    gates.py        the numeric and task gates every export passes (torch)
    run.py          `mengzi export` and `mengzi predict`
    generate.py     `mengzi generate`: a checkpoint (through mengzi.textgen) or an export folder
    session.py      ONNX Runtime sessions, provider choice (TensorRT > CUDA > CPU), the folder's manifest
    tokenize.py     a transformers-compatible face over a bare `tokenizers.Tokenizer`
    predictor.py    `Predictor(DIR)`: batched predictions with post-processing per head
    generation.py   greedy / beam / sampled generation over ONNX with a KV cache
    server.py       `mengzi serve`: JSON HTTP API with dynamic batching

The runtime half (session, tokenize, predictor, generation, server) never imports torch or transformers: it needs
onnxruntime, tokenizers and numpy only.
"""


def __getattr__(name: str):
    if name == "Predictor":
        from .predictor import Predictor

        return Predictor
    if name in ("ExportConfig", "export_model"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)


__all__ = ["Predictor", "ExportConfig", "export_model"]
