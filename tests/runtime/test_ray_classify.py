"""Classification on Ray Data against local classify, on one small local Ray cluster.

Ray takes seconds to start, so one cluster (2 CPUs, like CI) serves every test here and
the tests that need it are few and small. The bad-input tests run without any cluster.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.datasets import load_digits
from runtime.app.ray import RayOptions
from runtime.app.ray import ray_classify as runtime_ray_classify
from runtime.app.ray.stages import _actor_resources, decode_batch
from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec, load_manifest
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray_imgs")
    test = load_digits("test")
    for i in range(10):
        img = test.image(i).resize((24, 24))
        img.save(root / f"{i:02d}_label{test.labels[i]}.{'png' if i % 2 else 'jpg'}")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return root


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local 2-CPU Ray cluster for the whole session; yields its address for other drivers."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _by_path(lines: list[str]) -> dict[str, dict]:  # type: ignore[type-arg]
    rows = [json.loads(line) for line in lines]
    return {r["path"]: r for r in rows}


def test_ray_matches_local_classify(ray_cluster: str, digits_export: Path, images: Path, tmp_path: Path) -> None:
    import runtime
    from runtime.app.classify import classify
    from runtime.app.images.inputs import collect_images
    from runtime.app.images.pipeline import HostPipeline
    from runtime.app.images.transform import ImageTransform

    model = digits_export / "model.onnx"
    manifest = load_manifest(model)
    inputs = collect_images([images])
    paths = inputs.paths
    transform = ImageTransform(manifest.preprocessing, manifest.input_spec)
    with HostPipeline(transform, 4, 0) as pipeline, runtime.load(model) as runner:
        classify(runner, pipeline, inputs, manifest.labels, tmp_path / "local.jsonl", 3)
    stats = runtime.ray_classify(model, paths, tmp_path / "ray.jsonl", batch=4, topk=3, workers=1)

    local = _by_path((tmp_path / "local.jsonl").read_text().splitlines())
    on_ray = _by_path((tmp_path / "ray.jsonl").read_text().splitlines())
    assert set(on_ray) == set(local) == {str(p) for p in paths}  # every file, none lost or doubled
    assert (stats.images, stats.classified, stats.skipped) == (11, 10, 1)
    assert on_ray[str(images / "broken.png")] == local[str(images / "broken.png")]
    assert on_ray[str(images / "broken.png")]["error"].startswith("unreadable image")
    for path, row in local.items():
        if "error" in row:
            continue
        assert list(on_ray[path]) == list(row)  # same record fields, same order
        assert on_ray[path]["classes"] == row["classes"] and on_ray[path]["labels"] == row["labels"]
        np.testing.assert_allclose(on_ray[path]["probs"], row["probs"], rtol=1e-5, atol=1e-6)
    correct = sum(r["classes"][0] == int(Path(p).stem.split("label")[1]) for p, r in on_ray.items() if "error" not in r)
    assert correct >= 8  # a trained model on held-out digits


def test_decoding_runs_in_tasks_beside_the_actors(ray_cluster: str, digits_export: Path, images: Path) -> None:
    import pyarrow as pa
    import ray

    from runtime.app.ray import classify_dataset

    paths = ray.data.from_arrow(pa.table({"path": [str(images / "00_label0.jpg"), str(images / "broken.png")]}))
    result = classify_dataset(paths, digits_export / "model.onnx", RayOptions(batch=2, topk=1, workers=1)).materialize()
    rows = sorted(result.take_all(), key=lambda r: r["path"])
    assert rows[0]["error"] is None and rows[0]["classes"] == [0] and rows[1]["classes"] is None
    # Ray fuses stages with equal resource requests; decoding inside the actors would
    # serialise it with inference.
    assert "MapBatches(decode_batch)->" not in result.stats()


def test_cli_joins_a_running_cluster_and_writes_parquet(
    ray_cluster: str, digits_export: Path, images: Path, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "preds.parquet"
    res = run_cli(
        "runtime", "classify", str(digits_export / "model.onnx"), str(images), "--ray", "--ray-address", ray_cluster,
        "--output", str(out), "--batch", "4", "--topk", "2",
    )  # fmt: skip
    assert res.returncode == 3, res.stderr  # one unreadable file, as local classify
    assert "skipped 1 unreadable" in res.stderr and "broken.png" in res.stderr
    assert "core_worker" not in res.stderr and "deprecated" not in res.stderr  # Ray's noise on a normal run
    table = pq.read_table(out)
    assert table.num_rows == 11 and table.column_names == ["path", "error", "classes", "labels", "probs"]
    rows = table.to_pylist()
    assert sum(r["error"] is not None for r in rows) == 1
    assert all(len(r["classes"]) == 2 and r["probs"][0] >= r["probs"][1] for r in rows if r["error"] is None)


def test_import_runtime_does_not_import_ray() -> None:
    code = "import sys, runtime, runtime.app.cli.main; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_not_installed_names_the_extra(digits_export: Path, images: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from runtime.app.cli.main import main; "
        f"sys.exit(main(['classify', {str(digits_export / 'model.onnx')!r}, {str(images)!r}, '--ray']))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "pip install -e '.[ray]'" in res.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", "no-port-here"])
def test_unreachable_address_is_one_line(digits_export: Path, images: Path, address: str) -> None:
    address = address.format(port=_closed_port())
    res = run_cli(
        "runtime", "classify", str(digits_export / "model.onnx"), str(images), "--ray", "--ray-address", address,
        timeout=60,
    )  # fmt: skip  # a join that hangs fails on the timeout
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"error: --ray-address {address}")


@pytest.fixture
def http_server() -> Iterator[int]:
    """A throwaway HTTP server on a loopback port: it answers, but it is not Ray."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_that_answers_but_is_not_ray_is_one_line(
    digits_export: Path, images: Path, http_server: int, scheme: str
) -> None:
    """ray.init would retry such an address for about 14 minutes; the timeout catches a hang."""
    address = f"{scheme}127.0.0.1:{http_server}"
    res = run_cli(
        "runtime", "classify", str(digits_export / "model.onnx"), str(images), "--ray", "--ray-address", address,
        timeout=60,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"error: --ray-address {address}")
    assert "not as a Ray cluster" in res.stderr


