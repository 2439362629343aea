"""The runner life cycle shared by every backend: activate, infer, deactivate.

What `infer` takes is what the model takes (runtime.core.manifest.InputSpec): float32 NCHW
`[batch, 3, height, width]` by default, or uint8 NHWC `[batch, height, width, 3]` for a
model exported with `--input uint8`. Anything else is refused in one line that names the
input and what was expected. Inputs are numpy arrays, or DLPack tensors: on the host they
become numpy arrays; on a GPU, backends that can read device memory (TensorRT) run them
where they are, without a round trip through the host.
"""

from __future__ import annotations

import abc
from collections.abc import Generator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .errors import UserError
from .manifest import INPUT_NAME, InputSpec


def expected_input(spec: InputSpec) -> str:
    return "uint8 NHWC [batch, height, width, 3]" if spec.is_uint8 else "float32 NCHW [batch, 3, height, width]"


def check_input(shape: tuple[int, ...], dtype: str, spec: InputSpec) -> None:
    """Raise UserError unless (shape, dtype) is a batch this model takes."""
    expected = expected_input(spec)
    if spec.is_uint8:
        hint = " (this model was exported with --input uint8: pass the decoded RGB pixels, not normalised floats)"
    else:
        hint = " (this model normalises on the host: pass float32 NCHW, or export with --input uint8 for raw pixels)"
    channels = 3 if spec.is_uint8 else 1
    if len(shape) != 4 or shape[channels] != 3:
        raise UserError(f"input '{INPUT_NAME}' | got shape {tuple(shape)} ({dtype}) | expected {expected}{hint}")
    if dtype != spec.dtype:
        raise UserError(f"input '{INPUT_NAME}' | got dtype {dtype} | expected {expected}{hint}")
    if shape[0] == 0:
        raise UserError(f"input '{INPUT_NAME}' | got an empty batch | expected at least one image")


class Runner(abc.ABC):
    """Runs one model file. `activate()` allocates, `infer()` runs, `deactivate()` frees;
    use it as a context manager. Safe to share between threads (see each backend)."""

    backend: str = "?"

    def __init__(self, model_file: str | Path) -> None:
        self.model_file = Path(model_file)
        self._active = False
        self.input_spec = InputSpec()  # what the model takes; each backend reads it from the model

    @property
    def is_active(self) -> bool:
        return self._active

    def activate(self) -> Runner:
        if not self._active:
            try:
                self._activate()
                self._check_classes()
            except BaseException:
                self._deactivate()  # free whatever was allocated before the failure
                raise
            self._active = True
        return self

    def output_classes(self) -> int | None:
        """The width of the model's `logits` output, once active; None where the graph leaves it open."""
        return None

    def _check_classes(self) -> None:
        """The one check that the graph and model.json agree on the class count, run by every
        command as it activates a runner: top-k, labels and accuracy all read model.json's."""
        from .manifest import find_manifest

        width = self.output_classes()
        manifest = find_manifest(self.model_file) if width is not None else None
        declared = manifest.declared_classes if manifest else None
        if manifest and declared is not None and width != declared:
            raise UserError(
                f"{self.model_file}: its output 'logits' has {width} classes, but {manifest.path} says {declared}; "
                "the graph and model.json come from different exports"
            )

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

    def _require_active(self, what: str = "infer") -> None:
        if not self._active:
            raise UserError(f"{type(self).__name__}.{what} called before activate() (use `with runtime.load(...)`)")

    def infer(self, images: Any) -> np.ndarray:
        """One batch of images (see the module docstring) -> float32 logits [N, classes]."""
        self._require_active()
        if isinstance(images, np.ndarray):
            check_input(images.shape, str(images.dtype), self.input_spec)
            return self._infer(images)
        from .dlpack import dlpack_device, is_gpu  # a tensor from CuPy, torch...: read only when one comes

        device = dlpack_device(images)
        if device is None:
            raise UserError(
                f"input '{INPUT_NAME}' | got a {type(images).__name__} | expected a numpy array or a DLPack tensor "
                f"(CuPy, torch) of {expected_input(self.input_spec)}"
            )
        if not is_gpu(device):
            host = np.from_dlpack(images)
            check_input(host.shape, str(host.dtype), self.input_spec)
            return self._infer(host)
        return self._infer_device(images)

    def infer_batches(self, batches: Iterable[Any]) -> Generator[np.ndarray, None, None]:
        """Logits for each batch in turn. Backends that can overlap (TensorRT) copy batch
        i+1 to the GPU while batch i runs; a batch's memory may be reused by the caller as
        soon as the next batch is asked for."""
        for images in batches:
            yield self.infer(images)

    def host_buffer(self, shape: tuple[int, ...], dtype: str | None = None) -> np.ndarray:
        """A preallocated host array for assembling batches (default dtype: the model's input).

        TensorRT returns page-locked memory that it copies to the GPU without staging; the
        array lives until the runner is deactivated. Any C-contiguous array works with
        `infer`; this one only saves a host copy."""
        self._require_active("host_buffer")
        return np.empty(shape, np.dtype(dtype or self.input_spec.dtype))

    def check_requirements(self) -> None:
        """Raise UserError for what `activate()` would refuse before touching a device: a
        missing file, a missing library. Allocates nothing; `classify --ray` calls it on
        the driver so that such a refusal is one line before Ray starts."""
        if not self.model_file.is_file():
            raise UserError(f"{self.model_file}: no such file")

    def accepts(self, shape: tuple[int, ...]) -> bool:
        """Whether an input of this shape can run (engines have profile ranges)."""
        return True

    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _deactivate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, images: np.ndarray) -> np.ndarray: ...

    def _infer_device(self, images: Any) -> np.ndarray:
        raise UserError(
            f"input '{INPUT_NAME}' | got a {type(images).__name__} on a GPU | the {self.backend} runner takes host "
            "arrays: copy it to the host first, or run a TensorRT engine, which reads GPU tensors in place"
        )

    def describe(self) -> str:
        return f"{self.backend}:{self.model_file.name}"
