"""Real TensorRT-RTX builds (no GPU needed): runs here and in CI, never skipped.

Every engine a test below needs is built once, in one process, by the module fixtures:
that also proves several builds in one process each get their own layer log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import tensorrt_rtx  # noqa: F401  # a missing install fails these tests; it never skips them
from onnx import TensorProto, helper

from export.engine_options import EngineOptions
from export.fp16 import convert_fp16
from export.layers import LayerReport, read_report
from export.shapes import Profile, default_profile
from runtime.core.artifacts import PRECISIONS, onnx_for_precision
from runtime.core.errors import UserError
from tests.conftest import run_cli
from tests.fakes.fake_tensorrt import copy_model_dir

pytestmark = pytest.mark.rtx
RTX = "tensorrt-rtx"


def _build_all(src: Path, dst: Path, calib: str, method: str) -> dict[str, Path]:
    d = copy_model_dir(src, dst)
    convert_fp16(d / "model.onnx")
    res = run_cli("calibration", str(d / "model.onnx"), "--data", calib, "--limit", "32", "--method", method)
    assert res.returncode == 0, res.stderr
    return _build_engines(d)


def _build_engines(d: Path) -> dict[str, Path]:
    """An RTX engine of each precision from the model.onnx, fp16 and int8 graphs in `d`."""
    from export.engine import build_engine

    engines = {}
    for precision in PRECISIONS:
        onnx_path = onnx_for_precision(d / "model.onnx", precision)
        engines[precision], _ = build_engine(onnx_path, EngineOptions(profiles=[_profile(d)], flavour=RTX))
    return engines


def _profile(d: Path) -> Profile:
    size = json.loads((d / "model.json").read_text())["preprocessing"]["input_size"]
    return Profile((1, 3, size, size), (4, 3, size, size), (8, 3, size, size))


@pytest.fixture(scope="module")
def digits(digits_int8: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    # The session's FP16 graph and entropy calibration of the digits model, as `make engine` finds them.
    return _build_engines(Path(shutil.copytree(digits_int8, tmp_path_factory.mktemp("rtx_digits"), dirs_exist_ok=True)))


@pytest.fixture(scope="module")
def cifar(tiny_random_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rtx_256_8")
    calib = d / "calib.npy"  # preprocessed NCHW tensors; random weights need no real images
    np.save(calib, np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32))
    # max: ONNX Runtime's histogram calibrators fail on this random-weight model's tensors
    return _build_all(tiny_random_export, d / "m", str(calib), "max")


@pytest.fixture(params=["digits", "cifar"])
def engines(request: pytest.FixtureRequest) -> dict[str, Path]:
    return dict(request.getfixturevalue(request.param))


def _graph(engine: Path) -> onnx.GraphProto:
    side = json.loads(engine.with_name(engine.name + ".json").read_text())
    return onnx.load(engine.parent / side["source_onnx"], load_external_data=False).graph


def _layers_with(report: LayerReport, node: str) -> list:  # type: ignore[type-arg]
    return [layer for layer in report.layers if node in layer.onnx_nodes]


def test_sidecar_records_an_rtx_build_without_a_gpu(engines: dict[str, Path]) -> None:
    for precision, engine in engines.items():
        side = json.loads(engine.with_name(engine.name + ".json").read_text())
        assert side["flavour"] == RTX and side["library_version"] == tensorrt_rtx.__version__
        assert side["precision"] == precision and side["built_with_gpu"] is False
        assert side["gpu_name"] is None and side["compute_capability"] is None
        assert side["target_compute_capabilities"] == ["8.0", "8.6", "8.9", "12.0", "12.1"]
        assert side["tf32"] is False and side["input_dtype"] == "float32"
        assert engine.stat().st_size > 10_000 and read_report(engine).layers


def test_fp32_engine_computes_in_fp32_only(engines: dict[str, Path]) -> None:
    summary = read_report(engines["fp32"]).summary
    assert summary["fp32"] > 0 and summary["fp16"] == summary["int8"] == 0


def test_fp16_engine_every_convolution_outputs_fp16(engines: dict[str, Path]) -> None:
    report = read_report(engines["fp16"])
    convs = [n.name for n in _graph(engines["fp16"]).node if n.op_type == "Conv"]
    assert len(convs) >= 9
    for conv in convs:
        layers = _layers_with(report, conv)
        assert layers, f"{conv} is in no layer of the report"
        for layer in layers:
            assert set(layer.outputs) == {"fp16"}, (conv, layer)
    assert report.summary["fp16"] > report.summary["fp32"]


def test_int8_engine_quantized_convolutions_take_int8(engines: dict[str, Path]) -> None:
    report = read_report(engines["int8"])
    graph = _graph(engines["int8"])
    from_dq = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    quantized = [n.name for n in graph.node if n.op_type == "Conv" and n.input[0] in from_dq and n.input[1] in from_dq]
    assert len(quantized) >= 9
    for conv in quantized:
        runs = [
            layer
            for layer in _layers_with(report, conv)
            if layer.inputs and set(layer.inputs) == {"int8"} and "int8" in layer.weights
        ]
        assert runs, f"{conv}: no layer takes int8 input and int8 weights: {_layers_with(report, conv)}"
    assert report.summary["int8"] >= len(quantized)


def test_int8_engine_computes_the_rest_on_an_fp16_base(engines: dict[str, Path]) -> None:
    """model.int8.onnx keeps what is not quantized in FP16 (the calibration step's FP16 base),
    so no layer writes fp32 but two kinds: the INT8 convolutions, which TensorRT-RTX's
    ahead-of-time log reports as writing Float whatever the graph (it picks their kernels on
    the GPU at load time; a lone Q -> DQ -> Conv shows the same), and the layer that writes
    the float32 `logits` output. Element-wise layers (BN, activation, residual add) run in fp16."""
    report = read_report(engines["int8"])
    graph = _graph(engines["int8"])
    output_side = {n.name for n in graph.node if n.op_type == "Gemm" or set(n.output) & {o.name for o in graph.output}}
    batch_norms = {n.name for n in graph.node if n.op_type == "BatchNormalization"}
    assert batch_norms
    for layer in report.layers:
        if "fp32" in layer.outputs:
            int8_conv = layer.type == "convolution" and set(layer.inputs) == {"int8"}
            assert int8_conv or set(layer.onnx_nodes) & output_side, f"writes fp32: {layer}"
        if set(layer.onnx_nodes) & batch_norms and layer.type != "convolution":
            # (a scalar quantize-scale constant stays Float inside these fused layers)
            assert "fp16" in layer.weights, f"element-wise not in fp16: {layer}"


def test_two_resolution_buckets(digits_export: Path, tmp_path: Path) -> None:
    from export.engine import build_engine

    d = copy_model_dir(digits_export, tmp_path / "m")
    opts = EngineOptions(
        profiles=[Profile.parse("1x3x32x32:8x3x32x32:16x3x32x32"), Profile.parse("1x3x48x48:2x3x64x64:4x3x64x64")],
        flavour=RTX,
        compute_capabilities=["8.6", "12.0"],
    )
    engine, meta = build_engine(d / "model.onnx", opts)
    assert [p["max"] for p in meta.profiles] == [[16, 3, 32, 32], [4, 3, 64, 64]]
    assert meta.target_compute_capabilities == ["8.6", "12.0"]
    side = json.loads((d / "model.fp32.engine.json").read_text())
    assert side["target_compute_capabilities"] == ["8.6", "12.0"]
    assert set(side["options"]) == {"workspace_mib", "opt_level", "timing_cache"}  # each fact once


def test_unknown_op_is_refused_naming_node_and_op(digits_export: Path, tmp_path: Path) -> None:
    d = copy_model_dir(digits_export, tmp_path / "m")
    model = onnx.load(d / "model.onnx")
    node = next(n for n in model.graph.node if n.op_type == "Erf")
    node.op_type = "FancyErf"
    onnx.save(model, d / "model.onnx")
    res = run_cli("export", "engine", str(d / "model.onnx"), "--flavour", RTX)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert f"{RTX}'s ONNX parser rejected" in line and f"'{node.name}' (FancyErf)" in line
    assert not list(d.glob("*.engine*"))


def test_profile_the_graph_cannot_take_is_refused_by_the_builder(digits_export: Path, tmp_path: Path) -> None:
    """A graph with a fixed 32x32 input and a 64x64 profile: our checks pass it, RTX's builder does not."""
    from export.engine import build_engine

    d = copy_model_dir(digits_export, tmp_path / "m")
    model = onnx.load(d / "model.onnx")
    for dim in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.ClearField("dim_param")
        dim.dim_value = 32
    onnx.save(model, d / "model.onnx")
    opts = EngineOptions(profiles=[Profile.parse("1x3x64x64:2x3x64x64:4x3x64x64")], flavour=RTX)
    with pytest.raises(UserError, match=r"failed to build model.fp32.engine: .*profile has min=64.*tensor has 32"):
        build_engine(d / "model.onnx", opts)
    assert not list(d.glob("*.engine*")) and not list(d.glob("*.layers.json"))


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["--compute-capability", "9.0"], "--compute-capability 9.0: tensorrt-rtx targets only"),
        (["--timing-cache", "t.cache"], "tensorrt-rtx does not support --timing-cache"),
        (["--version-compatible"], "tensorrt-rtx does not support --version-compatible"),
        (["--hardware-compatibility", "ampere_plus"], "tensorrt-rtx does not support --hardware-compatibility"),
        (["--dla-core", "0"], "tensorrt-rtx does not support --dla-core"),
        (["--print-trtexec"], "tensorrt-rtx ships no trtexec"),
    ],
)
def test_options_rtx_cannot_honour_are_refused_before_building(
    digits_export: Path, tmp_path: Path, args: list[str], refused: str
) -> None:
    d = copy_model_dir(digits_export, tmp_path / "m")
    shutil.copy(d / "model.onnx", d / "model.fp16.onnx")  # DLA's rules want fp16/int8
    shapes = ["--shapes", "4x3x32x32:4x3x32x32:4x3x32x32"]
    res = run_cli("export", "engine", str(d / "model.fp16.onnx"), "--flavour", RTX, *shapes, *args)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and refused in res.stderr, res.stderr
    assert not list(d.glob("*.engine*"))