def test_a_silent_server_is_not_taken_for_ray() -> None:
    from runtime.app.ray.session import check_reachable

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(UserError, match="not as a Ray cluster .*said nothing"):
            check_reachable(address, timeout=0.5)


def test_unwritable_output_fails_before_ray_starts(
    digits_export: Path, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "out.csv"
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

    def no_cluster(*args: object, **kwargs: object) -> None:
        pytest.fail("a Ray cluster was started or joined before the output was found unwritable")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(OSError, match="cannot write it") as raised:
        runtime_ray_classify(digits_export / "model.onnx", [images / "broken.png"], target)
    assert raised.value.filename == str(target)
    model, image = str(digits_export / "model.onnx"), str(images / "broken.png")
    for ray_flags in ([], ["--ray"]):  # an OS error exits 74 (EX_IOERR) with or without Ray
        res = run_cli("runtime", "classify", model, image, "--output", str(target), *ray_flags)
        assert res.returncode == 74 and f"{target}" in res.stderr and "cannot write it" in res.stderr, res.stderr


def test_ray_flags_need_ray(digits_export: Path, images: Path) -> None:
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(images), "--gpus-per-worker", "1")
    assert res.returncode == 2 and "need --ray" in res.stderr


def test_actor_resources_follow_the_cluster() -> None:
    assert _actor_resources({"CPU": 64, "GPU": 8}, RayOptions()) == (1.0, 8)
    assert _actor_resources({"CPU": 64, "GPU": 8}, RayOptions(gpus_per_worker=0.5)) == (0.5, 16)
    assert _actor_resources({"CPU": 2}, RayOptions()) == (0.0, 1)
    with pytest.raises(UserError, match="leave at least one for decoding"):
        _actor_resources({"CPU": 2}, RayOptions(workers=2))
    with pytest.raises(UserError, match="at least one"):
        _actor_resources({"CPU": 8}, RayOptions(workers=0))


