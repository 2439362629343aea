"""The TensorRT runner on the two-device test double (FakeCuda(devices=2)): every thread
that touches CUDA sets the runner's device first, host buffers outlive deactivate() while
their arrays do, and GPU input is handed over on the stream that reads it (the fake
tensor's __dlpack__ honours its `stream`). Checked against the test double, not a GPU."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime
from runtime.core.backends.tensorrt import TensorRTOptions, TensorRTRunner
from runtime.core.errors import UserError
from tests.fakes import fake_tensorrt

DYNAMIC = [[1, 3, 32, 32], [4, 3, 32, 32], [4, 3, 32, 32]]


@pytest.fixture
def two(digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, fake_tensorrt.FakeCuda]:
    _, cuda = fake_tensorrt.install(monkeypatch, fake_tensorrt.FakeCuda(devices=2))
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    return fake_tensorrt.write_engine(d / "model.engine", [DYNAMIC], d / "model.onnx"), cuda


def _expected(engine: Path, x: np.ndarray) -> np.ndarray:
    with runtime.load(engine.with_name("model.onnx")) as ref:
        return ref.infer(x)


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run `fn` on a new thread (whose current device is 0, as CUDA's is) and return its result."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def test_a_second_lane_made_on_a_new_thread_lives_on_the_runner_device(two: tuple[Path, Any]) -> None:
    engine, cuda = two
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32), dtype=np.float32)
    want = _expected(engine, x)
    with TensorRTRunner(engine, TensorRTOptions(device=1)) as runner:
        held = runner.infer_batches(iter([x, x]))  # holds the first lane, parked at its first yield
        np.testing.assert_allclose(next(held), want, rtol=1e-5, atol=1e-5)
        results = [_in_thread(lambda: runner.infer(x)) for _ in range(2)]  # a new lane, made by a new thread
        assert runner.contexts == 2
        np.testing.assert_allclose(next(held), want, rtol=1e-5, atol=1e-5)
        held.close()
    for got in results:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert all(kind != "device" for kind, _ in cuda.kind.values())


def test_host_buffer_and_deactivate_from_other_threads_use_the_runner_device(two: tuple[Path, Any]) -> None:
    engine, cuda = two
    x = np.random.default_rng(1).standard_normal((4, 3, 32, 32), dtype=np.float32)
    want = _expected(engine, x)
    runner = TensorRTRunner(engine, TensorRTOptions(device=1))
    _in_thread(runner.activate)
    buf = _in_thread(lambda: runner.host_buffer((4, 3, 32, 32)))
    assert cuda.kind[buf.ctypes.data][1] == 1
    buf[:] = x
    np.testing.assert_allclose(_in_thread(lambda b=buf: runner.infer(b)), want, rtol=1e-5, atol=1e-5)
    _in_thread(runner.deactivate)  # frees device-1 memory from a thread whose device is 0
    del buf
    assert cuda.memory == {}


def test_a_host_buffer_kept_after_deactivate_still_holds_its_values(two: tuple[Path, Any]) -> None:
    """The double's pinned memory, like the real one, is not owned by numpy and is poisoned
    when freed: a buffer freed under a caller's array would read NaN here."""
    engine, _ = two
    with TensorRTRunner(engine) as runner:
        buf = runner.host_buffer((2, 3, 32, 32))
        buf[:] = 0.5
    assert not np.isnan(buf).any() and (buf == 0.5).all()


def test_gpu_input_is_handed_over_on_the_stream_that_reads_it(two: tuple[Path, Any]) -> None:
    engine, cuda = two
    x = np.random.default_rng(2).standard_normal((3, 3, 32, 32), dtype=np.float32)
    want = _expected(engine, x)
    with TensorRTRunner(engine, TensorRTOptions(device=1)) as runner:
        cuda.set_device(1)
        tensor = fake_tensorrt.FakeGpuTensor(cuda, x.shape, device=1)
        tensor.fill(x)  # queued on the producer's stream, not yet run
        np.testing.assert_allclose(runner.infer(tensor), want, rtol=1e-5, atol=1e-5)
        assert tensor.handed[-1] in runner._lanes.lanes[0].__dict__.values()  # one of the lane's streams
        tensor.close()


def test_the_double_catches_a_wrong_stream_hand_off(two: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Handing the producer no stream (so nothing orders its writes before our reads) gives
    stale input and wrong logits on the double, as it could on a GPU."""
    engine, cuda = two
    import runtime.core.backends.tensorrt.active as module

    real = module.from_dlpack
    monkeypatch.setattr(module, "from_dlpack", lambda obj, stream: real(obj, -1))
    x = np.random.default_rng(3).standard_normal((3, 3, 32, 32), dtype=np.float32)
    want = _expected(engine, x)
    with TensorRTRunner(engine, TensorRTOptions(device=1)) as runner:
        cuda.set_device(1)
        tensor = fake_tensorrt.FakeGpuTensor(cuda, x.shape, device=1)
        tensor.fill(x)
        got = runner.infer(tensor)
        tensor.close()
    assert not np.allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_gpu_tensor_on_another_device_is_refused_before_its_capsule_is_asked(two: tuple[Path, Any]) -> None:
    engine, cuda = two
    with TensorRTRunner(engine, TensorRTOptions(device=1)) as runner:
        tensor = fake_tensorrt.FakeGpuTensor(cuda, (3, 3, 32, 32), device=0)
        with pytest.raises(UserError, match="on CUDA device 0 .* this runner uses device 1"):
            runner.infer(tensor)
        assert tensor.handed == []  # no stream of device 1 was handed to a device-0 producer
        tensor.close()
