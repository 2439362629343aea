"""The CUDA side of the TensorRT runner for real, on a GPU with cuda-python and CuPy
(`make test-gpu`). No TensorRT is needed: the test double's execute step is replaced by
a CuPy kernel enqueued on the stream TensorRT would be given, so streams, events, pinned
memory, the double-buffered overlap, CUDA graphs and GPU (DLPack) input all run on the
device. The kernel computes logits[b, c] = (c + 1) * mean(image b)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime.core.errors import UserError
from tests.fakes import fake_tensorrt

pytestmark = pytest.mark.gpu

CLASSES = 10
KERNEL = r"""
extern "C" __global__ void logits_T(const T* x, float* out, int per_image, int classes,
                                    const volatile T* other, int last_chunk, int probe, int* seen,
                                    long long spin) {
    __shared__ float partial[256];
    const long long b = blockIdx.x;
    float s = 0.f;
    for (int i = threadIdx.x; i < per_image; i += blockDim.x) s += (float)x[b * per_image + i];
    partial[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if (threadIdx.x < k) partial[threadIdx.x] += partial[threadIdx.x + k];
        __syncthreads();
    }
    // Overlap probe: chunk k's images are all k + 1; the kernel of chunk k waits (bounded)
    // until chunk k + 1 has landed in the other slot, which happens only if that copy runs
    // while this kernel does.
    if (probe && b == 0 && threadIdx.x == 0) {
        int chunk = (int)((float)x[0] + 0.5f) - 1;
        if (chunk < last_chunk) {
            long long t0 = clock64();
            int ok = 0;
            while (clock64() - t0 < spin) {
                if ((float)other[0] == (float)x[0] + 1.f) { ok = 1; break; }
            }
            seen[chunk] = ok;
        }
    }
    for (int c = threadIdx.x; c < classes; c += blockDim.x) out[b * classes + c] = (c + 1) * partial[0] / per_image;
}
"""


def expected_logits(x: np.ndarray) -> np.ndarray:
    means = x.reshape(x.shape[0], -1).astype(np.float64).mean(1)
    return (means[:, None] * np.arange(1, CLASSES + 1)).astype(np.float32)


class CupyEngine:
    """The execute step: a CuPy kernel on TensorRT's stream, plus the overlap probe."""

    def __init__(self) -> None:
        import cupy as cp

        self.cp = cp
        self.kernels = {
            dt: cp.RawKernel(KERNEL.replace("logits_T", f"logits_{dt}").replace("T*", f"{ct}*"), f"logits_{dt}")
            for dt, ct in (("float32", "float"), ("uint8", "unsigned char"))
        }
        for k in self.kernels.values():
            k.compile()
        self.seen = cp.zeros(64, dtype=cp.int32)
        self.probe, self.last_chunk, self.slots = 0, 0, (0, 0)

    def __call__(self, engine: Any, shape: tuple[int, ...], addresses: dict[str, int], stream: int) -> None:
        cp = self.cp
        x = addresses["images"]
        other = self.slots[1] if x == self.slots[0] else self.slots[0]
        args = (
            np.uint64(x),
            np.uint64(addresses["logits"]),
            np.int32(int(np.prod(shape[1:]))),
            np.int32(engine.classes),
            np.uint64(other or x),
            np.int32(self.last_chunk),
            np.int32(self.probe),
            np.uint64(self.seen.data.ptr),
            np.int64(400_000_000),  # about 0.2 s at 2 GHz: ample for a copy, short for a hang
        )
        with cp.cuda.ExternalStream(stream):
            self.kernels[engine.input_dtype]((shape[0],), (256,), args)


@pytest.fixture
def gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("cupy")
    from runtime.core.backends.cuda import CudaPython

    cuda = CudaPython()
    name, capability = cuda.device(0)
    kernel = CupyEngine()
    trt, _ = fake_tensorrt.install(monkeypatch, cuda=cuda, execute=kernel)  # type: ignore[arg-type]

    def engine(profile: list[list[int]], dtype: str = "float32") -> Path:
        return fake_tensorrt.write_engine(
            tmp_path / f"{dtype}.engine",
            [profile],
            classes=CLASSES,
            input_dtype=dtype,
            gpu_name=name,
            compute_capability=capability,
        )

    return engine, kernel, cuda, trt


PROFILE = [[2, 3, 16, 16], [4, 3, 16, 16], [4, 3, 16, 16]]  # min batch 2: the last chunk is padded


def test_pinned_round_trip_and_stream_ordering() -> None:
    from runtime.core.backends.cuda import CudaPython

    cuda = CudaPython()
    name, capability = cuda.device()
    assert name and capability.count(".") == 1
    n = 1 << 20
    stream = cuda.stream_create()
    d_a, d_b = cuda.malloc(n), cuda.malloc(n)
    h_in_ptr, h_in = cuda.malloc_host(n)
    h_out_ptr, h_out = cuda.malloc_host(n)
    try:
        h_in[:] = np.random.default_rng(0).integers(0, 255, n, dtype=np.uint8)
        cuda.htod_async(d_a, h_in_ptr, n, stream)
        cuda.dtod_async(d_b, d_a, n, stream)
        cuda.dtoh_async(h_out_ptr, d_b, n, stream)
        cuda.synchronize(stream)
        assert np.array_equal(h_out, h_in)
        cuda.memset_async(d_b, 7, n, stream)
        cuda.dtoh_async(h_out_ptr, d_b, n, stream)
        cuda.synchronize(stream)
        assert (h_out == 7).all()
    finally:
        for p in (d_a, d_b):
            cuda.free(p)
        cuda.free_host(h_in_ptr)
        cuda.free_host(h_out_ptr)
        cuda.stream_destroy(stream)


