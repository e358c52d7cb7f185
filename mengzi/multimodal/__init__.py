"""Multimodal Mengzi: Oscar-style image-text (`oscar`), a Mavors-style video/image encoder feeding a small causal
LM (`video`), and HAIC human-action captions, QA and synthetic clips (`haic`). Subpackages import torch lazily
where they can; this package imports nothing."""
