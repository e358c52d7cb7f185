"""Pre-training objectives, one module each; importing this package registers them all in `OBJECTIVES`."""

from . import causal_lm, distill, mlm, sop, span_corruption, tagging  # noqa: F401  (registration)
from .base import OBJECTIVES, Objective, ObjectiveConfig, Step, register_objective

__all__ = ["OBJECTIVES", "Objective", "ObjectiveConfig", "Step", "register_objective"]
