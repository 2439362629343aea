"""GPU (DLPack) input to the TensorRT runner against the test double: a batch read in
place by the engine is not handed back to the caller (release_inputs) before it is read.

The fake GPU tensor below lives in FakeCuda device memory; FakeCuda runs queued work only
when waited for and records which queued work will read which bytes (`reading`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from tests.fakes import fake_tensorrt

STATIC = [[4, 3, 32, 32]] * 3  # a batch of 5: 4 read in place, then 1 copied and padded
DYNAMIC = [[1, 3, 32, 32], [4, 3, 32, 32], [4, 3, 32, 32]]  # a batch of 3: one chunk, read in place


class FakeGpuTensor:
    """What a CuPy array looks like to the runner: DLPack on CUDA device 0."""

    def __init__(self, cuda: fake_tensorrt.FakeCuda, shape: tuple[int, ...]) -> None:
        nbytes = int(np.prod(shape)) * 4
        self.ptr, self.nbytes = cuda.malloc(nbytes), nbytes
        self.array = cuda.memory[self.ptr][:nbytes].view(np.float32).reshape(shape)

    def __dlpack__(self, stream: Any = None) -> Any:
        return self.array.__dlpack__()  # its pointer, shape and dtype; the device is said below

    def __dlpack_device__(self) -> tuple[int, int]:
        return 2, 0  # kDLCUDA, device 0


@pytest.mark.parametrize(("profiles", "n"), [(DYNAMIC, 3), (STATIC, 5)])
def test_a_device_batch_read_in_place_is_released_only_once_read(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profiles: list[list[int]], n: int
) -> None:
    _, cuda = fake_tensorrt.install(monkeypatch)
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    engine = fake_tensorrt.write_engine(d / "model.engine", [profiles], d / "model.onnx")
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((n, 3, 32, 32), dtype=np.float32) for _ in range(4)]
    with runtime.load(d / "model.onnx") as ort_runner:
        expected = [ort_runner.infer(x) for x in batches]
    with runtime.load(engine) as runner:
        ring = FakeGpuTensor(cuda, (n, 3, 32, 32))  # one device buffer, refilled for every batch
        unread_on_refill = []

        def refill() -> Iterator[FakeGpuTensor]:
            for x in batches:
                # infer_batches asks for the next batch only after release_inputs().
                unread_on_refill.append(cuda.reading(ring.ptr, ring.nbytes))
                ring.array[:] = x
                yield ring

        got = list(runner.infer_batches(refill()))
        cuda.free(ring.ptr)
    assert unread_on_refill == [False] * 4  # the engine had read each batch before it was refilled
    for out, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
