"""What only a GPU would show, fenced and checked against the TensorRT/CUDA test double:
cleanup that goes on after a failed free, CUDA graphs bounded and never leaked by a failed
capture, TensorRT-RTX refusing --cuda-graph, and a bounded number of contexts."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime.core.backends.tensorrt import TensorRTOptions, TensorRTRunner, lanes
from runtime.core.errors import UserError
from tests.fakes import fake_tensorrt

DYNAMIC = [[1, 3, 32, 32], [4, 3, 32, 32], [4, 3, 32, 32]]


@pytest.fixture
def engine(digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any, Any]:
    trt, cuda = fake_tensorrt.install(monkeypatch)
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    return fake_tensorrt.write_engine(d / "model.engine", [DYNAMIC], d / "model.onnx"), trt, cuda


def _x(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 3, 32, 32), dtype=np.float32)


def test_release_goes_on_after_a_failed_free_and_raises_the_first_error() -> None:
    freed: list[int] = []

    def free(h: int) -> None:
        freed.append(h)
        if h in (2, 3):
            raise RuntimeError(f"cudaFree({h}): cudaErrorIllegalAddress")

    res = lanes.Resources()
    for h in range(1, 5):
        res.add(free, h)
    with pytest.raises(RuntimeError, match=r"cudaFree\(3\)"):  # freed in reverse: 3 fails first
        res.release()
    assert freed == [4, 3, 2, 1]


def test_deactivate_frees_every_lane_after_a_fatal_error(engine: tuple[Path, Any, Any], monkeypatch: Any) -> None:
    path, _, cuda = engine
    real = cuda.stream_destroy

    def sticky(stream: int) -> None:  # after a fatal CUDA error every call fails; memory is still freed
        real(stream)
        raise UserError("CUDA cudaStreamDestroy failed: cudaErrorLaunchFailure")

    monkeypatch.setattr(cuda, "stream_destroy", sticky)
    runner = TensorRTRunner(path).activate()
    second = runner.infer_batches(iter([_x(1)]))
    next(second)  # a second lane, parked
    with pytest.raises(UserError, match="cudaErrorLaunchFailure"):
        runner.deactivate()
    assert cuda.memory == {} and cuda.streams == set()


def test_a_capture_that_raises_leaves_no_graph(engine: tuple[Path, Any, Any], monkeypatch: Any) -> None:
    path, trt, cuda = engine
    with runtime.load(path, options=runtime.TensorRTOptions(cuda_graph=True)) as runner:
        real = cuda.begin_capture

        def begin(stream: int) -> None:
            real(stream)
            monkeypatch.setattr(cuda, "_capturing_raises", True, raising=False)

        ctx = runner._lanes.lanes[0].context
        real_exec = ctx.execute_async_v3
        calls = []

        def execute(stream: int) -> bool:
            calls.append(stream)
            if len(calls) == 2:  # the captured run
                raise RuntimeError("TensorRT: an operation not permitted while capturing")
            return bool(real_exec(stream))

        ctx.execute_async_v3 = execute
        with pytest.raises(RuntimeError, match="while capturing"):
            runner.infer(_x(2))
        assert cuda.graphs == {} and runner._lanes.lanes[0].graphs == {}


def test_graphs_per_lane_are_bounded(engine: tuple[Path, Any, Any], monkeypatch: Any) -> None:
    path, _, cuda = engine
    monkeypatch.setattr(lanes, "MAX_GRAPHS", 3)
    import runtime.core.backends.tensorrt.launch as launch

    monkeypatch.setattr(launch, "MAX_GRAPHS", 3)
    with runtime.load(path, options=runtime.TensorRTOptions(cuda_graph=True)) as runner:
        for n in (1, 2, 3, 4, 1, 2):  # 4 shapes x the slots each uses
            np.testing.assert_allclose(runner.infer(_x(n)).shape, (n, 10))
            assert len(cuda.graphs) <= 3 and len(runner._lanes.lanes[0].graphs) <= 3
    assert cuda.graphs == {}


def test_tensorrt_rtx_refuses_cuda_graphs_in_one_line(digits_export: Path, tmp_path: Path, monkeypatch: Any) -> None:
    fake_tensorrt.install(monkeypatch, fake_tensorrt.FakeCuda(capability="8.6"), flavour="tensorrt-rtx")
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    path = fake_tensorrt.write_engine(
        d / "model.engine", [DYNAMIC], d / "model.onnx", flavour="tensorrt-rtx", library_version="1.7.1.116",
        compute_capability="", target_compute_capabilities=["8.6"],
    )
    with pytest.raises(UserError, match="--cuda-graph is not supported for TensorRT-RTX engines") as err:
        TensorRTRunner(path, TensorRTOptions(cuda_graph=True)).activate()
    assert "\n" not in str(err.value)


def test_contexts_are_bounded_and_a_caller_past_the_bound_waits(engine: tuple[Path, Any, Any]) -> None:
    path, _, _ = engine
    with TensorRTRunner(path) as runner:
        runner._lanes.limit = 2
        held = [runner.infer_batches(iter([_x(1), _x(1)])) for _ in range(2)]
        for g in held:
            next(g)  # each holds a lane, parked at its first yield
        assert runner.contexts == 2
        got: list[np.ndarray] = []
        t = threading.Thread(target=lambda: got.append(runner.infer(_x(3))))
        t.start()
        while runner._lanes.waiting != 1:  # until the thread is waiting for a lane (no timing asserted)
            time.sleep(0.01)
        assert not got and runner.contexts == 2
        held[0].close()  # gives its lane back: the waiting caller takes it
        t.join()
        held[1].close()
        assert got[0].shape == (3, 10) and runner.contexts == 2
