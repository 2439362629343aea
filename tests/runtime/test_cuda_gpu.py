"""The CUDA buffer code for real, with cuda-python on a GPU (`make test-gpu`)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


def test_pinned_round_trip_and_stream_ordering() -> None:
    from runtime.backends.cuda import CudaPython

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
        # host -> A -> (device copy via host round trip in the same stream) -> B -> host
        cuda.htod_async(d_a, h_in_ptr, n, stream)
        cuda.dtoh_async(h_out_ptr, d_a, n, stream)
        cuda.synchronize(stream)
        assert np.array_equal(h_out, h_in)
        h_out[:] = 0
        for _ in range(3):  # queued copies run in order on one stream
            cuda.htod_async(d_b, h_in_ptr, n, stream)
            cuda.dtoh_async(h_out_ptr, d_b, n, stream)
        cuda.synchronize(stream)
        assert np.array_equal(h_out, h_in)
    finally:
        for p in (d_a, d_b):
            cuda.free(p)
        cuda.free_host(h_in_ptr)
        cuda.free_host(h_out_ptr)
        cuda.stream_destroy(stream)


def test_cuda_errors_are_user_errors() -> None:
    from runtime.backends.cuda import CudaPython
    from runtime.errors import UserError

    with pytest.raises(UserError, match="cudaMalloc"):
        CudaPython().malloc(1 << 62)
