"""Batched decode with nvImageCodec, under the CPU path's rules.

One `BatchDecoder` per pipeline holds one nvImageCodec `Decoder`. For each batch of files:

- each file's header is read (`CodeStream`): the size is checked against the same pixel
  limit as `runtime.core.preprocess.open_image` before anything is decoded, and (given
  the preprocessing) against `resized_size`'s limit on what the resize may make, so an
  extreme aspect ratio (a 50000x1 PNG) is refused as on the CPU path, before the resize
  tables are built; every decoded image's upright size is checked again;
- 8-bit greyscale and YCbCr JPEGs (baseline or progressive, any subsampling) are decoded
  together in one call on the given CUDA stream, as RGB, with the EXIF orientation applied
  as configured; libjpeg's "fancy" upsampling is asked for, as Pillow's decoder uses it;
- everything else (PNG, GIF, WebP, TIFF, CMYK/YCCK JPEGs, 16-bit, unreadable headers,
  any file the batched call returns None for, and every file of a batched call that
  raises) goes through Pillow file by file, so it is decoded, or refused, exactly as on
  the CPU path.

`device_id=None` selects nvImageCodec's CPU backend (libjpeg-turbo), which runs without a
GPU: tests use it to check the rules and the pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ....core.preprocess import (
    DECODER_FAILURES,
    ORIENTATION,
    ImageError,
    Preprocessing,
    decoder_failure,
    open_image,
    open_regular,
    pixel_limit_error,
    resized_size,
)
from . import nvimgcodec

log = logging.getLogger(__name__)
# GPU memory one batched decode call may fill with decoded pixels (plus nvImageCodec's own
# buffers): 256 photos of 12 MP would be about 9 GiB in one call; larger batches are split.
MAX_DECODE_BYTES = 2 << 30


@dataclass
class DecodeResult:
    """One file's outcome: `image` (an nvImageCodec image, HxWx3 uint8 RGB), or `pixels`
    (host uint8 HxWx3 from Pillow), or `error` (why it is skipped, without the path)."""

    image: Any = None
    pixels: np.ndarray | None = None
    error: str | None = None


def decode_groups(sizes: list[int], max_bytes: int) -> list[list[int]]:
    """Indices of `sizes` (decoded bytes) in order, grouped so that each batched decode call
    allocates at most `max_bytes` (one image larger than that is decoded alone)."""
    groups: list[list[int]] = []
    total = max_bytes + 1
    for i, n in enumerate(sizes):
        if total + n > max_bytes:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += n
    return groups


def _fits_batched_decode(stream: Any) -> bool:
    """JPEGs nvImageCodec decodes as Pillow does: 8-bit, 1 or 3 components (no CMYK/YCCK)."""
    return stream.codec_name == "jpeg" and stream.precision in (0, 8) and stream.num_channels in (1, 3)


def _turned(path: str) -> bool:
    """Whether the file's EXIF orientation (5..8) swaps width and height (Pillow reads it)."""
    from PIL import Image

    try:
        with open_regular(path) as fh, Image.open(fh) as img:
            return int(img.getexif().get(ORIENTATION, 1)) in (5, 6, 7, 8)
    except Exception:  # no readable EXIF: the stored orientation is the upright one
        return False