def test_decode_batch_builds_uint8_nhwc_rows_and_carries_errors(digits_export: Path, images: Path) -> None:
    from runtime.app.images.transform import ImageTransform
    from runtime.core.preprocess import load_and_preprocess, open_image, resize_and_crop

    cfg = load_manifest(digits_export / "model.onnx").preprocessing
    good, bad = str(next(images.glob("01_label*"))), str(images / "broken.png")
    batch = {"path": np.asarray([good, bad], dtype=object)}
    as_uint8 = decode_batch(batch, ImageTransform(cfg, InputSpec("uint8")))
    assert as_uint8["image"].dtype == np.uint8 and as_uint8["image"].shape == (2, cfg.input_size, cfg.input_size, 3)
    expected = np.asarray(resize_and_crop(open_image(good), cfg), dtype=np.uint8)
    np.testing.assert_array_equal(as_uint8["image"][0], expected)
    assert as_uint8["error"][0] == "" and as_uint8["error"][1].startswith("unreadable image")
    as_float = decode_batch(batch, ImageTransform(cfg, InputSpec()))
    np.testing.assert_array_equal(as_float["image"][0], load_and_preprocess(good, cfg))
    assert not as_float["image"][1].any()  # the failed row is a placeholder the actor never runs


def test_a_batch_the_runner_refuses_fails_the_job_as_locally(
    ray_cluster: str, digits_export: Path, images: Path
) -> None:
    import runtime
    from runtime.app.classify import classify
    from runtime.app.images.inputs import collect_images
    from runtime.app.images.pipeline import HostPipeline
    from runtime.app.images.transform import ImageTransform

    model = digits_export / "model.onnx"
    manifest = load_manifest(model)
    wrong = ImageTransform(manifest.preprocessing, InputSpec("uint8"))  # the model takes float32
    inputs = collect_images(sorted(images.glob("00_*")))  # one image: the same batch shape on both paths
    with HostPipeline(wrong, 4, 0) as pipeline, runtime.load(model) as runner:
        with pytest.raises(UserError) as local:
            classify(runner, pipeline, inputs, manifest.labels, None, 3)
    with pytest.raises(UserError) as on_ray:
        runtime_ray_classify(model, inputs, None, RayOptions(batch=4, workers=1), wrong)
    assert "(uint8) | expected float32" in str(local.value) and str(on_ray.value) == str(local.value)


