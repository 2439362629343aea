"""Image decoding and preprocessing, torch-free (Pillow + numpy).

This is the single implementation used by golden-input export, calibration and the
runtime, so all three see identical tensors. It matches timm's eval transform:
resize the shorter side to floor(size / crop_pct) (Pillow, antialiased), centre-crop,
scale to [0, 1], normalise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Pillow warns past 89 MP and raises past twice that; a classifier input never needs
# more, and a larger header is the signature of a decompression bomb.
MAX_PIXELS = 89_478_485

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ImageError(UserError):
    """An image that cannot be decoded (corrupt, truncated, not an image, too large)."""


@dataclass(frozen=True)
class Preprocessing:
    """The `preprocessing` block of model.json."""

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        try:
            cfg = cls(
                input_size=int(d["input_size"]),
                crop_pct=float(d["crop_pct"]),
                interpolation=str(d["interpolation"]),
                mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
                std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"model.json: bad preprocessing block ({exc!r})") from None
        if cfg.interpolation not in INTERPOLATIONS:
            raise UserError(f"model.json: unknown interpolation {cfg.interpolation!r}")
        if not 0 < cfg.crop_pct <= 1:
            raise UserError(f"model.json: crop_pct must be in (0, 1], got {cfg.crop_pct}")
        return cfg


def _to_rgb(img: Image.Image) -> Image.Image:
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


def open_image(path: str | Path, min_side: int | None = None) -> Image.Image:
    """Decode `path` fully into an RGB image, or raise ImageError.

    With `min_side`, JPEGs are decoded by Pillow's draft mode (DCT scaling) to no less
    than twice that shorter side, which is exact enough for the later antialiased resize.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: {img.width}x{img.height} is over the {MAX_PIXELS:,}-pixel limit "
                        "(refused as a possible decompression bomb)"
                    )
                if min_side and img.format == "JPEG":
                    short = min(img.size)
                    want = 2 * min_side
                    if short > want:
                        scale = want / short
                        img.draft("RGB", (math.ceil(img.width * scale), math.ceil(img.height * scale)))
                img.load()
                return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a possible decompression bomb ({exc})") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # UnidentifiedImageError and truncated-file errors are OSErrors.
        raise ImageError(f"{path}: unreadable image ({exc})") from None


def resize_and_crop(img: Image.Image, cfg: Preprocessing, size: tuple[int, int] | None = None) -> Image.Image:
    """Resize so the crop window (size / crop_pct) is covered, then centre-crop `size` (H, W)."""
    height, width = size or (cfg.input_size, cfg.input_size)
    scale_h = math.floor(height / cfg.crop_pct)
    scale_w = math.floor(width / cfg.crop_pct)
    iw, ih = img.size
    if height == width:
        # timm / torchvision: shorter side -> scale, longer side truncated proportionally
        if iw <= ih:
            new_w, new_h = scale_w, int(scale_w * ih / iw)
        else:
            new_w, new_h = int(scale_h * iw / ih), scale_h
    else:
        ratio = max(scale_h / ih, scale_w / iw)
        new_w, new_h = max(scale_w, round(iw * ratio)), max(scale_h, round(ih * ratio))
    if (new_w, new_h) != (iw, ih):
        img = img.resize((new_w, new_h), INTERPOLATIONS[cfg.interpolation])
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    return img.crop((left, top, left + width, top + height))


def to_tensor(img: Image.Image, cfg: Preprocessing) -> np.ndarray:
    """RGB image -> normalised float32 CHW array."""
    arr = np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)
    arr = (arr - np.asarray(cfg.mean, dtype=np.float32)) / np.asarray(cfg.std, dtype=np.float32)
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def preprocess(img: Image.Image, cfg: Preprocessing, size: tuple[int, int] | None = None) -> np.ndarray:
    return to_tensor(resize_and_crop(_to_rgb(img), cfg, size), cfg)


def load_and_preprocess(path: str | Path, cfg: Preprocessing, size: tuple[int, int] | None = None) -> np.ndarray:
    """File -> float32 CHW array ready for the model; raises ImageError for bad files."""
    short = math.floor(min(size or (cfg.input_size, cfg.input_size)) / cfg.crop_pct)
    return preprocess(open_image(path, min_side=short), cfg, size)


def find_images(inputs: list[str] | list[Path]) -> list[Path]:
    """Files, directories (recursive) and glob patterns -> sorted image paths, deduplicated."""
    import glob

    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(glob.glob(str(item), recursive=True))
            if not matches:
                raise UserError(f"{item}: no such file, directory or matching glob")
            found.extend(Path(m) for m in matches if Path(m).is_file())
    seen: set[Path] = set()
    unique = []
    for p in found:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique
