"""The Pillow-exact resize + centre crop as CUDA kernels (CuPy RawKernel).

The weights come from runtime.images.resample (computed on the host in float64 as
Pillow does, uploaded once per source size); the kernel does only the integer part, the
same as `resample.run_pass`: accumulate pixel x weight in int32 from 1 << 21, shift right
by 22, clamp to 0..255. One kernel serves both directions: a pass reads its input along
`tap` (columns for horizontal, rows for vertical) and walks the other axis from `other0`.
The last pass writes straight into the batch slot (uint8 HWC); float models get the
normalisation kernel, which does `to_tensor`'s float32 operations in its order, with
intrinsics that forbid fused multiply-adds (numpy rounds after every operation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import resample
from ..preprocess import Preprocessing
from . import cupy

_SOURCE = r"""
extern "C" __global__ void resample_pass(
    const unsigned char* src, long long src_tap, long long src_other, int n_in,
    int other0, int n_other, const int* start, const int* weights, int ksize, int n_out,
    unsigned char* dst, long long dst_tap, long long dst_other)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)n_out * n_other * 3) return;
    int c = (int)(i % 3);
    int o = (int)((i / 3) % n_other);
    int t = (int)(i / (3LL * n_other));
    const unsigned char* line = src + (long long)(o + other0) * src_other + c;
    const int* w = weights + (long long)t * ksize;
    int s = start[t];
    int acc = 1 << 21;
    for (int k = 0; k < ksize; ++k) {
        int x = min(s + k, n_in - 1);
        acc += (int)line[(long long)x * src_tap] * w[k];
    }
    int v = acc >> 22;
    dst[(long long)t * dst_tap + (long long)o * dst_other + c] = (unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v));
}

extern "C" __global__ void normalise(
    const unsigned char* src, float* dst, int n, int hw, float scale,
    float m0, float m1, float m2, float s0, float s1, float s2)
{
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)n * hw * 3) return;
    int c = (int)(i % 3);
    long long p = (i / 3) % hw;
    long long b = i / (3LL * hw);
    float m = c == 0 ? m0 : (c == 1 ? m1 : m2);
    float s = c == 0 ? s0 : (c == 1 ? s1 : s2);
    float x = __fmul_rn((float)src[i], scale);
    dst[(b * 3 + c) * hw + p] = __fdiv_rn(__fsub_rn(x, m), s);
}
"""

_THREADS = 256


class _DevicePass:
    """One resample.Pass with its tables on the device."""

    def __init__(self, cp: Any, p: resample.Pass) -> None:
        self.pass_ = p
        self.start = cp.asarray(p.taps.start, dtype=cp.int32)
        self.weights = cp.asarray(np.ascontiguousarray(p.taps.weights), dtype=cp.int32)


class DeviceResizer:
    """Resize + crop of device images (HxWx3 uint8, any strides) into batch slots.

    Plans and tables are cached per source size; `stream` is a CuPy stream all kernels
    are enqueued on."""

    def __init__(self, cfg: Preprocessing, size: tuple[int, int] | None = None, stream: Any = None) -> None:
        cp = cupy()
        self.cp, self.cfg, self.size, self.stream = cp, cfg, size, stream
        module = cp.RawModule(code=_SOURCE, options=("--fmad=false",))
        self._pass_kernel = module.get_function("resample_pass")
        self._normalise_kernel = module.get_function("normalise")
        self._plans: dict[tuple[int, int], tuple[resample.Plan, list[_DevicePass]]] = {}

    def _plan(self, hw: tuple[int, int]) -> tuple[resample.Plan, list[_DevicePass]]:
        if hw not in self._plans:
            p = resample.plan(hw, self.cfg, self.size)
            self._plans[hw] = (p, [_DevicePass(self.cp, one) for one in p.passes])
        return self._plans[hw]

    def _run(self, src: Any, dp: _DevicePass, dst: Any) -> None:
        p = dp.pass_
        other = 1 - p.axis
        n_out = len(p.taps.start)
        total = n_out * p.n_other * 3
        args = (
            src,
            np.int64(src.strides[p.axis]),
            np.int64(src.strides[other]),
            np.int32(src.shape[p.axis]),
            np.int32(p.other0),
            np.int32(p.n_other),
            dp.start,
            dp.weights,
            np.int32(p.taps.ksize),
            np.int32(n_out),
            dst,
            np.int64(dst.strides[p.axis]),
            np.int64(dst.strides[other]),
        )
        self._pass_kernel(((total + _THREADS - 1) // _THREADS,), (_THREADS,), args, stream=self.stream)

    def into(self, image: Any, out: Any) -> None:
        """Resize + crop `image` (a device HxWx3 uint8 array) into `out` (oh x ow x 3 uint8, C-contiguous)."""
        cp = self.cp
        if image.strides[2] != 1:
            image = cp.ascontiguousarray(image)
        p, passes = self._plan((int(image.shape[0]), int(image.shape[1])))
        g = p.geometry
        (oh, ow) = g.out_hw
        if not passes:
            with self.stream or cp.cuda.Stream.null:
                out[...] = image[g.top : g.top + oh, g.left : g.left + ow]
            return
        src = image
        for k, dp in enumerate(passes):
            if k == len(passes) - 1:
                dst = out
            else:
                shape = [src.shape[0], src.shape[1], 3]
                shape[dp.pass_.axis] = len(dp.pass_.taps.start)
                shape[1 - dp.pass_.axis] = dp.pass_.n_other
                with self.stream or cp.cuda.Stream.null:
                    dst = cp.empty(tuple(shape), dtype=cp.uint8)
            self._run(src, dp, dst)
            src = dst

    def normalise(self, batch_u8: Any, out: Any) -> None:
        """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] as `to_tensor` computes it."""
        n, h, w, _ = batch_u8.shape
        cfg = self.cfg
        total = n * h * w * 3
        args = (
            batch_u8,
            out,
            np.int32(n),
            np.int32(h * w),
            np.float32(1.0 / 255.0),
            *(np.float32(m) for m in cfg.mean),
            *(np.float32(s) for s in cfg.std),
        )
        self._normalise_kernel(((total + _THREADS - 1) // _THREADS,), (_THREADS,), args, stream=self.stream)
