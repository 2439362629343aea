"""Image decoding and preprocessing, torch-free (Pillow + numpy).

This is the single implementation used by golden-input export, calibration and the
runtime, so all three see identical tensors. It matches timm's eval transform:
resize the shorter side to floor(size / crop_pct) (Pillow, antialiased), centre-crop,
scale to [0, 1], normalise. Two deliberate differences from a bare `Image.open`:
the EXIF orientation is applied (phone photos are stored sideways), unless the model's
preprocessing says `exif_transpose: false`; and JPEGs are decoded at full size unless a
caller asks for the faster, not exact, reduced decode.
"""

from __future__ import annotations

import logging
import math
import os
import stat
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from .errors import UserError
from .preprocessing import Preprocessing

log = logging.getLogger(__name__)

# Pillow warns past 89 MP and raises past twice that; a classifier input never needs
# more, and a larger header is the signature of a decompression bomb.
MAX_PIXELS = 89_478_485
# The resize may make no more pixels than Pillow lets a file decode to (about 0.7 GB as
# RGBX). Without it a tiny file with an extreme aspect ratio (a 225-byte 50000x1 PNG)
# asks for a resize to 256 x 12.8 million pixels: gigabytes from a header.
MAX_RESIZED_PIXELS = 2 * MAX_PIXELS
ORIENTATION = 0x0112  # the EXIF tag that says how the camera was held


class ImageError(UserError):
    """An image that cannot be decoded (corrupt, truncated, not an image, too large)."""


# What Pillow's decoders raise on some malformed files beyond OSError/ValueError: that
# file's problem, reported with it, not the end of the run. The same types can come from a
# bug, so `decoder_failure` keeps the traceback at DEBUG (--verbose).
DECODER_FAILURES = (ArithmeticError, IndexError, MemoryError, RuntimeError, TypeError, struct.error)


def decoder_failure(path: str | Path, exc: BaseException) -> str:
    """The skip reason for one of DECODER_FAILURES raised while decoding `path`."""
    log.debug("decoding %s raised %s", path, type(exc).__name__, exc_info=exc)
    return f"cannot decode ({type(exc).__name__}: {exc})"


def pixel_limit_error(width: int, height: int) -> str | None:
    """Why a `width` x `height` image is refused before decoding (MAX_PIXELS), or None."""
    if width * height <= MAX_PIXELS:
        return None
    return f"{width}x{height} is over the {MAX_PIXELS:,}-pixel limit (refused as a possible decompression bomb)"


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, scaling 16-bit and float greyscale instead of clipping."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit (or 32-bit integer) greyscale: Pillow's convert("L") clips rather than
        # scales, which turns most 16-bit photos white. Scale the full range to 8 bits.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    elif mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img if img.mode == "RGB" else img.convert("RGB")


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def open_regular(path: str | Path) -> BinaryIO:
    """`path` opened for reading, never blocking: it is opened with O_NONBLOCK and must be a
    regular file once open (a FIFO or device swapped in after the folder was listed would
    block a plain open, or a read, for ever); else ImageError. Every image file is opened here."""
    try:
        fh = open(path, "rb", opener=_nonblocking)  # noqa: SIM115  # returned open, for the caller's `with`
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: unreadable image ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ImageError(f"{path}: not a regular file (a folder, FIFO or device)")
        os.set_blocking(fh.fileno(), True)
    except BaseException:
        fh.close()
        raise
    return fh


