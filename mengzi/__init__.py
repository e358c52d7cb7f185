"""mengzi: pre-training, fine-tuning and deployment for the Mengzi family of Chinese language models.

    import mengzi
    model, tokenizer = mengzi.load("Langboat/mengzi-bert-base")   # or a local folder, or a preset name
    model, tokenizer = mengzi.init_model("mengzi-bert-tiny")       # random weights from a preset

Importing `mengzi` loads neither torch nor transformers (the deployment runtime in `mengzi.export` must work
without torch); the names below import their module on first use.
"""

__version__ = "0.1.0"

_LAZY = {
    "load": "mengzi.models.load",
    "init_model": "mengzi.models.load",
    "save_pretrained": "mengzi.models.load",
    "load_heads": "mengzi.models.load",
    "PRESETS": "mengzi.models.presets",
    "get_preset": "mengzi.models.presets",
    "load_tokenizer": "mengzi.tokenizer",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mengzi' has no attribute {name!r}")
