"""The TensorRT runner's execution side against the test double (tests/fakes): padding,
one engine shared by many contexts, overlapping copies, CUDA graphs, pinned buffers,
uint8 input, and the checks made before an engine is loaded.

FakeCuda runs queued work only when it is waited for, so a missing wait reads stale
bytes and fails these tests; the same code runs on real streams in test_cuda_gpu.py."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import runtime
from runtime.core.backends.tensorrt import TensorRTRunner
from runtime.core.errors import UserError
from runtime.core.io import sha256_file
from tests.conftest import run_cli
from tests.fakes import fake_tensorrt

STATIC = [[4, 3, 32, 32]] * 3
DYNAMIC = [[1, 3, 32, 32], [4, 3, 32, 32], [4, 3, 32, 32]]


@pytest.fixture
def model_dir(digits_export: Path, tmp_path: Path) -> Path:
    return fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, fake_tensorrt.FakeCuda]:
    return fake_tensorrt.install(monkeypatch)


def _reference(model_dir: Path, x: np.ndarray) -> np.ndarray:
    with runtime.load(model_dir / "model.onnx") as ort_runner:
        return ort_runner.infer(x)


def _images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size), dtype=np.float32)


def _engine(model_dir: Path, profiles: list[list[int]] | list[list[list[int]]], **kw: Any) -> Path:
    nested = profiles if isinstance(profiles[0][0], list) else [profiles]
    return fake_tensorrt.write_engine(model_dir / "model.engine", nested, model_dir / "model.onnx", **kw)  # type: ignore[arg-type]


def test_static_profile_pads_partial_chunks_and_slices_outputs(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir, STATIC)
    x = _images(9)
    expected = _reference(model_dir, x)
    with runtime.load(engine) as runner:
        for n in (5, 1, 9, 4):
            np.testing.assert_allclose(runner.infer(x[:n]), expected[:n], rtol=1e-5, atol=1e-5)
        with pytest.raises(UserError, match=r"got shape \(5, 3, 40, 40\) \| engine profile allows \(4,3,32,32\)"):
            runner.infer(_images(5, size=40))


def test_profile_with_min_batch_over_one(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir, [[2, 3, 32, 32], [3, 3, 32, 32], [3, 3, 32, 32]])
    x = _images(7, seed=1)
    with runtime.load(engine) as runner:
        np.testing.assert_allclose(runner.infer(x), _reference(model_dir, x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runner.infer(x[:1]), _reference(model_dir, x[:1]), rtol=1e-5, atol=1e-5)


def test_threads_share_one_engine_and_get_a_context_each(model_dir: Path, fake: Any) -> None:
    trt, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    inputs = [_images(6, seed=i) for i in range(4)]
    expected = [_reference(model_dir, x) for x in inputs]
    # Both threads must be inside infer at once: each waits for the other at its first copy.
    barrier, real_htod, seen = threading.Barrier(2, timeout=20), cuda.htod_async, set()

    def htod(*args: Any) -> None:
        if threading.get_ident() not in seen:
            seen.add(threading.get_ident())
            barrier.wait()
        real_htod(*args)

    cuda.htod_async = htod
    results: dict[int, list[np.ndarray]] = {}
    with TensorRTRunner(engine) as runner:

        def work(i: int) -> None:
            results[i] = [runner.infer(inputs[j]) for j in range(i, len(inputs), 2) for _ in range(2)]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert runner.deserialisations == 1 and trt.deserialised == 1
        assert runner.contexts == 2 and runner.engine.contexts == 2
    for i in range(2):
        for k, out in enumerate(results[i]):
            np.testing.assert_allclose(out, expected[i + 2 * (k // 2)], rtol=1e-5, atol=1e-5)
    assert cuda.memory == {} and cuda.streams == set() and cuda.events == {}


def test_next_chunk_is_copied_before_the_previous_one_is_waited_for(model_dir: Path, fake: Any) -> None:
    _, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    log: list[tuple[str, int]] = []
    real_htod, real_wait = cuda.htod_async, cuda.event_synchronize

    def htod(dst: int, src: int, n: int, stream: int) -> None:
        log.append(("h2d", dst))
        real_htod(dst, src, n, stream)

    def wait(event: int) -> None:
        log.append(("wait", event))
        real_wait(event)

    cuda.htod_async, cuda.event_synchronize = htod, wait
    x = _images(12, seed=3)
    with runtime.load(engine) as runner:
        out = runner.infer(x)  # three chunks of four
    np.testing.assert_allclose(out, _reference(model_dir, x), rtol=1e-5, atol=1e-5)
    kinds = [k for k, _ in log]
    assert kinds[:3] == ["h2d", "h2d", "wait"], log  # chunk 1 is on its way while chunk 0 runs
    assert log[0][1] != log[1][1]  # into the other slot's device buffer
    assert kinds.count("h2d") == 3


def test_infer_batches_overlaps_successive_batches(model_dir: Path, fake: Any) -> None:
    _, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    batches = [_images(3, seed=s) for s in range(4)]
    order: list[str] = []
    real_htod = cuda.htod_async

    def htod(*args: Any) -> None:
        order.append("h2d")
        real_htod(*args)

    cuda.htod_async = htod
    got = []
    with runtime.load(engine) as runner:
        for out in runner.infer_batches(iter(batches)):
            order.append("out")
            got.append(out)
    assert order == ["h2d", "h2d", "out", "h2d", "out", "h2d", "out", "out"]  # batch i+1 sent before i is read
    for x, out in zip(batches, got, strict=True):
        np.testing.assert_allclose(out, _reference(model_dir, x), rtol=1e-5, atol=1e-5)


def test_the_double_catches_a_runner_that_reads_before_waiting(model_dir: Path, fake: Any) -> None:
    _, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    cuda.event_synchronize = lambda event: None  # a runner that forgot to wait
    with runtime.load(engine) as runner:
        out = runner.infer(_images(2))
    assert not np.allclose(out, _reference(model_dir, _images(2)), atol=1e-3)


def test_cuda_graphs_are_captured_once_per_shape_and_slot_then_replayed(model_dir: Path, fake: Any) -> None:
    _, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    x = _images(4, seed=5)
    expected = _reference(model_dir, x)
    with runtime.load(engine, options=runtime.TensorRTOptions(cuda_graph=True)) as runner:
        assert runner.describe().endswith("+graph")
        for _ in range(4):
            np.testing.assert_allclose(runner.infer(x), expected, rtol=1e-5, atol=1e-5)
        assert cuda.launches == 4 and cuda.graph_launches == 2  # slots 0 and 1: run + capture; then replays
        np.testing.assert_allclose(runner.infer(x[:3]), expected[:3], rtol=1e-5, atol=1e-5)  # a new shape
        assert len(cuda.graphs) == 3
    assert cuda.graphs == {} and cuda.memory == {}


def test_pinned_host_buffers_are_copied_without_staging(model_dir: Path, fake: Any) -> None:
    _, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    sources: list[int] = []
    real_htod = cuda.htod_async

    def htod(dst: int, src: int, n: int, stream: int) -> None:
        sources.append(src)
        real_htod(dst, src, n, stream)

    cuda.htod_async = htod
    x = _images(4, seed=6)
    expected = _reference(model_dir, x)
    with runtime.load(engine) as runner:
        buf = runner.host_buffer((4, 3, 32, 32))
        assert buf.dtype == np.float32 and buf.flags.c_contiguous
        buf[:] = x
        np.testing.assert_allclose(runner.infer(buf), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(runner.infer(buf[1:3]), expected[1:3], rtol=1e-5, atol=1e-5)
        assert sources == [buf.ctypes.data, buf[1:].ctypes.data]  # straight from the caller's memory
        np.testing.assert_allclose(runner.infer(x[::-1]), expected[::-1], rtol=1e-5, atol=1e-5)  # strided: staged
    assert list(cuda.memory) == [buf.ctypes.data]  # the host buffer is its array's: alive while it is
    del buf
    assert cuda.memory == {}


def test_dlpack_host_tensors_run_like_arrays(model_dir: Path, fake: Any) -> None:
    class HostTensor:  # what a CPU torch tensor looks like to the runner
        def __init__(self, a: np.ndarray) -> None:
            self.a = a

        def __dlpack__(self, stream: Any = None) -> Any:
            return self.a.__dlpack__()

        def __dlpack_device__(self) -> tuple[int, int]:
            return self.a.__dlpack_device__()

    engine = _engine(model_dir, DYNAMIC)
    x = _images(3, seed=7)
    with runtime.load(engine) as runner:
        np.testing.assert_allclose(runner.infer(HostTensor(x)), _reference(model_dir, x), rtol=1e-5, atol=1e-5)
        with pytest.raises(UserError, match="expected a numpy array or a DLPack tensor"):
            runner.infer([[1.0]])


# -- uint8 models ---------------------------------------------------------------------------
def _uint8_model(d: Path) -> Path:
    """model.onnx taking uint8 NHWC: cast, mean over the image, a 3x10 matrix."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((3, 10)).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("Gemm", ["m", "w"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "uint8",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["b", "h", "w", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 10])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, d / "model.onnx")
    manifest = json.loads((d / "model.json").read_text())
    manifest["input"] = {"name": "images", "dtype": "uint8", "layout": "NHWC"}
    manifest.pop("onnx_sha256", None)
    (d / "model.json").write_text(json.dumps(manifest))
    return d / "model.onnx"


