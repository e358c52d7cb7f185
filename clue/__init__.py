"""CLUE harness, importable as `mengzi.clue` (the folder sits at the repository top level; see pyproject.toml).

The ten tasks, their loaders, heads, official metrics and submission writer arrive with issue #4; until then
`mengzi clue` says it is not available yet.
"""

TASKS = ("afqmc", "tnews", "iflytek", "ocnli", "cmnli", "cluewsc2020", "csl", "cmrc2018", "chid", "c3")
