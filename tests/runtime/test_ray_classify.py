"""Classification on Ray Data against local classify, on one small local Ray cluster.

Ray takes seconds to start, so one cluster (2 CPUs, like CI) serves every test here and
the tests that need it are few and small. The bad-input tests run without any cluster.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runtime.errors import UserError
from runtime.images.datasets import load_digits
from runtime.manifest import InputSpec, load_manifest
from runtime.ray_batch import RayOptions, _actor_resources, decode_batch
from runtime.ray_batch import ray_classify as runtime_ray_classify
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
    from runtime.classify import classify
    from runtime.images.inputs import collect_images
    from runtime.images.pipeline import HostPipeline, ImageTransform

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

    from runtime.ray_batch import classify_dataset

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
    table = pq.read_table(out)
    assert table.num_rows == 11 and table.column_names == ["path", "error", "classes", "labels", "probs"]
    rows = table.to_pylist()
    assert sum(r["error"] is not None for r in rows) == 1
    assert all(len(r["classes"]) == 2 and r["probs"][0] >= r["probs"][1] for r in rows if r["error"] is None)


def test_import_runtime_does_not_import_ray() -> None:
    code = "import sys, runtime, runtime.__main__; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_not_installed_names_the_extra(digits_export: Path, images: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None; from runtime.__main__ import main; "
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
    from runtime.images.pipeline import ImageTransform
    from runtime.images.preprocess import load_and_preprocess, open_image, resize_and_crop

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


def test_a_batch_the_runner_refuses_fails_the_job_as_locally(ray_cluster: str, digits_export: Path, images: Path) -> None:
    import runtime
    from runtime.classify import classify
    from runtime.images.inputs import collect_images
    from runtime.images.pipeline import HostPipeline, ImageTransform

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

    from runtime.ray_batch import Classifier, options_from_args
    from tests.fakes import fake_tensorrt

    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    fake_tensorrt.install(monkeypatch)
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    engine = fake_tensorrt.write_engine(d / "model.engine", [[[1, 3, 32, 32]] * 3], d / "model.onnx", sidecar=False)
    args = argparse.Namespace(
        ray=True, ray_address=None, workers=1, gpus_per_worker=None, batch=4, topk=3, backend=None,
        cuda_graph=True, no_sidecar=True,
    )  # fmt: skip
    options = options_from_args(args)
    assert options.cuda_graph and options.allow_missing_sidecar
    with pytest.raises(UserError, match="sidecar|engine.json"):
        Classifier(str(engine), None, 3, None)
    actor = Classifier(str(engine), None, 3, None, {"cuda_graph": True, "allow_missing_sidecar": True})
    try:
        assert actor.runner.describe().endswith("+graph")
    finally:
        actor.runner.deactivate()
