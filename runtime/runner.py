"""The runner life cycle shared by every backend: activate, infer, deactivate."""

from __future__ import annotations

import abc
from pathlib import Path
from types import TracebackType

import numpy as np

from .errors import UserError


class Runner(abc.ABC):
    """Runs one model file. `activate()` allocates, `infer()` runs, `deactivate()` frees;
    use it as a context manager. Safe to share between threads (see each backend)."""

    backend: str = "?"

    def __init__(self, model_file: str | Path) -> None:
        self.model_file = Path(model_file)
        self._active = False

    @property
    def is_active(self) -> bool:
        return self._active

    def activate(self) -> Runner:
        if not self._active:
            try:
                self._activate()
            except BaseException:
                self._deactivate()  # free whatever was allocated before the failure
                raise
            self._active = True
        return self

    def deactivate(self) -> None:
        if self._active:
            self._active = False
            self._deactivate()

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deactivate()

    def infer(self, images: np.ndarray) -> np.ndarray:
        """float32 NCHW images -> float32 logits [N, classes]."""
        if not self._active:
            raise UserError(f"{type(self).__name__}.infer called before activate() (use `with runtime.load(...)`)")
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1] != 3:
            shape = getattr(images, "shape", type(images).__name__)
            raise UserError(f"input 'images' | got {shape} | expected a float32 array [batch, 3, height, width]")
        if images.dtype != np.float32:
            raise UserError(f"input 'images' | got dtype {images.dtype} | expected float32")
        if images.shape[0] == 0:
            raise UserError("input 'images' | got an empty batch | expected at least one image")
        return self._infer(np.ascontiguousarray(images))

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether an input of this shape can run (engines have profile ranges)."""
        return True

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _deactivate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, images: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str:
        return f"{self.backend}:{self.model_file.name}"
