"""One image file -> one model input sample, and the batch a pipeline hands out.

- `ImageTransform` turns one file or one opened image into one input sample: float32
  CHW normalised on the host, or, for a `--input uint8` model, the uint8 HWC crop (the
  graph normalises; no float is ever made on the host).
- `decode_into` is the one place a file's failure becomes its reason: the host pipeline's
  workers, Ray's decode stage and the GPU pipeline's Pillow fallback all call it.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ...core.errors import UserError
from ...core.manifest import InputSpec
from ...core.preprocess import ImageError, Preprocessing, load_and_preprocess, preprocess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageTransform:
    """One image -> one model input sample, as the model's manifest says.

    `size` (H, W) defaults to the square `input_size`. `reduced_decode` trades exactness
    for speed on large JPEGs (see `runtime.core.preprocess.open_image`); off by default.
    """

    preprocessing: Preprocessing
    input: InputSpec = field(default_factory=InputSpec)
    size: tuple[int, int] | None = None
    reduced_decode: bool = False

    @property
    def hw(self) -> tuple[int, int]:
        return self.size or (self.preprocessing.input_size, self.preprocessing.input_size)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return self.input.shape(1, *self.hw)[1:]  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint8 if self.input.is_uint8 else np.float32)

    def from_image(self, img: Image.Image) -> np.ndarray:
        """An opened image (any mode) -> one sample; EXIF orientation applied as configured."""
        return preprocess(img, self.preprocessing, self.hw, self.input.is_uint8)

    def from_path(self, path: str | Path) -> np.ndarray:
        """A file -> one sample; raises ImageError (a UserError) for a file that cannot be used."""
        return load_and_preprocess(path, self.preprocessing, self.hw, self.reduced_decode, self.input.is_uint8)

    def empty_batch(self, batch: int) -> np.ndarray:
        """A zeroed [batch, *sample] array of the right dtype (for callers without a buffer)."""
        return np.zeros((batch, *self.sample_shape), dtype=self.dtype)


@dataclass
class Batch:
    """One batch of inputs, in order: `images[r]` is the sample of `paths[ok[r]]`.

    `images` is a view of the pipeline's output buffer, valid until the next batch."""

    paths: list[str]
    images: np.ndarray | None  # [len(ok), *sample]; None when nothing decoded
    ok: list[int]  # indices into paths that decoded
    errors: dict[int, str]  # index into paths -> reason


def check_buffer(out: np.ndarray, transform: ImageTransform, batch: int) -> None:
    """Raise UserError unless `out` can hold a batch: [>= batch, *sample], the right dtype,
    C-contiguous and writeable."""
    want = (batch, *transform.sample_shape)
    if (
        not isinstance(out, np.ndarray)
        or out.ndim != len(want)
        or out.shape[0] < batch
        or tuple(out.shape[1:]) != want[1:]
        or out.dtype != transform.dtype
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        got = f"{getattr(out, 'shape', type(out).__name__)} {getattr(out, 'dtype', '')}"
        raise UserError(
            f"batch buffer | got {got} | expected a writeable C-contiguous {transform.dtype} array of shape {want}"
        )


def decode_into(transform: ImageTransform, path: str, dest: np.ndarray) -> str | None:
    """Write the sample of `path` into `dest`; the reason it cannot be used (without the
    path, which the caller's record carries), or None. Local and Ray classification both
    decode through here, so they treat a bad file alike."""
    try:
        dest[...] = transform.from_path(path)
    except ImageError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except (ArithmeticError, IndexError, MemoryError, RuntimeError, TypeError, struct.error) as exc:
        # What Pillow's decoders raise on some malformed files beyond OSError/ValueError:
        # that file's problem, reported with it, not the end of the run. The same types
        # can come from a bug here, so the traceback is kept at DEBUG (--verbose).
        log.debug("decoding %s raised %s", path, type(exc).__name__, exc_info=True)
        return f"cannot decode ({type(exc).__name__}: {exc})"
    return None