def test_uint8_models_take_uint8_nhwc_and_refuse_floats(model_dir: Path, fake: Any) -> None:
    onnx_path = _uint8_model(model_dir)
    pixels = np.random.default_rng(8).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    profile = [[1, 8, 8, 3], [2, 16, 16, 3], [2, 32, 32, 3]]
    engine = fake_tensorrt.write_engine(model_dir / "model.engine", [profile], onnx_path, input_dtype="uint8")
    with runtime.load(onnx_path) as ort_runner, runtime.load(engine) as runner:
        assert ort_runner.input_spec.is_uint8 and runner.input_spec.is_uint8
        expected = ort_runner.infer(pixels)
        np.testing.assert_allclose(runner.infer(pixels), expected, rtol=1e-5, atol=1e-4)  # chunks of 2, padded
        assert runner.host_buffer((2, 16, 16, 3)).dtype == np.uint8
        for r in (ort_runner, runner):
            with pytest.raises(UserError, match=r"got shape \(1, 3, 16, 16\) \(float32\) \| expected uint8 NHWC"):
                r.infer(np.zeros((1, 3, 16, 16), np.float32))
            with pytest.raises(UserError, match=r"got dtype float32 \| expected uint8 NHWC .*not normalised floats"):
                r.infer(np.zeros((1, 16, 16, 3), np.float32))


