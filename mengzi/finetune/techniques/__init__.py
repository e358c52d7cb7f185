"""Fine-tuning techniques, one registry: `build_techniques({"fgm": {...}, "ema": {...}}, kind)`."""

from .base import TECHNIQUES, Step, Technique, build_techniques, register_technique

__all__ = ["TECHNIQUES", "Step", "Technique", "build_techniques", "register_technique", "all_techniques"]


def all_techniques() -> dict:
    """Every registered technique (importing the modules registers them)."""
    from . import adversarial, regularize, setup  # noqa: F401

    return dict(TECHNIQUES)
