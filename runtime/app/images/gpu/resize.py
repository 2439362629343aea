"""The Pillow-exact resize + centre crop as CUDA kernels (CuPy RawKernel).

The weights come from runtime.core.resample (computed on the host in float64 as
Pillow does, uploaded once per source size); the kernel does only the integer part, the
same as `resample.run_pass`: accumulate pixel x weight in int32 from 1 << 21, shift right
by 22, clamp to 0..255. One kernel serves both directions: a pass reads its input along
`tap` (columns for horizontal, rows for vertical) and walks the other axis from `other0`.

Images of one source size share one plan, so a batch is resized with one launch per pass
per source size (blockIdx.y is the image): a small table gives each image its source
pointer and strides (decoded images are separate allocations with their own pitch) and
its destination. The last pass writes straight into the batch slots (uint8 HWC); float
models get the normalisation kernel, which does `to_tensor`'s float32 operations in its
order, with intrinsics that forbid fused multiply-adds (numpy rounds after every operation).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from ....core import resample
from ....core.preprocess import Preprocessing
from . import cupy

# The kernels' source: package data, read by CuPy here, by NVRTC for every target and by
# the host build in the tests, so all of them compile the same bytes.
KERNELS_CU = Path(__file__).with_name("kernels.cu")
NVRTC_OPTIONS = ("--fmad=false",)  # numpy rounds after every operation: no fused multiply-add


def kernel_source() -> str:
    return KERNELS_CU.read_text(encoding="utf-8")


_THREADS = 256
_MAX_GRID_Y = 65535  # CUDA's limit on gridDim.y: images per launch
MAX_PLANS = 256  # source sizes whose plans and device tables are kept (photo sets repeat a few)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """`make(key)`, kept for the `limit` most recently used keys: a run over files of ever
    new sizes keeps bounded memory (host plans and their device tables)."""

    def __init__(self, make: Callable[[K], V], limit: int = MAX_PLANS) -> None:
        if limit < 1:
            raise ValueError(f"an LRU cache needs a limit of at least 1, got {limit}")
        self._make, self.limit = make, limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._make(key)
        self._items[key] = value
        if len(self._items) > self.limit:
            self._items.popitem(last=False)
        return value


class _DevicePass:
    """One resample.Pass with its tables on the device, uploaded on `stream` (the kernels'):
    an upload on another stream (the legacy default one, say) is not ordered before a
    kernel on a non-blocking stream, which could read a partly copied table."""

    def __init__(self, cp: Any, p: resample.Pass, stream: Any) -> None:
        self.pass_ = p
        with stream:
            self.start = cp.asarray(p.taps.start, dtype=cp.int32)
            self.weights = cp.asarray(np.ascontiguousarray(p.taps.weights), dtype=cp.int32)

    def out_shape(self, src_hw: tuple[int, int]) -> tuple[int, int, int]:
        """The HxWx3 shape this pass writes from a source of `src_hw`."""
        shape = [src_hw[0], src_hw[1], 3]
        shape[self.pass_.axis] = len(self.pass_.taps.start)
        shape[1 - self.pass_.axis] = self.pass_.n_other
        return (shape[0], shape[1], shape[2])


class DeviceResizer:
    """Resize + crop of device images (HxWx3 uint8, channels contiguous) into batch slots.

    Plans and tables are cached for the last MAX_PLANS source sizes; `stream` is a CuPy
    stream all uploads, copies and kernels are enqueued on (None: the legacy default
    stream). Callers keep the source images alive until that stream has run."""

    def __init__(self, cfg: Preprocessing, size: tuple[int, int] | None = None, stream: Any = None) -> None:
        cp = cupy()
        self.cp, self.cfg, self.size, self.stream = cp, cfg, size, stream
        module = cp.RawModule(code=kernel_source(), options=NVRTC_OPTIONS)
        self._pass_kernel = module.get_function("resample_pass")
        self._normalise_kernel = module.get_function("normalise")
        # A dropped plan's tables go back to CuPy's pool for the stream they were made on,
        # so a kernel still queued there reads them before their memory is reused.
        self._plans: LruCache[tuple[int, int], tuple[resample.Plan, list[_DevicePass]]] = LruCache(self._new_plan)

    def _on_stream(self) -> Any:
        return self.stream or self.cp.cuda.Stream.null

    def _new_plan(self, hw: tuple[int, int]) -> tuple[resample.Plan, list[_DevicePass]]:
        p = resample.plan(hw, self.cfg, self.size)
        return p, [_DevicePass(self.cp, one, self._on_stream()) for one in p.passes]

    def _run(self, srcs: Sequence[Any], dp: _DevicePass, dsts: Sequence[Any]) -> None:
        """One pass over images of one size: srcs[j] -> dsts[j], one launch."""
        p = dp.pass_
        other = 1 - p.axis
        table = np.array(
            [(s.data.ptr, s.strides[p.axis], s.strides[other], d.data.ptr) for s, d in zip(srcs, dsts, strict=True)],
            dtype=np.int64,
        )
        with self._on_stream():
            device_table = self.cp.asarray(table)
        n_out = len(p.taps.start)
        total = n_out * p.n_other * 3
        args = (
            device_table,
            np.int32(srcs[0].shape[p.axis]),
            np.int32(p.other0),
            np.int32(p.n_other),
            dp.start,
            dp.weights,
            np.int32(p.taps.ksize),
            np.int32(n_out),
            np.int64(dsts[0].strides[p.axis]),
            np.int64(dsts[0].strides[other]),
        )
        grid = ((total + _THREADS - 1) // _THREADS, len(srcs))
        self._pass_kernel(grid, (_THREADS,), args, stream=self.stream)

    def into(self, image: Any, out: Any) -> None:
        """Resize + crop `image` (a device HxWx3 uint8 array) into `out` (oh x ow x 3 uint8, C-contiguous)."""
        self.batch_into([image], out[None])

    def batch_into(self, images: Sequence[Any], out: Any) -> None:
        """Resize + crop device HxWx3 uint8 `images[j]` into `out[j]` (out: [>= n, oh, ow, 3]
        uint8, C-contiguous): one launch per pass for each source size in the list."""
        cp = self.cp
        with self._on_stream():  # the copy must precede the kernels that read it
            images = [im if im.strides[2] == 1 else cp.ascontiguousarray(im) for im in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for j, im in enumerate(images):
            groups.setdefault((int(im.shape[0]), int(im.shape[1])), []).append(j)
        for hw, members in groups.items():
            p, passes = self._plans.get(hw)
            for first in range(0, len(members), _MAX_GRID_Y):
                chunk = members[first : first + _MAX_GRID_Y]
                self._group([images[j] for j in chunk], p, passes, [out[j] for j in chunk])

    def _group(self, srcs: list[Any], p: resample.Plan, passes: list[_DevicePass], dsts: list[Any]) -> None:
        cp = self.cp
        g = p.geometry
        (oh, ow) = g.out_hw
        if not passes:  # the resize keeps the size: the crop alone (rare: one copy per image)
            with self._on_stream():
                for s, d in zip(srcs, dsts, strict=True):
                    d[...] = s[g.top : g.top + oh, g.left : g.left + ow]
            return
        for k, dp in enumerate(passes):
            if k == len(passes) - 1:
                targets = dsts
            else:  # the intermediate 8-bit image of every source, one allocation
                with self._on_stream():
                    scratch = cp.empty((len(srcs), *dp.out_shape(g.in_hw)), dtype=cp.uint8)
                targets = list(scratch)
            self._run(srcs, dp, targets)
            srcs = targets

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
