"""ONNX Runtime backend: the default where TensorRT is absent (CPU here, CUDA where
onnxruntime-gpu is installed)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError, require
from .manifest import INPUT_NAME, OUTPUT_NAME
from .runner import Runner

log = logging.getLogger(__name__)

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def default_providers() -> list[str]:
    ort = require("onnxruntime", "pip install onnxruntime (or onnxruntime-gpu on a CUDA machine)")
    available = set(ort.get_available_providers())
    return [p for p in PREFERRED_PROVIDERS if p in available]


class OnnxRuntimeRunner(Runner):
    """InferenceSession.run is thread-safe, so one runner may serve several threads."""

    backend = "onnxruntime"

    def __init__(self, model_file: str | Path, providers: list[str] | None = None, threads: int = 0) -> None:
        super().__init__(model_file)
        self.providers = providers
        self.threads = threads
        self._session: Any = None

    def _activate(self) -> None:
        ort = require("onnxruntime", "pip install onnxruntime (or onnxruntime-gpu on a CUDA machine)")
        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        providers = self.providers or default_providers()
        try:
            self._session = ort.InferenceSession(str(self.model_file), options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{self.model_file}: ONNX Runtime cannot load it ({first})") from None
        names = [i.name for i in self._session.get_inputs()]
        if names != [INPUT_NAME]:
            raise UserError(f"{self.model_file}: inputs {names} | expected ['{INPUT_NAME}']")
        used = self._session.get_providers()
        if used[0] != providers[0]:
            log.warning(
                "ONNX Runtime asked for %s but runs on %s (is the GPU build's CUDA/TensorRT missing?)",
                providers[0],
                used[0],
            )
        else:
            log.debug("onnxruntime session on %s", ", ".join(used))

    def _deactivate(self) -> None:
        self._session = None  # safe on a partly activated runner too

    def _infer(self, images: np.ndarray) -> np.ndarray:
        try:
            (logits,) = self._session.run([OUTPUT_NAME], {INPUT_NAME: images})
        except Exception as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"input 'images' | got shape {images.shape} | ONNX Runtime refused it ({first})") from None
        return np.asarray(logits, dtype=np.float32)

    @property
    def session(self) -> Any:
        """The underlying InferenceSession (for benchmarks that call it directly)."""
        return self._session
