"""A sweep of the host-built kernels against the numpy reference, Pillow and to_tensor
(used by tests/runtime/test_kernel_host.py). Run as a module (`python -m
tests.kernel_host.sweep --sanitize`) it builds the kernels with ASan/UBSan; its process must
start with libasan preloaded (host_cupy.sanitizer_env)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import runtime.app.images.gpu.resize as resize
from runtime.core import resample
from runtime.core.preprocess import Preprocessing, resize_and_crop, to_tensor

from . import host_cupy

BICUBIC = Preprocessing(224, 0.875, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
BILINEAR = Preprocessing(224, 0.96, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _pixels(hw: tuple[int, int], seed: int) -> np.ndarray:
    """Noise with saturated stripes: overshoot past 0 and 255 and ties in the rounding."""
    px = np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)
    px[::3, ::2] = 255
    px[1::4, 1::3] = 0
    return px


def mismatches(
    cp: Any, cfg: Preprocessing, sizes: list[tuple[int, int]], size: tuple[int, int] | None = None, pillow: bool = True
) -> list[str]:
    """Every size whose kernel output differs from the reference (and Pillow), resized one
    by one and as one mixed batch of pitched and channel-reversed sources."""
    resizer = resize.DeviceResizer(cfg, size)
    oh, ow = size or (cfg.input_size, cfg.input_size)
    bad: list[str] = []
    pixels = [_pixels(hw, k) for k, hw in enumerate(sizes)]
    wants = [resample.resize_crop(px, cfg, size) for px in pixels]
    out = cp.full((len(sizes) + 1, oh, ow, 3), 7, dtype=np.uint8)
    sources = []
    for k, px in enumerate(pixels):
        one = cp.zeros((1, oh, ow, 3), dtype=np.uint8)
        resizer.into(cp.asarray(px), one[0])
        if not np.array_equal(one[0], wants[k]):
            bad.append(f"{px.shape[:2]} alone")
        if pillow and not np.array_equal(wants[k], np.asarray(resize_and_crop(Image.fromarray(px), cfg, size))):
            bad.append(f"{px.shape[:2]} reference vs Pillow")
        if k % 3 == 1:  # a row pitch wider than the row, as decoders allocate
            padded = cp.zeros((px.shape[0], px.shape[1] + 5, 3), dtype=np.uint8)
            padded[:, : px.shape[1]] = px
            sources.append(padded[:, : px.shape[1]])
        elif k % 3 == 2:  # channels reversed in memory (a BGR decode viewed as RGB): copied first
            sources.append(cp.asarray(np.ascontiguousarray(px[..., ::-1]))[..., ::-1])
        else:
            sources.append(cp.asarray(px))
    resizer.batch_into(sources, out)
    bad += [f"{px.shape[:2]} in the batch" for px, got, want in zip(pixels, out, wants, strict=False) if not np.array_equal(got, want)]
    if not (out[len(sizes)] == 7).all():
        bad.append("wrote past the batch")
    f32 = cp.empty((len(sizes), 3, oh, ow), dtype=np.float32)
    resizer.normalise(cp.asarray(np.stack(wants)), f32)
    for px, got, want in zip(pixels, f32, wants, strict=True):
        if not np.array_equal(got, to_tensor(Image.fromarray(want), cfg)):
            bad.append(f"{px.shape[:2]} normalised")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sanitize", action="store_true", help="build with -fsanitize=address,undefined")
    parser.add_argument("--source", type=Path, help="a kernels.cu to build instead of the packaged one")
    args = parser.parse_args()
    cp = host_cupy.module()
    resize.cupy = lambda: cp  # type: ignore[assignment]
    if args.sanitize:
        host_cupy.RawModule.sanitize = "address,undefined"
    if args.source is not None:
        text = args.source.read_text()
        resize.kernel_source = lambda: text  # type: ignore[assignment]
    sizes = [(1, 1), (3, 5), (2, 300), (300, 2), (97, 61), (255, 257), (375, 500)]
    bad = mismatches(cp, BICUBIC, sizes, pillow=False) + mismatches(cp, BILINEAR, sizes, (160, 224), pillow=False)
    print(f"sanitized sweep: {len(bad)} mismatches" if args.sanitize else f"sweep: {len(bad)} mismatches", bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