def test_cuda_errors_are_user_errors() -> None:
    from runtime.core.backends.cuda import CudaPython

    with pytest.raises(UserError, match="cudaMalloc"):
        CudaPython().malloc(1 << 62)
    with pytest.raises(UserError, match="CUDA device 99 does not exist"):
        CudaPython().device(99)


def test_runner_on_real_streams_pads_chunks_and_pins_buffers(gpu: Any) -> None:
    make, _, _, _ = gpu
    rng = np.random.default_rng(0)
    with runtime.load(make(PROFILE)) as runner:
        for n in (1, 5, 13, 4):
            x = rng.standard_normal((n, 3, 16, 16), dtype=np.float32)
            np.testing.assert_allclose(runner.infer(x), expected_logits(x), rtol=1e-4, atol=1e-4)
        buf = runner.host_buffer((8, 3, 16, 16))
        buf[:] = rng.standard_normal(buf.shape, dtype=np.float32)
        np.testing.assert_allclose(runner.infer(buf), expected_logits(buf), rtol=1e-4, atol=1e-4)
        batches = [rng.standard_normal((6, 3, 16, 16), dtype=np.float32) for _ in range(5)]
        for x, out in zip(batches, runner.infer_batches(iter(batches)), strict=True):
            np.testing.assert_allclose(out, expected_logits(x), rtol=1e-4, atol=1e-4)


def test_next_chunks_copy_overlaps_this_chunks_kernel(gpu: Any) -> None:
    make, kernel, _, _ = gpu
    chunks = 6
    x = np.concatenate([np.full((4, 3, 16, 16), k + 1, np.float32) for k in range(chunks)])
    with runtime.load(make(PROFILE)) as runner:
        lane = runner._lanes.free[0]
        kernel.slots = (lane.slots[0].d_in, lane.slots[1].d_in)
        kernel.probe, kernel.last_chunk = 1, chunks - 1
        kernel.seen.fill(-1)
        out = runner.infer(x)
        kernel.probe = 0
    np.testing.assert_allclose(out, expected_logits(x), rtol=1e-5)
    seen = kernel.seen.get()[: chunks - 1].tolist()
    assert seen == [1] * (chunks - 1), f"chunk k+1 arrived while chunk k ran: {seen}"


def test_cuda_graph_replays_read_new_inputs(gpu: Any) -> None:
    make, _, cuda, _ = gpu
    launches = []
    real_launch = cuda.graph_launch
    cuda.graph_launch = lambda g, s: (launches.append(g), real_launch(g, s))[1]
    rng = np.random.default_rng(1)
    with runtime.load(make(PROFILE), cuda_graph=True) as runner:
        for n in (4, 4, 4, 4, 3, 3, 3, 9):
            x = rng.standard_normal((n, 3, 16, 16), dtype=np.float32)
            np.testing.assert_allclose(runner.infer(x), expected_logits(x), rtol=1e-4, atol=1e-4)
    assert len(launches) >= 4  # 4 and 3 were each replayed from a graph after their first run per slot


def test_threads_share_the_engine_on_real_streams(gpu: Any) -> None:
    make, _, _, trt = gpu
    errors: list[BaseException] = []
    with runtime.load(make(PROFILE)) as runner:

        def work(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                for _ in range(20):
                    x = rng.standard_normal((int(rng.integers(1, 11)), 3, 16, 16), dtype=np.float32)
                    np.testing.assert_allclose(runner.infer(x), expected_logits(x), rtol=1e-4, atol=1e-4)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert trt.deserialised == 1 and 1 <= runner.contexts <= 6
    assert not errors, errors[0]


def test_gpu_tensors_run_in_place(gpu: Any) -> None:
    import cupy as cp

    make, _, cuda, _ = gpu
    copies = []
    real_htod = cuda.htod_async
    cuda.htod_async = lambda *a: (copies.append(a), real_htod(*a))[1]
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 3, 16, 16), dtype=np.float32)
    for graph in (False, True):
        with runtime.load(make(PROFILE), cuda_graph=graph) as runner:
            np.testing.assert_allclose(runner.infer(cp.asarray(x)), expected_logits(x), rtol=1e-4, atol=1e-4)
            with pytest.raises(UserError, match="C-contiguous"):
                runner.infer(cp.asarray(x)[:, :, ::2, ::2].transpose(0, 1, 3, 2))
            with pytest.raises(UserError, match="got dtype float16"):
                runner.infer(cp.asarray(x, dtype=cp.float16))
    assert copies == []  # nothing went through the host
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        with runtime.load(make(PROFILE)) as runner:
            t = torch.from_numpy(x).cuda() * 2
            np.testing.assert_allclose(runner.infer(t), expected_logits(x * 2), rtol=1e-4, atol=1e-4)


def test_uint8_engine_on_real_streams(gpu: Any) -> None:
    make, _, _, _ = gpu
    profile = [[1, 16, 16, 3], [4, 16, 16, 3], [4, 16, 16, 3]]
    pixels = np.random.default_rng(3).integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    with runtime.load(make(profile, "uint8")) as runner:
        buf = runner.host_buffer((7, 16, 16, 3))
        buf[:] = pixels
        np.testing.assert_allclose(runner.infer(buf), expected_logits(pixels), rtol=1e-4, atol=1e-3)
        with pytest.raises(UserError, match="expected uint8 NHWC"):
            runner.infer(pixels.astype(np.float32))
