"""TensorRT backend (both flavours): the runner (runner.py) and, beside it, its lanes,
copy/execute schedule, launches and engine checks."""

from __future__ import annotations

from .runner import TensorRTOptions, TensorRTRunner

__all__ = ["TensorRTOptions", "TensorRTRunner"]