def open_image(path: str | Path, min_side: int | None = None, exif_transpose: bool = True) -> Image.Image:
    """Decode `path` fully into an RGB image, or raise ImageError.

    `exif_transpose` applies the EXIF orientation. `min_side` asks for the reduced
    decode: JPEGs are decoded by Pillow's draft mode (DCT scaling) to no less than twice
    that shorter side. It is several times faster on large photos but NOT exact: the
    crop then differs from timm's eval transform (by up to ~0.6 in normalised units), so
    accuracy is no longer comparable with published figures. Off unless asked for.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_regular(path) as fh, Image.open(fh) as img:
                too_large = pixel_limit_error(img.width, img.height)
                if too_large:
                    raise ImageError(f"{path}: {too_large}")
                if min_side and img.format == "JPEG":
                    short = min(img.size)
                    want = 2 * min_side
                    if short > want:
                        scale = want / short
                        img.draft("RGB", (math.ceil(img.width * scale), math.ceil(img.height * scale)))
                img.load()
                if exif_transpose and img.getexif().get(ORIENTATION, 1) != 1:
                    return to_rgb(ImageOps.exif_transpose(img))
                return to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc})") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except Image.UnidentifiedImageError:  # Pillow names the file object; name the file
        raise ImageError(f"{path}: unreadable image (cannot identify image file {str(path)!r})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # UnidentifiedImageError and truncated-file errors are OSErrors.
        raise ImageError(f"{path}: unreadable image ({exc})") from None


def resized_size(iw: int, ih: int, cfg: Preprocessing, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) an iw x ih image is resized to before the centre crop of `size` (H, W);
    ImageError when that is over MAX_RESIZED_PIXELS (an extreme aspect ratio)."""
    height, width = size or (cfg.input_size, cfg.input_size)
    scale_h = math.floor(height / cfg.crop_pct)
    scale_w = math.floor(width / cfg.crop_pct)
    if height == width:
        # timm / torchvision: shorter side -> scale, longer side truncated proportionally
        if iw <= ih:
            new_w, new_h = scale_w, int(scale_w * ih / iw)
        else:
            new_w, new_h = int(scale_h * iw / ih), scale_h
    else:
        ratio = max(scale_h / ih, scale_w / iw)
        new_w, new_h = max(scale_w, round(iw * ratio)), max(scale_h, round(ih * ratio))
    if new_w * new_h > MAX_RESIZED_PIXELS:
        raise ImageError(
            f"{iw}x{ih} would be resized to {new_w}x{new_h}, over the {MAX_RESIZED_PIXELS:,}-pixel limit "
            f"(aspect ratio {max(iw, ih) / min(iw, ih):.0f}:1 is too extreme for a {width}x{height} input)"
        )
    return new_w, new_h


def resize_and_crop(img: Image.Image, cfg: Preprocessing, size: tuple[int, int] | None = None) -> Image.Image:
    """Resize so the crop window (size / crop_pct) is covered, then centre-crop `size` (H, W).

    The resized size is checked first (`resized_size`), so memory and work stay bounded."""
    height, width = size or (cfg.input_size, cfg.input_size)
    iw, ih = img.size
    new_w, new_h = resized_size(iw, ih, cfg, size)
    if (new_w, new_h) != (iw, ih):
        img = img.resize((new_w, new_h), getattr(Image.Resampling, cfg.interpolation.upper()))
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    return img.crop((left, top, left + width, top + height))


def to_tensor(img: Image.Image, cfg: Preprocessing) -> np.ndarray:
    """RGB image -> normalised float32 CHW array.

    The same float32 operations in the same order as the graph of a `--input uint8`
    export (cast, times 1/255, minus mean, over std), so both give identical tensors."""
    arr = np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)
    arr = (arr - np.asarray(cfg.mean, dtype=np.float32)) / np.asarray(cfg.std, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def to_uint8(img: Image.Image) -> np.ndarray:
    """RGB image -> uint8 HWC array, for models that normalise inside the graph."""
    return np.asarray(img, dtype=np.uint8)


def upright(img: Image.Image, cfg: Preprocessing) -> Image.Image:
    """An image opened elsewhere, turned as its EXIF orientation says (when `cfg` asks)."""
    if cfg.exif_transpose and img.getexif().get(ORIENTATION, 1) != 1:
        return ImageOps.exif_transpose(img)
    return img


def reduced_decode_side(cfg: Preprocessing, size: tuple[int, int] | None = None) -> int:
    """The shorter side the resize goes to: what the reduced decode must keep twice of."""
    return math.floor(min(size or (cfg.input_size, cfg.input_size)) / cfg.crop_pct)


def to_sample(
    rgb: Image.Image, cfg: Preprocessing, size: tuple[int, int] | None = None, uint8: bool = False
) -> np.ndarray:
    """An upright RGB image -> one model input sample: resize and centre-crop `size` (H, W;
    default the square input size), then float32 CHW normalised, or the uint8 HWC crop for
    a model that normalises inside its graph. The one definition of the transform:
    `preprocess`, `load_and_preprocess` and runtime.app.images.pipeline.ImageTransform call it."""
    crop = resize_and_crop(rgb, cfg, size)
    return to_uint8(crop) if uint8 else to_tensor(crop, cfg)


def preprocess(
    img: Image.Image, cfg: Preprocessing, size: tuple[int, int] | None = None, uint8: bool = False
) -> np.ndarray:
    """An opened image (any mode) -> one sample; EXIF orientation applied as `cfg` says."""
    return to_sample(to_rgb(upright(img, cfg)), cfg, size, uint8)


def load_and_preprocess(
    path: str | Path,
    cfg: Preprocessing,
    size: tuple[int, int] | None = None,
    reduced_decode: bool = False,
    uint8: bool = False,
) -> np.ndarray:
    """File -> one sample ready for the model; raises ImageError for bad files.

    Decoding is exact unless `reduced_decode` (see `open_image`)."""
    min_side = reduced_decode_side(cfg, size) if reduced_decode else None
    return to_sample(open_image(path, min_side=min_side, exif_transpose=cfg.exif_transpose), cfg, size, uint8)
