"""The training engine: one loop on accelerate for every stage (`loop.py`), the arguments every stage shares
(`args.py`), optimizers and schedules (`optim.py`) and the run folder (`runfolder.py`)."""

from .args import TrainArgs

__all__ = ["TrainArgs"]