def test_engine_input_dtype_must_match_model_json(model_dir: Path, fake: Any) -> None:
    onnx_path = _uint8_model(model_dir)
    engine = fake_tensorrt.write_engine(
        model_dir / "model.engine", [[[1, 8, 8, 3]] * 3], onnx_path, input_dtype="uint8"
    )
    manifest = json.loads((model_dir / "model.json").read_text())
    manifest["input"] = {"name": "images", "dtype": "float32", "layout": "NCHW"}
    (model_dir / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"input 'images' is UINT8 \(uint8\), but model.json says float32"):
        runtime.load(engine).activate()


# -- what is checked before loading -----------------------------------------------------------
def test_version_compatible_engines_run_forward_with_host_code_allowed(model_dir: Path, monkeypatch: Any) -> None:
    for built, here, ok in (("10.3.0", "10.13.0.35", True), ("10.13.0", "11.0.0", True), ("10.13.0", "10.3.0", False)):
        fake_tensorrt.install(monkeypatch, version=here)
        engine = _engine(model_dir, DYNAMIC, host_code=True, version_compatible=True, library_version=built)
        if ok:
            with runtime.load(engine, options=runtime.TensorRTOptions(allow_engine_host_code=True)) as runner:
                assert runner.infer(_images(1)).shape == (1, 10)
        else:
            with pytest.raises(UserError, match=f"built with TensorRT {built}, this machine has {here}; a version-co"):
                runtime.load(engine).activate()
    fake_tensorrt.install(monkeypatch)
    engine = _engine(model_dir, DYNAMIC, host_code=True)  # the sidecar does not say version-compatible
    with pytest.raises(UserError, match="could not deserialise"):
        runtime.load(engine).activate()


def test_engine_without_sidecar_needs_the_flag(model_dir: Path, fake: Any, caplog: Any) -> None:
    engine = _engine(model_dir, DYNAMIC, sidecar=False)
    with pytest.raises(UserError, match="pass --no-sidecar to rely on TensorRT's own checks"):
        runtime.load(engine).activate()
    with caplog.at_level(logging.WARNING), runtime.load(engine, options=runtime.TensorRTOptions(allow_missing_sidecar=True)) as runner:
        assert runner.infer(_images(2)).shape == (2, 10)
    assert "no sidecar; loading it anyway as asked (--no-sidecar)" in caplog.text


def test_tensorrt_options_are_refused_for_onnx(model_dir: Path) -> None:
    res = run_cli("runtime", "parity", str(model_dir / "model.onnx"), "--cuda-graph")
    assert res.returncode == 2 and res.stderr.strip().endswith(
        "--cuda-graph applies to TensorRT engines, not to ONNX Runtime"
    )
    assert res.stderr.count("\n") == 1