class BatchDecoder:
    """nvImageCodec decode of lists of files (see the module docstring).

    `cfg` and `size` (H, W) are the preprocessing the images are resized for: with them,
    sizes the resize refuses (`resized_size`) are skip reasons; without, none are."""

    def __init__(
        self,
        exif_transpose: bool = True,
        device_id: int | None = 0,
        cfg: Preprocessing | None = None,
        size: tuple[int, int] | None = None,
        max_bytes: int = MAX_DECODE_BYTES,
    ) -> None:
        nv = nvimgcodec()
        self.device_id, self.cfg, self.size, self.max_bytes = device_id, cfg, size, max_bytes
        # Files the batched decode should have decoded but that went through Pillow (it raised
        # or returned None): reported at the end of a run, as a run may slow to CPU speed.
        self.fallbacks, self.last_failure = 0, ""
        if device_id is None:
            self._decoder = nv.Decoder(device_id=nv.NVIMGCODEC_DEVICE_CPU_ONLY, backends=[nv.Backend(nv.CPU_ONLY)])
        else:
            self._decoder = nv.Decoder(device_id=device_id, options=":fancy_upsampling=1")
        self._params = nv.DecodeParams(apply_exif_orientation=exif_transpose, color_spec=nv.ColorSpec.SRGB)
        self._nv = nv
        self.exif_transpose = exif_transpose
        self._held: list[bytes] = []  # the bytes behind the code streams of the last batch

    def header(self, path: str) -> tuple[Any, str | None]:
        """(code stream or None, error or None): None, None means "let Pillow decide"."""
        try:  # the bytes, not the path: nvImageCodec's own open would block on a FIFO
            with open_regular(path) as fh:
                data = fh.read()
        except ImageError as exc:
            return None, str(exc).removeprefix(f"{path}: ")
        except OSError as exc:
            return None, f"unreadable image ({exc.strerror or exc})"
        try:
            stream = self._nv.CodeStream(data)
            width, height = int(stream.width), int(stream.height)  # parsed lazily: may raise too
        except Exception:  # an unknown or broken header: Pillow reports it in its words
            return None, None
        too_large = pixel_limit_error(width, height)
        if too_large:
            return None, too_large
        error = self.resize_error(width, height)
        if error is not None and self.exif_transpose and _turned(path):
            error = self.resize_error(height, width)  # the header's size is the stored one, not the upright one
        if error is not None:
            return None, error
        if not _fits_batched_decode(stream):
            return None, None
        self._held.append(data)
        return stream, None

    def resize_error(self, width: int, height: int) -> str | None:
        """Why an upright `width` x `height` image cannot be resized for the model (the CPU
        path's words), or None."""
        if self.cfg is None:
            return None
        try:
            resized_size(width, height, self.cfg, self.size)
        except ImageError as exc:
            return str(exc)
        return None

    def decode(self, paths: list[str], cuda_stream: int = 0) -> list[DecodeResult]:
        """Decode `paths`; results in the same order, one per path."""
        out = [DecodeResult() for _ in paths]
        self._held = []  # the last batch's bytes live until the next: its decode may still be on the stream
        batched: list[int] = []
        streams: list[Any] = []
        for i, path in enumerate(paths):
            stream, error = self.header(path)
            if error is not None:
                out[i].error = error
            elif stream is not None:
                batched.append(i)
                streams.append(stream)
        for group in decode_groups([int(s.width) * int(s.height) * 3 for s in streams], self.max_bytes):
            images = self._batched([streams[g] for g in group], cuda_stream)
            for g, image in zip(group, images, strict=True):
                out[batched[g]].image = image
                self.fallbacks += image is None
        for i, path in enumerate(paths):
            if out[i].error is None and out[i].image is None:
                out[i] = self.pillow(path)
            found = out[i].pixels if out[i].pixels is not None else out[i].image
            if found is not None:  # the decoded, upright size: what the resize will be asked for
                height, width = (int(n) for n in found.shape[:2])
                error = self.resize_error(width, height)
                if error is not None:
                    out[i] = DecodeResult(error=error)
        return out

    def _batched(self, streams: list[Any], cuda_stream: int) -> list[Any]:
        try:
            return list(self._decoder.decode(streams, params=self._params, cuda_stream=cuda_stream))
        except Exception as exc:  # nvImageCodec's own failure (out of memory too): Pillow decodes them
            self.last_failure = f"{type(exc).__name__}: {exc}"
            log.debug("nvImageCodec's batched decode raised; its %d file(s) go through Pillow", len(streams), exc_info=True)
            return [None] * len(streams)

    def pillow(self, path: str) -> DecodeResult:
        """The CPU path's decode of one file."""
        try:
            img = open_image(Path(path), exif_transpose=self.exif_transpose)
        except ImageError as exc:
            return DecodeResult(error=str(exc).removeprefix(f"{path}: "))
        except DECODER_FAILURES as exc:  # that file's problem, not the run's
            return DecodeResult(error=decoder_failure(path, exc))
        return DecodeResult(pixels=np.asarray(img, dtype=np.uint8))
