"""CLUE harness, importable as `mengzi.clue` (the folder sits at the repository top level; see pyproject.toml).

Data layer and submission files (import them from their modules; this package imports neither torch nor datasets):
- `mengzi.clue.tasks`: the task registry (`TASKS`, `get_task`, `ClueTask`) and the loaders (`load_task`, `load_file`,
  `task_file`, `load_hub`, `from_hub_rows`) giving one `datasets.Dataset` schema per kind; `ClueDataError`;
- `mengzi.clue.submission`: `write_predictions`, `predict_name_for`, `build_submission`, `validate_submission`;
- `readers.py` / `examples.py` / `hub.py`: strict JSON reading and the per-layout conversions behind the loaders.
`TASKS` below is just the task names, in registry order.
"""

TASKS = ("afqmc", "tnews", "iflytek", "ocnli", "cmnli", "cluewsc2020", "csl", "cmrc2018", "chid", "c3")
