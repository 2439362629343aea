"""Every file in build/<model>/ by name, and the precisions: the one place that spells them.

    model.onnx                     the FP32 graph (`python -m export onnx`)
    model.json, golden.npz         its manifest and the PyTorch golden logits
    model.<p>.onnx                 the graph of precision p (fp16, int8), beside model.onnx
    model.int8.cpu.onnx            the INT8 graph for ONNX Runtime's CPU (never fed to TensorRT)
    calibration.json, .png         how the INT8 graph was made; the sensitivity chart
    model.<p>.engine               an engine, with its .engine.json sidecar and
    model.<p>.layers.json          per-layer precision report
    model.<p>.parity.json          parity of an engine (the Makefile writes it), and
    model.<p>.onnx-parity.json     of the ONNX graph it was built from (ONNX Runtime)

Other stems follow the same rule (foo.onnx -> foo.int8.onnx -> foo.int8.engine), but the
manifest, golden logits and calibration report keep their names: one set per folder.
A new precision is one line in PRECISIONS plus the step that writes its graph.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UserError
from .io import read_json_object

FP32, FP16, INT8 = "fp32", "fp16", "int8"
PRECISIONS = (FP32, FP16, INT8)

ONNX_NAME = "model.onnx"  # the FP32 graph; onnx_for_precision names the others
MANIFEST_NAME = "model.json"
GOLDEN_NAME = "golden.npz"
CALIBRATION_NAME = "calibration.json"
CHART_NAME = "calibration.png"
# The INT8 graph laid out for ONNX Runtime's CPU (uint8 activations, Q/DQ on outputs too),
# made by the same calibration as model.int8.onnx; TensorRT's rules forbid its layout.
CPU_INT8_NAME = "model.int8.cpu.onnx"
CPU_TAG = ".cpu"

ONNX_SUFFIX = ".onnx"
ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"  # added to the engine's whole name: model.fp16.engine.json
LAYERS_SUFFIX = ".layers.json"
PARITY_SUFFIX = ".parity.json"  # of an engine
ONNX_PARITY_SUFFIX = ".onnx-parity.json"  # of an ONNX graph
GRAPH_RECORD_SUFFIX = ".json"  # added to a derived graph's whole name: model.fp16.onnx.json

# A Triton model repository's version folder holds its file under the backend's default name.
TRITON_PLAN_NAME = "model.plan"
TRITON_ONNX_NAME = "model.onnx"


def _strip(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if name.endswith(suffix) else name


def check_precision(precision: str, what: str = "precision") -> str:
    """`precision` if it is one of PRECISIONS, else a UserError naming `what` was given."""
    if precision not in PRECISIONS:
        raise UserError(f"{what} {precision!r} | expected one of {', '.join(PRECISIONS)}")
    return precision


def precision_from_name(name: str) -> str:
    """fp16/int8 from an artifact's file name (model.fp16.onnx, model.int8.engine), else fp32.

    The naming rule `python -m export` writes; the fallback for files that carry no record."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    for precision in PRECISIONS:
        if precision != FP32 and f".{precision}." in name:
            return precision
    return FP32


def precision_of(model_file: str | Path) -> str:
    """The one place that knows an artifact's precision.

    An engine's precision is what its sidecar records (the graph it was built from decided
    it); an engine without a sidecar and any ONNX graph follow the file name that
    `python -m export` gives them (model.onnx, model.fp16.onnx, model.int8.onnx)."""
    path = Path(model_file)
    sidecar = sidecar_path(path)
    if path.suffix == ENGINE_SUFFIX and sidecar.is_file():
        data = read_json_object(sidecar, "an engine sidecar")
        if "precision" not in data:
            raise UserError(f"{sidecar}: not an engine sidecar (no precision)")
        return check_precision(str(data["precision"]), f"{sidecar}: precision")
    return precision_from_name(path.name)


def require_fp32_onnx(onnx_path: str | Path, step: str) -> None:
    """Refuse a precision-specific graph where `step` needs the FP32 model.onnx it derives from."""
    if precision_of(onnx_path) != FP32:
        raise UserError(f"{onnx_path}: {step} takes the FP32 {ONNX_NAME}, not a precision-specific graph")


def onnx_for_precision(model_onnx: str | Path, precision: str) -> Path:
    """model.onnx -> model.fp16.onnx / model.int8.onnx beside it (fp32 is model.onnx itself);
    any other stem likewise: foo.onnx -> foo.int8.onnx."""
    model_onnx = Path(model_onnx)
    check_precision(precision)
    if precision == FP32:
        return model_onnx
    return model_onnx.with_name(f"{_strip(model_onnx.name, ONNX_SUFFIX)}.{precision}{ONNX_SUFFIX}")


