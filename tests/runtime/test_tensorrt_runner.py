"""TensorRTRunner's control flow against the TensorRT/CUDA test double (tests/fakes)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import runtime
from export.engine_options import EngineOptions
from export.shapes import Profile
from runtime.core.backends.tensorrt import TensorRTRunner
from runtime.core.errors import UserError
from tests.fakes import fake_tensorrt


@pytest.fixture
def built(digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    trt, cuda = fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine

    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    opts = EngineOptions(
        profiles=[Profile.parse("1x3x32x32:4x3x32x32:4x3x32x32"), Profile.parse("1x3x20x20:2x3x48x48:2x3x48x48")]
    )
    engine, _ = build_engine(d / "model.onnx", opts)
    return engine, trt, cuda


def test_parity_through_the_runner(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    from runtime.core.golden import run_parity

    result = run_parity(engine)  # golden batches of 8 are split into chunks of 4
    assert result and result.images == 16


def test_parity_runs_only_the_golden_shapes_an_engine_takes(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tensorrt.install(monkeypatch)
    from export.engine import build_engine, default_options
    from runtime.core.golden import run_parity

    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "d")
    engine, _ = build_engine(d / "model.onnx", default_options(d / "model.onnx"))  # 32x32 only
    result = run_parity(engine)
    assert result and result.images == 8 and "8x3x22x36 outside the engine profiles" in result.note


def test_large_batches_are_split_and_profiles_switched(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, cuda = built
    x = np.random.default_rng(0).standard_normal((10, 3, 32, 32), dtype=np.float32)
    big = np.random.default_rng(1).standard_normal((3, 3, 44, 44), dtype=np.float32)
    with runtime.load(engine) as runner, runtime.load(engine.with_name("model.onnx")) as ort_runner:
        np.testing.assert_allclose(runner.infer(x), ort_runner.infer(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runner.infer(big), ort_runner.infer(big), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runner.infer(x[:1]), ort_runner.infer(x[:1]), rtol=1e-5, atol=1e-5)
    assert cuda.memory == {} and cuda.streams == set()  # everything freed on exit


def test_shape_outside_every_profile_names_the_allowed_ranges(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    with runtime.load(engine) as runner:
        with pytest.raises(UserError) as err:
            runner.infer(np.zeros((1, 3, 64, 64), np.float32))
    msg = str(err.value)
    assert msg.startswith("input 'images' | got shape (1, 3, 64, 64) | engine profile allows")
    assert "(1,3,32,32)..(4,3,32,32)" in msg and "(1,3,20,20)..(2,3,48,48)" in msg


def test_infer_before_activate_and_bad_inputs(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    runner = runtime.load(engine)
    with pytest.raises(UserError, match="before activate"):
        runner.infer(np.zeros((1, 3, 32, 32), np.float32))
    with runner:
        with pytest.raises(UserError, match="expected float32"):
            runner.infer(np.zeros((1, 3, 32, 32), np.float64))
        with pytest.raises(UserError, match=r"\[batch, 3, height, width\]"):
            runner.infer(np.zeros((3, 32, 32), np.float32))


def test_failed_execution_is_an_error_not_garbage(built) -> None:  # type: ignore[no-untyped-def]
    engine, trt, _ = built
    trt.fail_execute = True
    with runtime.load(engine) as runner, pytest.raises(UserError, match="TensorRT execution failed"):
        runner.infer(np.zeros((1, 3, 32, 32), np.float32))


def _edit_sidecar(engine: Path, **changes: object) -> None:
    path = engine.with_name(engine.name + ".json")
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_engine_from_another_tensorrt_version_is_refused(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    _edit_sidecar(engine, library_version="10.3.0")
    with pytest.raises(UserError, match=r"built with TensorRT 10.3.0, this machine has 10.13.0.35; engines run only"):
        runtime.load(engine).activate()
    _edit_sidecar(engine, version_compatible=True)  # 10.3 version-compatible runs on 10.13
    with runtime.load(engine) as runner:
        assert runner.infer(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)


def test_engine_from_another_gpu_is_refused(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    _edit_sidecar(engine, compute_capability="9.0", gpu_name="NVIDIA H100")
    with pytest.raises(
        UserError, match=r"built for NVIDIA H100 \(compute capability 9.0\), this GPU is Fake GPU \(8.7\)"
    ):
        runtime.load(engine).activate()
    _edit_sidecar(engine, hardware_compatibility="ampere_plus")
    with runtime.load(engine):
        pass


def test_missing_sidecar_or_corrupt_engine(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    engine.write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="the engine is not the one the sidecar describes"):
        runtime.load(engine).activate()
    engine.with_name(engine.name + ".json").unlink()
    with pytest.raises(UserError, match="no such file; an engine is only loaded with the sidecar"):
        runtime.load(engine).activate()
    with pytest.raises(UserError, match="could not deserialise"):
        runtime.load(engine, options=runtime.TensorRTOptions(allow_missing_sidecar=True)).activate()


def test_one_runner_shared_by_threads_gives_correct_results(built) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = built
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((3, 3, 32, 32), dtype=np.float32) for _ in range(8)]
    with runtime.load(engine.with_name("model.onnx")) as ref_runner:
        expected = [ref_runner.infer(x) for x in inputs]
    results: dict[int, np.ndarray] = {}
    with TensorRTRunner(engine) as runner:

        def work(i: int) -> None:
            for _ in range(5):
                results[i] = runner.infer(inputs[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for i, exp in enumerate(expected):
        np.testing.assert_allclose(results[i], exp, rtol=1e-5, atol=1e-5)


def test_tensorrt_backend_needs_an_engine_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="runs .engine files"):
        runtime.load(tmp_path / "model.onnx", backend="tensorrt")
    with pytest.raises(UserError, match="expected an .engine"):
        runtime.load(tmp_path / "model.pt")


def test_failed_activation_frees_what_it_had_allocated(built, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    engine, _, cuda = built
    real_malloc, calls = cuda.malloc, []

    def second_malloc_fails(nbytes: int) -> int:
        calls.append(nbytes)
        if len(calls) == 2:
            raise UserError("CUDA cudaMalloc failed: cudaErrorMemoryAllocation")
        return real_malloc(nbytes)

    monkeypatch.setattr(cuda, "malloc", second_malloc_fails)
    runner = runtime.load(engine)
    with pytest.raises(UserError, match="cudaErrorMemoryAllocation"):
        runner.activate()
    assert not runner.is_active and cuda.memory == {} and cuda.streams == set()