def test_engine_from_another_export_is_refused(model_dir: Path, fake: Any) -> None:
    engine = _engine(model_dir, DYNAMIC)
    manifest = json.loads((model_dir / "model.json").read_text())
    manifest["onnx_sha256"] = "0" * 64
    (model_dir / "model.json").write_text(json.dumps(manifest))
    with pytest.raises(
        UserError, match=r"built from model.onnx \(sha256 .*\), but model.json records model.onnx as 000"
    ):
        runtime.load(engine).activate()


def test_engine_of_a_derived_graph_that_changed_since_is_refused(model_dir: Path, fake: Any) -> None:
    fp16 = model_dir / "model.fp16.onnx"
    shutil.copy(model_dir / "model.onnx", fp16)
    engine = fake_tensorrt.write_engine(model_dir / "model.fp16.engine", [DYNAMIC], fp16, precision="fp16")
    with runtime.load(engine):
        pass
    fp16.write_bytes(fp16.read_bytes() + b"\0")
    with pytest.raises(UserError, match=r"the model.fp16.onnx beside it is .* \(re-exported since\?\)"):
        runtime.load(engine).activate()


def test_int8_graph_from_another_model_onnx_is_refused(model_dir: Path, fake: Any) -> None:
    int8 = model_dir / "model.int8.onnx"
    shutil.copy(model_dir / "model.onnx", int8)
    engine = fake_tensorrt.write_engine(model_dir / "model.int8.engine", [DYNAMIC], int8, precision="int8")
    meta = json.loads(engine.with_name(engine.name + ".json").read_text())
    report = {"int8_onnx_sha256": meta["source_onnx_sha256"], "source_onnx_sha256": "f" * 64}
    (model_dir / "calibration.json").write_text(json.dumps(report))
    with pytest.raises(UserError, match=r"calibration.json says that graph came from a model.onnx of sha256 ffff"):
        runtime.load(engine).activate()


# -- TensorRT-RTX engines ---------------------------------------------------------------------
def _rtx_engine(model_dir: Path, targets: list[str]) -> Path:
    return _engine(
        model_dir,
        DYNAMIC,
        flavour="tensorrt-rtx",
        library_version="1.7.1.116",
        target_compute_capabilities=targets,
        built_with_gpu=False,
        gpu_name=None,
        compute_capability=None,
    )


@pytest.mark.parametrize(
    ("capability", "devices", "message"),
    [
        ("9.0", 1, r"cannot run on Fake GPU \(Hopper, compute capability 9.0\); TensorRT-RTX has no Hopper support"),
        ("8.7", 1, r"cannot run on Fake GPU \(Jetson, compute capability 8.7\)"),
        ("8.0", 1, r"built by TensorRT-RTX for compute capabilities 8.6, 8.9; this GPU is Fake GPU \(8.0\)"),
        ("8.6", 0, r"a TensorRT-RTX engine runs only on an NVIDIA GPU, and this machine has none"),
    ],
)
def test_rtx_engine_off_target_is_refused_before_the_library_is_touched(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capability: str, devices: int, message: str
) -> None:
    fake_tensorrt.install(monkeypatch, fake_tensorrt.FakeCuda(capability=capability, devices=devices))
    engine = _rtx_engine(model_dir, ["8.6", "8.9"])
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)  # importing it now would fail loudly
    with pytest.raises(UserError, match=message):
        runtime.load(engine).activate()


def test_rtx_engine_on_a_target_gpu_runs_after_the_validity_check(model_dir: Path, monkeypatch: Any) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch, fake_tensorrt.FakeCuda(capability="8.6"), flavour="tensorrt-rtx")
    trt.__version__ = "1.7.1.116"
    engine = _rtx_engine(model_dir, ["8.6", "8.9"])
    with runtime.load(engine) as runner:
        assert runner.describe() == "tensorrt-rtx:model.engine" and runner.infer(_images(1)).shape == (1, 10)
    trt.validity = ("INVALID", 2 | 4)
    with pytest.raises(
        UserError, match="tensorrt-rtx says this engine cannot run here: UNSUPPORTED_CC, OLD_CUDA_DRIVER"
    ):
        runtime.load(engine).activate()
    trt.__version__ = "1.8.0.1"
    with pytest.raises(
        UserError, match=r"built with TensorRT-RTX 1.7.1.116, this machine has 1.8.0.1; engines run only"
    ):
        runtime.load(engine).activate()