def cpu_int8_for(onnx_path: str | Path) -> Path:
    """model.onnx or model.int8.onnx -> model.int8.cpu.onnx beside it (foo.onnx -> foo.int8.cpu.onnx)."""
    onnx_path = Path(onnx_path)
    int8 = onnx_path if precision_from_name(onnx_path.name) == INT8 else onnx_for_precision(onnx_path, INT8)
    return int8.with_name(f"{_strip(int8.name, ONNX_SUFFIX)}{CPU_TAG}{ONNX_SUFFIX}")


def is_cpu_int8(path: str | Path) -> bool:
    """Whether `path` names a CPU INT8 graph (model.int8.cpu.onnx, foo.int8.cpu.onnx)."""
    return Path(path).name.endswith(f".{INT8}{CPU_TAG}{ONNX_SUFFIX}")


def tensorrt_int8_for(cpu_graph: str | Path) -> Path:
    """model.int8.cpu.onnx -> the model.int8.onnx made beside it by the same calibration."""
    cpu_graph = Path(cpu_graph)
    return cpu_graph.with_name(_strip(cpu_graph.name, f"{CPU_TAG}{ONNX_SUFFIX}") + ONNX_SUFFIX)


def engine_name(precision: str) -> str:
    """model.<precision>.engine (the FP32 engine too is model.fp32.engine)."""
    return engine_path_for(onnx_for_precision(ONNX_NAME, precision)).name


def engine_path_for(onnx_path: str | Path) -> Path:
    """model.fp16.onnx -> model.fp16.engine; the FP32 model.onnx -> model.fp32.engine."""
    onnx_path = Path(onnx_path)
    precision = precision_from_name(onnx_path.name)
    base = _strip(_strip(onnx_path.name, ONNX_SUFFIX), f".{precision}")
    return onnx_path.with_name(f"{base}.{precision}{ENGINE_SUFFIX}")


def sidecar_path(engine: str | Path) -> Path:
    """model.fp16.engine -> model.fp16.engine.json."""
    engine = Path(engine)
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def layers_path(engine: str | Path) -> Path:
    """model.fp16.engine -> model.fp16.layers.json."""
    engine = Path(engine)
    return engine.with_name(_strip(engine.name, ENGINE_SUFFIX) + LAYERS_SUFFIX)


def parity_path(model_file: str | Path) -> Path:
    """Where the Makefile keeps a parity result: model.fp16.engine -> model.fp16.parity.json,
    model.fp16.onnx -> model.fp16.onnx-parity.json."""
    model_file = Path(model_file)
    if model_file.name.endswith(ONNX_SUFFIX):
        return model_file.with_name(_strip(model_file.name, ONNX_SUFFIX) + ONNX_PARITY_SUFFIX)
    return model_file.with_name(_strip(model_file.name, ENGINE_SUFFIX) + PARITY_SUFFIX)


def model_path(model_file: str | Path) -> Path:
    """The one rule for a symlinked model file: the link is followed, so every companion
    file (model.json, golden.npz, the engine's sidecar, calibration.json) comes from the
    target's folder, never from the link's. Any other path is returned as it was given."""
    path = Path(model_file)
    return path.resolve() if path.is_symlink() else path


def golden_path(model_file: str | Path) -> Path:
    """The golden.npz beside any artifact."""
    return Path(model_file).parent / GOLDEN_NAME


def graph_record_path(graph: str | Path) -> Path:
    """model.fp16.onnx -> model.fp16.onnx.json: the FP16 graph's sha256 and its source's,
    written by `export fp16` and checked by parity (as calibration.json is for INT8)."""
    graph = Path(graph)
    return graph.with_name(graph.name + GRAPH_RECORD_SUFFIX)


def calibration_path(model_file: str | Path) -> Path:
    """The calibration.json beside any artifact (one per build folder)."""
    return Path(model_file).parent / CALIBRATION_NAME


def chart_path(model_file: str | Path) -> Path:
    """The calibration.png beside any artifact."""
    return Path(model_file).parent / CHART_NAME


def model_artifacts(model_file: str | Path) -> list[Path]:
    """Every artifact of the model in `model_file`'s folder, existing or not: the graphs and
    engines of each precision with their sidecars and reports, the CPU INT8 graph, the manifest, the golden
    logits and the calibration report and chart. What no output of a later step may replace."""
    model_file = Path(model_file)
    folder = model_file.parent
    onnx = folder / ONNX_NAME
    paths = [model_file, onnx, folder / MANIFEST_NAME, folder / GOLDEN_NAME]
    paths += [calibration_path(onnx), chart_path(onnx)]
    paths += [cpu_int8_for(onnx), parity_path(cpu_int8_for(onnx))]
    for graph in [onnx_for_precision(onnx, p) for p in PRECISIONS] + [model_file]:
        engine = model_file if model_file.name.endswith(ENGINE_SUFFIX) and graph == model_file else engine_path_for(graph)
        paths += [graph, engine, sidecar_path(engine), layers_path(engine), parity_path(engine), parity_path(graph)]
    paths.append(graph_record_path(onnx_for_precision(onnx, FP16)))
    return list(dict.fromkeys(paths))
