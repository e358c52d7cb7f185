"""Model presets, loading and initialisation, extra pre-training heads, the Oscar image-text encoder."""

from .heads import HEAD_TYPES, PretrainingHeads, register_head
from .load import DEFAULT_TASK, TASKS, build_config, family_of, init_model, load, load_heads, save_pretrained
from .oscar import MengziOscarModel
from .presets import PRESETS, Preset, get_preset, register_preset

__all__ = [
    "HEAD_TYPES", "PretrainingHeads", "register_head", "DEFAULT_TASK", "TASKS", "build_config", "family_of",
    "init_model", "load", "load_heads", "save_pretrained", "MengziOscarModel", "PRESETS", "Preset", "get_preset",
    "register_preset",
]
