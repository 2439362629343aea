"""Pillow's own resampling, reproduced exactly: coefficient tables and a numpy reference.

`resize_and_crop` (runtime.core.preprocess) calls `Image.resize(size, BICUBIC or
BILINEAR)` with no box and no `reducing_gap`, then crops the centre. Pillow then runs
`ImagingResample` (libImaging/Resample.c), whose arithmetic this module copies:

- per output pixel, a window of source pixels and filter weights (`precompute_coeffs`):
  bicubic a = -0.5 with support 2, bilinear support 1, both widened by the scale when
  shrinking; weights summed in order and divided by their sum, in double precision;
- weights turned into fixed point with 22 fraction bits (`normalize_coeffs_8bpc`,
  PRECISION_BITS = 32 - 8 - 2), rounding half away from zero;
- each pass accumulates `pixel * weight` in integers from 1 << 21 (so the shift rounds),
  then shifts right by 22 and clips to 0..255 (`clip8`);
- one pass into 8 bits, then the other: horizontal first, except where the installed
  Pillow runs the vertical pass first (`vertical_first`: Pillow 13 does when the height
  shrinks by more than twice as many pixels as the width); a pass whose size does not
  change is skipped.

Each output pixel depends only on its own window, so computing just the rows and columns
the centre crop keeps gives the same pixels as resizing everything and cropping. The
weights are computed here, on the host, in float64 as Pillow does (a GPU compiler would
fuse multiply-adds and could round differently); the CUDA kernel in
runtime.app.images.gpu.resize takes these tables and does only the integer part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .preprocess import Preprocessing, resized_size

PRECISION_BITS = 32 - 8 - 2
HALF = 1 << (PRECISION_BITS - 1)

# Filter supports, as in Resample.c; the filters themselves are in `_weights`.
SUPPORT = {"bilinear": 1.0, "bicubic": 2.0}


@dataclass(frozen=True)
class Taps:
    """One pass's fixed-point weights for a run of output pixels.

    Output pixel i reads source pixels `start[i] .. start[i] + ksize - 1` (clamped to the
    image; weights past `count[i]` are zero) with weights `weights[i]` (int32, 22 fraction bits)."""

    start: np.ndarray  # int32 [n]
    count: np.ndarray  # int32 [n]
    weights: np.ndarray  # int32 [n, ksize]

    @property
    def ksize(self) -> int:
        return int(self.weights.shape[1])

    def rows(self, first: int, stop: int) -> Taps:
        """The taps of output pixels first..stop-1: copies, so a cached plan does not keep
        the whole resize's tables alive for the few rows the crop keeps."""
        return Taps(self.start[first:stop].copy(), self.count[first:stop].copy(), self.weights[first:stop].copy())