def test_real_rtx_validity_check_is_reported_in_one_line(model_dir: Path, monkeypatch: Any) -> None:
    """A real TensorRT-RTX engine, built here without a GPU, judged by the real library."""
    trt = pytest.importorskip("tensorrt_rtx")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(model_dir / "model.onnx"))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    assert blob is not None
    engine = _rtx_engine(model_dir, [])
    engine.write_bytes(bytes(memoryview(blob)))
    monkeypatch.setattr(
        "runtime.core.backends.cuda.default_cuda", lambda: fake_tensorrt.FakeCuda(capability="8.6")
    )
    meta = json.loads(engine.with_name(engine.name + ".json").read_text())
    meta["library_version"] = trt.__version__
    meta["engine_sha256"], meta["engine_size"] = sha256_file(engine), engine.stat().st_size
    engine.with_name(engine.name + ".json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match=r"model.engine: tensorrt-rtx says this engine cannot run here"):
        runtime.load(engine).activate()


def test_deactivate_reclaims_the_lane_of_an_abandoned_infer_batches(model_dir: Path, fake: Any) -> None:
    _, cuda = fake
    engine = _engine(model_dir, DYNAMIC)
    batches = [_images(2, seed=s) for s in range(3)]
    runner = runtime.load(engine).activate()
    gen = runner.infer_batches(iter(batches))
    first = next(gen)  # the caller stops here but keeps `gen`
    np.testing.assert_allclose(first, _reference(model_dir, batches[0]), rtol=1e-5, atol=1e-5)
    done = threading.Event()
    closer = threading.Thread(target=lambda: (runner.deactivate(), done.set()), daemon=True)
    closer.start()
    assert done.wait(10), "deactivate() waited forever on the suspended generator's lane"
    assert cuda.memory == {} and cuda.streams == set()  # the parked lane was freed too
    with pytest.raises(UserError, match="deactivated while infer_batches was paused"):
        next(gen)
    gen.close()
    with runner:  # reactivated: its lane bookkeeping is sound, so the next deactivate() returns
        np.testing.assert_allclose(runner.infer(batches[1]), _reference(model_dir, batches[1]), rtol=1e-5, atol=1e-5)


def test_classify_overlaps_batches_and_refills_its_buffer_only_once_copied(
    model_dir: Path, fake: Any, tmp_path: Path
) -> None:
    from runtime.app.classify import classify
    from runtime.app.images.inputs import collect_images
    from runtime.app.images.pipeline import HostPipeline
    from runtime.app.images.transform import ImageTransform
    from runtime.core.manifest import load_manifest

    _, cuda = fake
    engine = _engine(model_dir, [[1, 3, 32, 32], [4, 3, 32, 32], [4, 3, 32, 32]])  # a batch of 4 is one chunk
    rng = np.random.default_rng(3)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(10):  # distinct images, so stale buffer bytes would give other answers
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(images / f"{i:02d}.png")
    manifest = load_manifest(model_dir / "model.onnx")
    transform = ImageTransform(manifest.preprocessing, manifest.input_spec)
    inputs = collect_images([images])
    overlapped = []
    real_htod = cuda.htod_async

    def htod(dst: int, src: int, nbytes: int, stream: int) -> None:
        # Work queued on another stream and not yet run: a copy overlapping earlier compute.
        overlapped.append(any(len(cuda._queues[s]) > cuda._done[s] for s in cuda.streams if s != stream))
        real_htod(dst, src, nbytes, stream)

    cuda.htod_async = htod
    results = {}
    for name in (engine.name, "model.onnx"):
        with HostPipeline(transform, 4, 0) as pipeline, runtime.load(model_dir / name) as runner:
            buffer = runner.host_buffer((4, *transform.sample_shape))  # one buffer, refilled each batch
            stats = classify(runner, pipeline, inputs, manifest.labels, tmp_path / f"{name}.jsonl", 3, buffer)
        assert (stats.classified, stats.skipped) == (10, 0)
        results[name] = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    assert any(overlapped)  # batch i+1's copy was queued while batch i still ran
    on_trt, on_ort = results["model.engine"], results["model.onnx"]
    assert [r["path"] for r in on_trt] == [r["path"] for r in on_ort] == sorted(r["path"] for r in on_ort)
    for a, b in zip(on_trt, on_ort, strict=True):
        assert a["classes"] == b["classes"]
        np.testing.assert_allclose(a["probs"], b["probs"], rtol=1e-4, atol=1e-6)