def test_tensorrt_flags_reach_the_ray_actors_runner(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from runtime.app.ray.options import options_from_args
    from runtime.app.ray.stages import Classifier
    from runtime.core.loader import TensorRTOptions
    from tests.fakes import fake_tensorrt

    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    fake_tensorrt.install(monkeypatch)
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    engine = fake_tensorrt.write_engine(d / "model.engine", [[[1, 3, 32, 32]] * 3], d / "model.onnx", sidecar=False)
    args = argparse.Namespace(
        ray=True, ray_address=None, workers=1, gpus_per_worker=None, batch=4, topk=3, backend=None,
        cuda_graph=True, no_sidecar=True, allow_engine_host_code=True, decode="auto", device=0, no_cpu_graph=False,
    )  # fmt: skip
    from runtime.app.cli.commands import _load_options

    options = options_from_args(args, _load_options(args))
    assert options.tensorrt == TensorRTOptions(cuda_graph=True, allow_missing_sidecar=True, allow_engine_host_code=True)
    assert options.decode == "auto" and options.cpu_graph
    assert not options_from_args(argparse.Namespace(**{**vars(args), "no_cpu_graph": True}), options.tensorrt).cpu_graph
    with pytest.raises(UserError, match="sidecar|engine.json"):
        Classifier(str(engine), None, 3, None)
    actor = Classifier(str(engine), None, 3, None, options.tensorrt)  # the very object, passed through
    try:
        assert actor.runner.describe().endswith("+graph")
    finally:
        actor.runner.deactivate()


@pytest.mark.parametrize(
    ("model", "blocked"),
    [("model.engine", ("cuda", "cuda.bindings")), ("model.onnx", ("onnxruntime",))],
)
def test_backend_requirements_are_checked_before_ray_starts(
    digits_export: Path, images: Path, tmp_path: Path, model: str, blocked: tuple[str, ...]
) -> None:
    """A missing backend library is the local run's one line, exit 2, and Ray never starts."""
    from tests.fakes import fake_tensorrt

    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    fake_tensorrt.write_engine(d / "model.engine", [[[1, 3, 32, 32]] * 3], d / "model.onnx")
    block = "; ".join(f"sys.modules[{name!r}] = None" for name in blocked)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lines = []
    for ray_flags in ([], ["--ray"]):
        argv = ["classify", str(d / model), str(images), *ray_flags]
        code = (
            f"import sys, ray; {block}; ray.init = lambda *a, **k: sys.exit('ray.init was called'); "
            f"from runtime.app.cli.main import main; sys.exit(main({argv!r}))"
        )
        res = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert res.returncode == 2, res.stderr
        # Without an NVIDIA driver the engine's line says a GPU is needed instead (test_no_gpu.py).
        missing = "is not installed" in res.stderr or "a CUDA GPU is needed" in res.stderr
        assert res.stderr.count("\n") == 1 and missing, res.stderr
        lines.append(res.stderr)
    assert lines[0] == lines[1]


# --decode on Ray, and file names that are not UTF-8 (issue 17, item 7).

ODD_NAMES = [b"\xff.png", b"caf\xe9.jpg", b"new\nline.png", b"plain.jpg"]


@pytest.fixture(scope="module")
def odd_images(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Digits under names that are not UTF-8 (os.fsdecode: surrogate escapes), and one broken."""
    folder = tmp_path_factory.mktemp("ray_names")
    sources = sorted(images.glob("0*"))
    for raw, src in zip(ODD_NAMES, sources, strict=False):
        Image.open(src).save(os.fsdecode(bytes(folder) + b"/" + raw), format="PNG" if raw.endswith(b"png") else "JPEG")
    (folder / os.fsdecode(b"broken-\xe9.png")).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return folder


def test_decode_auto_on_a_cpu_cluster_is_the_cpu_path_and_keeps_odd_names(
    ray_cluster: str, digits_export: Path, odd_images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The one Ray run of this part: `--decode auto` without a GPU equals local (CPU) classify,
    says which it used, and Parquet keeps names that are not UTF-8 as their bytes."""
    import pyarrow.parquet as pq

    import runtime
    from runtime.app.classify import classify
    from runtime.app.images.inputs import collect_images
    from runtime.app.images.pipeline import HostPipeline, ImageTransform

    model = digits_export / "model.onnx"
    manifest = load_manifest(model)
    inputs = collect_images([odd_images])
    with HostPipeline(ImageTransform(manifest.preprocessing, manifest.input_spec), 4, 0) as pipeline:
        with runtime.load(model) as runner:
            classify(runner, pipeline, inputs, manifest.labels, tmp_path / "local.jsonl", 3)
    caplog.set_level(logging.INFO, logger="runtime.app.ray")
    stats = runtime.ray_classify(model, inputs, tmp_path / "ray.parquet", batch=2, topk=3, workers=1, decode="auto")
    assert "decoding in Ray CPU tasks with Pillow (--decode auto)" in caplog.text

    local = {os.fsencode(r["path"]): r for r in map(json.loads, (tmp_path / "local.jsonl").read_text().splitlines())}
    table = pq.read_table(tmp_path / "ray.parquet")
    assert str(table.schema.field("path").type) == "binary"  # the bytes on disk: lossless
    on_ray = {r["path"]: r for r in table.to_pylist()}
    assert set(on_ray) == set(local) == {bytes(odd_images) + b"/" + raw for raw in [*ODD_NAMES, b"broken-\xe9.png"]}
    assert (stats.classified, stats.skipped) == (4, 1)
    for path, row in local.items():
        if "error" in row:
            assert on_ray[path]["error"] == row["error"] and on_ray[path]["classes"] is None
            continue
        assert on_ray[path]["classes"] == row["classes"] and on_ray[path]["labels"] == row["labels"]
        np.testing.assert_allclose(on_ray[path]["probs"], row["probs"], rtol=1e-5, atol=1e-6)


def _results(paths: list[bytes]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "path": pa.array(paths, pa.binary()),
            "error": pa.array([None, "unreadable image"][: len(paths)], pa.string()),
            "classes": pa.array([[3], None][: len(paths)], pa.list_(pa.int64())),
            "labels": pa.array([["3"], None][: len(paths)], pa.list_(pa.string())),
            "probs": pa.array([[0.5], None][: len(paths)], pa.list_(pa.float64())),
        }
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_sink_writes_names_that_are_not_utf8_losslessly(tmp_path: Path, fmt: str) -> None:
    import csv

    pytest.importorskip("pyarrow")
    from runtime.app.ray.sink import sink

    names = [b"/d/\xff.png", b"/d/new\nline,\xe9.png"]
    out = tmp_path / f"r.{fmt}"
    with sink(out, fmt, 1, binary_paths=True) as write:
        write(_results(names))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_bytes().decode("ascii").splitlines()]  # ASCII JSON, one a line
        got = [os.fsencode(r["path"]) for r in rows]
    elif fmt == "csv":
        with open(out, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            rows = list(csv.DictReader(fh))
        got = [os.fsencode(r["path"]) for r in rows]
        assert rows[0]["class1"] == "3" and rows[1]["error"] == "unreadable image"
    else:
        import pyarrow.parquet as pq

        got = pq.read_table(out).column("path").to_pylist()
    assert got == names


def test_parquet_keeps_a_string_path_column_when_every_name_is_utf8(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from runtime.app.ray.paths import all_utf8
    from runtime.app.ray.sink import sink

    names = ["/d/café.png", "/d/plain.png"]
    assert all_utf8(names) and not all_utf8([os.fsdecode(b"/d/\xff.png")])
    with sink(tmp_path / "r.parquet", "parquet", 1, binary_paths=False) as write:
        write(_results([n.encode() for n in names]))
    table = pq.read_table(tmp_path / "r.parquet")
    assert str(table.schema.field("path").type) == "string" and table.column("path").to_pylist() == names


def test_decode_gpu_on_ray_that_cannot_run_is_one_line_before_ray_starts(
    digits_export: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.app.ray.decoding import check_on_driver

    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    argv = ["classify", str(digits_export / "model.onnx"), str(images), "--ray", "--decode", "gpu"]
    code = (
        "import sys, ray; ray.init = lambda *a, **k: sys.exit('ray.init was called'); "
        f"from runtime.app.cli.main import main; sys.exit(main({argv!r}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: --decode gpu: the onnxruntime backend")
    # An engine, on a driver without the extra (CuPy blocked): the driver needs no GPU, but the extra.
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(UserError, match="^--decode gpu: CuPy is not installed .*gpu-images"):
        check_on_driver("gpu", "tensorrt")
    check_on_driver("auto", "tensorrt")  # auto falls back instead


def test_where_ray_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.app.ray import decoding

    assert not decoding.decode_in_actors("auto", "onnxruntime", 1.0)
    with pytest.raises(UserError, match="--decode gpu: the onnxruntime backend"):
        decoding.decode_in_actors("gpu", "onnxruntime", 1.0)
    monkeypatch.setattr(decoding, "missing", lambda backend, device=True: None)  # as with the extra installed
    assert decoding.decode_in_actors("gpu", "tensorrt", 1.0) and decoding.decode_in_actors("auto", "tensorrt", 0.5)
    assert not decoding.decode_in_actors("auto", "tensorrt", 0.0) and not decoding.decode_in_actors(
        "cpu", "tensorrt", 1
    )
    with pytest.raises(UserError, match="--decode gpu: the Ray actors get no GPU"):
        decoding.decode_in_actors("gpu", "tensorrt", 0.0)


def test_an_actor_that_decodes_itself_answers_as_the_cpu_stage(
    digits_export: Path, odd_images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Ray: an actor that decodes its own batches through an image pipeline, in chunks of
    2 with unreadable files among them, against the CPU stage's one batch, on binary path
    cells. The pipeline stands in for the GPU one (same interface: a host pipeline decoding
    in this process), so the actor's own row bookkeeping runs; `--decode gpu` on an actor
    that cannot decode on a GPU fails the job."""
    pytest.importorskip("pyarrow")
    from runtime.app.images import pipeline as host
    from runtime.app.images.gpu import pipeline as device
    from runtime.app.images.pipeline import ImageTransform
    from runtime.app.ray import decoding
    from runtime.app.ray.stages import INFERENCE_FAILED, Classifier

    model = str(digits_export / "model.onnx")
    manifest = load_manifest(model)
    transform = ImageTransform(manifest.preprocessing, manifest.input_spec)
    cells = np.asarray(sorted(os.fsencode(p) for p in odd_images.iterdir()), dtype=object)
    by_stage = Classifier(model, None, 3, manifest.labels)
    refusing = Classifier(model, None, 3, manifest.labels, transform=transform, decode="gpu", batch=2)
    monkeypatch.setattr(decoding, "missing", lambda backend, device=True: None)  # as on a GPU actor
    monkeypatch.setattr(device, "DevicePipeline", lambda t, b, device_id=0: host.HostPipeline(t, b, 0))
    in_actor = Classifier(model, None, 3, manifest.labels, transform=transform, decode="auto", batch=2)
    assert isinstance(in_actor.decoder.pipeline, host.HostPipeline)  # the actor's own path, not the CPU stage's
    try:
        expected = by_stage(decode_batch({"path": cells}, transform)).to_pylist()
        assert in_actor({"path": cells}).to_pylist() == expected
        assert sum(r["error"] is None for r in expected) == 4 and expected[0]["path"] == sorted(cells)[0]
        refused = refusing({"path": cells}).to_pylist()
        assert all(r["error"].startswith(f"{INFERENCE_FAILED}--decode gpu on a Ray actor: ") for r in refused)
    finally:
        for actor in (by_stage, in_actor, refusing):
            actor.runner.deactivate()


@pytest.mark.gpu
def test_actor_gpu_decode_matches_the_cpu_stage(digits_export: Path, images: Path) -> None:
    """On a GPU with the gpu-images extra: the actor's GPU decode gives the CPU stage's
    samples (Pillow-decoded PNGs exactly; JPEGs within the decoders' 1 level, resized) and
    the same skipped rows."""
    from runtime.app.images.gpu import missing
    from runtime.app.images.pipeline import ImageTransform
    from runtime.app.ray.decoding import ActorDecoder

    if missing("tensorrt"):
        pytest.skip(str(missing("tensorrt")))
    cfg = load_manifest(digits_export / "model.onnx").preprocessing
    transform = ImageTransform(cfg, InputSpec("uint8"))
    paths = sorted(str(p) for p in images.iterdir())
    cpu = decode_batch({"path": np.asarray(paths, dtype=object)}, transform)
    decoder = ActorDecoder("gpu", "tensorrt", transform, 4)
    try:
        for first, device_images, ok, errors in decoder.batches(paths):
            host = device_images.get() if ok else None
            assert set(errors) == {i for i in range(4) if first + i < len(paths) and cpu["error"][first + i]}
            for r, i in enumerate(ok):
                want = cpu["image"][first + i].astype(int)
                diff = np.abs(host[r].astype(int) - want).max()
                assert diff == 0 if paths[first + i].endswith(".png") else diff <= 2, paths[first + i]
    finally:
        decoder.pipeline.close()


@pytest.mark.parametrize("cpus", [1, 2])
def test_too_many_workers_for_a_local_cluster_is_refused_before_ray_starts(
    cpus: int, digits_export: Path, images: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local cluster gets this machine's CPUs: --workers that leave none for decoding is one
    line and exit 2, before ray.init (which would take seconds, then fail the same way)."""
    import ray

    from runtime.app.cli.main import main

    def no_start(*args: object, **kwargs: object) -> None:
        raise AssertionError("Ray was started")

    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(ray, "init", no_start)
    rc = main(["classify", str(digits_export / "model.onnx"), str(images), "--ray", "--workers", str(cpus)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"error: --workers {cpus}: a local Ray cluster")


def test_parquet_output_without_ray_names_ray(digits_export: Path, images: Path) -> None:
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(images), "--output", "x.parquet")
    assert res.returncode == 2 and "Parquet is written by --ray" in res.stderr
    assert len(res.stderr.splitlines()) == 1 and not (ROOT / "x.parquet").exists()


def test_one_node_fails_a_crashed_actor_instead_of_restarting_it() -> None:
    from runtime.app.ray.stages import actor_restarts

    one = {"CPU": 2.0, "node:__internal_head__": 1.0, "node:10.0.0.1": 1.0}
    two = {**one, "node:10.0.0.2": 1.0}
    assert actor_restarts(one) == {"max_restarts": 0} and actor_restarts(two) == {}

    def no_extra_arguments(fn: object, *, batch_size: int = 1) -> None: ...

    assert actor_restarts(one, no_extra_arguments) == {}  # a later Ray without **ray_remote_args


def test_a_new_local_cluster_does_not_warn_about_token_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray logs a WARNING on every new local cluster that token authentication is on; it
    stays on, and the line is not shown."""
    import ray

    from runtime.app.ray.session import ray_session

    seen: list[bool] = []
    auth_log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    monkeypatch.setattr(auth_log, "level", auth_log.level)  # restored after the test
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.append(auth_log.isEnabledFor(logging.WARNING)))
    monkeypatch.setattr(ray, "cluster_resources", dict)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with ray_session(None):
        pass
    assert seen == [False]