def test_layers_command_prints_the_table_and_json(digits: dict[str, Path]) -> None:
    res = run_cli("export", "layers", str(digits["int8"]))
    assert res.returncode == 0, res.stderr
    summary = read_report(digits["int8"]).summary
    assert f"fp32 {summary['fp32']}, fp16 {summary['fp16']}, int8 {summary['int8']}" in res.stdout.splitlines()[-1]
    assert "convolution" in res.stdout and "int8" in res.stdout
    data = json.loads(run_cli("export", "layers", str(digits["int8"]), "--json").stdout)
    assert data["summary"] == summary and {"name", "type", "inputs", "outputs", "onnx_nodes"} <= set(data["layers"][0])


def test_precision_of_an_engine_comes_from_its_sidecar(digits: dict[str, Path], tmp_path: Path) -> None:
    from runtime.core.artifacts import precision_of

    for name in ("model.int8.engine", "model.int8.engine.json"):
        shutil.copy(digits["int8"].parent / name, tmp_path / name.replace("model.int8", "renamed"))
    assert precision_of(tmp_path / "renamed.engine") == "int8"
    assert precision_of(str(digits["fp16"])) == "fp16" and precision_of("x/model.onnx") == "fp32"


def _uint8_model(d: Path) -> Path:
    """uint8 NHWC images -> Cast -> Transpose -> patch Conv -> mean -> Gemm logits, as a
    model exported with --input uint8 looks to the engine step."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 2, 2], rng.standard_normal(96).astype(np.float32).tolist())
    fc = helper.make_tensor("fc", TensorProto.FLOAT, [8, 10], rng.standard_normal(80).astype(np.float32).tolist())
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    nodes = [
        helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2], name="to_nchw"),
        helper.make_node("Conv", ["nchw", "w"], ["c"], strides=[2, 2], name="stem"),
        helper.make_node("ReduceMean", ["c", "axes"], ["m"], keepdims=0, name="pool"),
        helper.make_node("MatMul", ["m", "fc"], ["logits"], name="head"),
    ]
    graph = helper.make_graph(
        nodes,
        "uint8_nhwc",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["batch", "height", "width", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=[w, fc, axes],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), d / "model.onnx")
    manifest = {
        "model": "uint8_test",
        "arch": {"patch_size": 2, "act": "relu"},
        "preprocessing": {
            "input_size": 32,
            "crop_pct": 1.0,
            "interpolation": "bilinear",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
        },
        "input": {"name": "images", "dtype": "uint8", "layout": "NHWC"},
    }
    (d / "model.json").write_text(json.dumps(manifest))
    return d / "model.onnx"


def test_uint8_nhwc_model_builds_with_nhwc_profiles(tmp_path: Path) -> None:
    from export.engine import build_engine, default_options
    from runtime.core.manifest import InputSpec

    onnx_path = _uint8_model(tmp_path)
    opts = default_options(onnx_path)
    assert opts.profiles == [default_profile(32, InputSpec("uint8"))]
    engine, meta = build_engine(onnx_path, opts)
    assert meta.input_dtype == "uint8" and meta.profiles[0]["max"] == [64, 32, 32, 3]
    assert read_report(engine).summary["fp32"] > 0
    res = run_cli("export", "engine", str(onnx_path), "--shapes", "1x3x32x32:2x3x32x32:4x3x32x32")
    assert res.returncode == 2 and "channels must be 3" in res.stderr and "uint8 NHWC" in res.stderr