def _bicubic(x: np.ndarray) -> np.ndarray:
    # The same expressions, in the same order, as Resample.c's bicubic_filter (a = -0.5).
    a = -0.5
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def _bilinear(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


FILTERS = {"bicubic": _bicubic, "bilinear": _bilinear}


def coefficients(in_size: int, out_size: int, interpolation: str) -> Taps:
    """`precompute_coeffs` + `normalize_coeffs_8bpc` for resizing `in_size` to `out_size`
    (the whole image: box 0..in_size)."""
    if interpolation not in FILTERS:
        raise ValueError(f"exact resampling supports {sorted(FILTERS)}, not {interpolation!r}")
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = SUPPORT[interpolation] * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    center = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    # C's (int) truncates toward zero; a negative xmin is clamped to 0 either way.
    xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - xmin
    taps = np.arange(ksize)
    x = ((taps[None, :] + xmin[:, None]) - center[:, None] + 0.5) * (1.0 / filterscale)
    w = np.where(taps[None, :] < xmax[:, None], FILTERS[interpolation](x), 0.0)
    # The sum in C's order (numpy's sum is pairwise and could round differently).
    ww = np.zeros(out_size, dtype=np.float64)
    for k in range(ksize):
        ww += w[:, k]
    w = np.where(ww[:, None] != 0.0, w / np.where(ww == 0.0, 1.0, ww)[:, None], w)
    fixed = w * (1 << PRECISION_BITS)
    fixed = np.trunc(np.where(w < 0, fixed - 0.5, fixed + 0.5)).astype(np.int32)
    return Taps(xmin.astype(np.int32), xmax.astype(np.int32), fixed)


@dataclass(frozen=True)
class Geometry:
    """Where one source size goes: the resized size and the crop window in it."""

    in_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    top: int
    left: int
    out_hw: tuple[int, int]


def geometry(in_hw: tuple[int, int], cfg: Preprocessing, size: tuple[int, int] | None = None) -> Geometry:
    """The sizes `resize_and_crop` computes for a source of `in_hw` (H, W)."""
    height, width = size or (cfg.input_size, cfg.input_size)
    ih, iw = in_hw
    new_w, new_h = resized_size(iw, ih, cfg, size)  # the one rule, and its memory bound
    top = int(round((new_h - height) / 2.0))
    left = int(round((new_w - width) / 2.0))
    return Geometry((ih, iw), (new_h, new_w), top, left, (height, width))


@dataclass(frozen=True)
class Pass:
    """One 8-bit pass of a plan: what the kernel runs.

    `axis` 1 resamples along columns (horizontal), 0 along rows (vertical). Output pixel
    (t along `axis`, o along the other axis) reads the input line `other0 + o` at the taps
    of `taps` row t; `n_other` lines are computed."""

    axis: int
    taps: Taps
    other0: int
    n_other: int


@dataclass(frozen=True)
class Plan:
    """Resize + crop of one source size: zero, one or two passes, in Pillow's order.

    With no pass (the resize keeps the size) the output is the crop at (top, left)."""

    geometry: Geometry
    passes: tuple[Pass, ...]


def pillow_version() -> tuple[int, int]:
    import PIL

    major, minor = PIL.__version__.split(".")[:2]
    return int(major), int(minor)


def vertical_first(in_hw: tuple[int, int], resized_hw: tuple[int, int], version: tuple[int, int] | None = None) -> bool:
    """Whether Pillow runs the vertical pass first for this resize (with both passes needed).

    Pillow 13 (ImagingResampleInner): when the height shrinks by more than twice as many
    pixels as the width does. Pillow 12.3 (Image.resize): for images over 100 times taller
    than wide whose height shrinks. Earlier: never. The order changes the 8-bit rounding
    of the intermediate image, hence the output."""
    (ih, iw), (nh, nw) = in_hw, resized_hw
    version = version or pillow_version()
    if version >= (13, 0):
        return ih - nh > 0 and ih - nh > (iw - nw) * 2
    if version >= (12, 3):
        return ih > iw * 100 and nh < ih
    return False


def plan(in_hw: tuple[int, int], cfg: Preprocessing, size: tuple[int, int] | None = None) -> Plan:
    """The resize + crop plan for a source of `in_hw` (H, W): only kept pixels are computed."""
    g = geometry(in_hw, cfg, size)
    (ih, iw), (nh, nw), (oh, ow) = g.in_hw, g.resized_hw, g.out_hw
    if (nh, nw) == (ih, iw):  # resize_and_crop does not call resize at all
        return Plan(g, ())
    h = coefficients(iw, nw, cfg.interpolation).rows(g.left, g.left + ow) if nw != iw else None
    v = coefficients(ih, nh, cfg.interpolation).rows(g.top, g.top + oh) if nh != ih else None
    if h is None or v is None:  # one pass; the other axis is cropped
        if h is not None:
            return Plan(g, (Pass(1, h, g.top, oh),))
        assert v is not None
        return Plan(g, (Pass(0, v, g.left, ow),))
    first, second, axis = (v, h, 0) if vertical_first((ih, iw), (nh, nw)) else (h, v, 1)
    # The first pass computes only the lines the second reads; the second's starts are
    # relative to the first of them.
    lo = int(second.start.min())
    hi = int((second.start + second.count).max())
    shifted = Taps(second.start - lo, second.count, second.weights)
    return Plan(g, (Pass(axis, first, lo, hi - lo), Pass(1 - axis, shifted, 0, len(first.start))))


def clip8(acc: np.ndarray) -> np.ndarray:
    """Resample.c's clip8: shift out the fraction bits (arithmetic shift), clamp to 0..255."""
    return np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)


def run_pass(src: np.ndarray, p: Pass) -> np.ndarray:
    """One 8-bit pass on an HxWxC uint8 array, in the kernel's integer arithmetic."""
    lines = src[p.other0 : p.other0 + p.n_other] if p.axis == 1 else src[:, p.other0 : p.other0 + p.n_other]
    n_in = lines.shape[p.axis]
    shape = list(lines.shape)
    shape[p.axis] = len(p.taps.start)
    acc = np.full(shape, HALF, dtype=np.int64)
    for k in range(p.taps.ksize):
        idx = np.minimum(p.taps.start + k, n_in - 1)
        w = p.taps.weights[:, k].astype(np.int64)
        if p.axis == 0:
            acc += lines[idx].astype(np.int64) * w[:, None, None]
        else:
            acc += lines[:, idx].astype(np.int64) * w[None, :, None]
    return clip8(acc)


def apply(pixels: np.ndarray, p: Plan) -> np.ndarray:
    """Run plan `p` on uint8 HxWxC `pixels`."""
    g = p.geometry
    (oh, ow) = g.out_hw
    if not p.passes:
        return np.ascontiguousarray(pixels[g.top : g.top + oh, g.left : g.left + ow])
    out = pixels
    for one in p.passes:
        out = run_pass(out, one)
    return np.ascontiguousarray(out)


def resize_crop(pixels: np.ndarray, cfg: Preprocessing, size: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 HxWx3 (RGB, upright) -> the same uint8 crop as `resize_and_crop` gives."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3:
        raise ValueError(f"resize_crop takes uint8 HxWxC pixels, got {pixels.dtype} {pixels.shape}")
    return apply(pixels, plan(pixels.shape[:2], cfg, size))
