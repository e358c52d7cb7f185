"""Deployment, importable as `mengzi.export` (the folder sits at the repository top level; see pyproject.toml).

ONNX export, ONNX Runtime optimisation, the torch-free `Predictor` and the HTTP server arrive with issue #5.
This package must never import torch at module level: the deployment runtime runs without it.
"""
