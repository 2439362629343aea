"""ONNX -> TensorRT or TensorRT-RTX engine, strongly typed. Never imports torch.

Precision comes from the graph (model.fp16.onnx, model.int8.onnx with Q/DQ): TensorRT 11
removed BuilderFlag.FP16/INT8 and the INT8 calibrators, and 10.x and TensorRT-RTX build the
same graphs when the network is created strongly typed. So no precision flag is ever set.

The steps live in export/trt/ (network from ONNX, config from options, build, save engine +
sidecar + layer report); `build_engine` composes them. Written against the TensorRT 10.13
Python API (type-checked with tensorrt-stubs); tensorrt_rtx has the same API.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.core.artifacts import (
    engine_path_for,
    is_cpu_int8,
    layers_path,
    model_artifacts,
    precision_of,
    sidecar_path,
    tensorrt_int8_for,
)
from runtime.core.engine_meta import EngineMeta
from runtime.core.errors import UserError
from runtime.core.flavours import TENSORRT_RTX, default_flavour, import_flavour
from runtime.core.io import sha256_file
from runtime.core.manifest import OUTPUT_NAME, load_manifest
from runtime.core.onnx_files import external_data_files, require_output

from .engine_options import Build, EngineOptions, after_build, sidecar_fields, validate
from .layers import LayerReport, parse_inspector_json, parse_rtx_layers
from .outputs import refuse_clobbering
from .shapes import default_profile
from .trt.config import config_from_options
from .trt.host import BuildHost, build_host
from .trt.interrupt import Deferred, deferred_signals
from .trt.log import BuildLog, capture
from .trt.network import network_from_onnx
from .trt.save import save_build

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)


def default_options(onnx_path: Path) -> EngineOptions:
    """Batch 1..64 (opt 32) at the model's input size and layout, default flavour."""
    manifest = load_manifest(onnx_path)
    return EngineOptions(profiles=[default_profile(manifest.preprocessing.input_size, manifest.input_spec)])


def checked_options(onnx_path: Path, options: EngineOptions | None = None) -> EngineOptions:
    """`options` completed and checked against the model before TensorRT is touched: the
    ONNX file must exist, no profile means the default one, and no flavour means
    default_flavour(), whose rules then apply. The one place options are validated."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path}: no such file")
    if is_cpu_int8(onnx_path):
        raise UserError(
            f"{onnx_path}: this INT8 graph is laid out for ONNX Runtime's CPU (uint8, Q/DQ on outputs), "
            f"which TensorRT refuses; build the engine from {tensorrt_int8_for(onnx_path).name}"
        )
    external_data_files(onnx_path)  # TensorRT's parser would read any file the graph names
    require_output(onnx_path, OUTPUT_NAME)
    manifest = load_manifest(onnx_path)
    options = options or EngineOptions(profiles=[])
    options = dataclasses.replace(
        options,
        profiles=options.profiles or [default_profile(manifest.preprocessing.input_size, manifest.input_spec)],
        flavour=options.flavour or default_flavour(),
    )
    activation = str(manifest.data.get("arch", {}).get("act", ""))
    validate(options, manifest.patch_size, precision_of(onnx_path), activation, manifest.input_spec)
    return options


def _serialize(
    flavour: str,
    builder: trt.Builder,
    network: trt.INetworkDefinition,
    config: trt.IBuilderConfig,
    record: BuildLog,
    name: str,
    stop: Deferred | None = None,
) -> tuple[memoryview, float]:
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if stop is not None:
        stop.raise_pending()  # before the errors a build canceled by the progress monitor logs
    if serialized is None or record.errors:  # an engine built despite a logged error is not trusted
        raise UserError(f"{flavour} failed to build {name}: {record.last_error()}")
    return memoryview(serialized), seconds


def _layer_report(
    flavour: str, host: BuildHost, serialized: memoryview, record: BuildLog, logger: trt.ILogger
) -> LayerReport:
    """From RTX's DETAILED builder log; on TensorRT, from the engine inspector (needs its GPU)."""
    if flavour == TENSORRT_RTX:
        if record.layers_message is None:
            raise UserError(f"{flavour} logged no layer table for this build (profiling verbosity DETAILED was set)")
        return LayerReport(parse_rtx_layers(record.layers_message), f"{flavour} builder log")
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(flavour)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(serialized)
    if engine is None:
        raise UserError(f"{flavour} could not load the engine it just built on {host.gpu_name}: {record.last_error()}")
    inspector = engine.create_engine_inspector()
    if inspector is None:
        raise UserError(f"{flavour} could not create an engine inspector")
    return LayerReport(
        parse_inspector_json(inspector.get_engine_information(trt.LayerInformationFormat.JSON)),
        f"{flavour} engine inspector",
    )


def _own_outputs(onnx_path: Path) -> set[Path]:
    """The files a build of `onnx_path` writes by default: the only artifacts it may replace."""
    engine = engine_path_for(onnx_path)
    return {engine, sidecar_path(engine), layers_path(engine)}


def remove_build(engine_path: Path) -> None:
    """Remove an engine, its sidecar and its layer report (a build stopped after saving them)."""
    for written in (engine_path, sidecar_path(engine_path), layers_path(engine_path)):
        written.unlink(missing_ok=True)


def build_engine(
    onnx_path: Path, options: EngineOptions | None = None, out: Path | None = None
) -> tuple[Path, EngineMeta]:
    """Build `model.<precision>.engine`, its `.engine.json` sidecar and its `.layers.json`
    report beside `onnx_path` (or at `out`); returns the engine path and the sidecar."""
    onnx_path = Path(onnx_path)
    options = checked_options(onnx_path, options)
    flavour = str(options.flavour)
    precision = precision_of(onnx_path)
    engine_path = Path(out or engine_path_for(onnx_path))
    refuse_clobbering(
        {
            "--out": engine_path,
            "the engine's sidecar": sidecar_path(engine_path),
            "the engine's layer report": layers_path(engine_path),
            "--timing-cache": options.timing_cache,
        },
        [p for p in model_artifacts(onnx_path) if p not in _own_outputs(onnx_path)],
    )
    host = build_host(flavour)
    option_fields = sidecar_fields(options, host.compute_capability)
    targets = option_fields["target_compute_capabilities"]
    where = f"{host.gpu_name} sm_{host.compute_capability}" if host.built_with_gpu else "no GPU"
    log.info(
        "building %s (%s, %s %s, %s, targets %s)",
        engine_path.name,
        precision,
        flavour,
        host.library_version,
        where,
        ",".join(targets),
    )

    # Inside TensorRT, Ctrl-C and SIGTERM are recorded and acted on at safe points
    # (export/trt/interrupt.py); leaving the block raises one that came.
    with deferred_signals() as stop:
        serialized, seconds, report, build = _build(onnx_path, options, engine_path.name, host, stop)
    meta = EngineMeta(
        library_version=host.library_version,
        gpu_name=host.gpu_name,
        compute_capability=host.compute_capability,
        precision=precision,
        source_onnx=onnx_path.name,
        source_onnx_sha256=sha256_file(onnx_path),
        build_seconds=round(seconds, 2),
        built_with_gpu=host.built_with_gpu,
        input_dtype=load_manifest(onnx_path).input_spec.dtype,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        engine_sha256=hashlib.sha256(serialized).hexdigest(),
        engine_size=serialized.nbytes,
        **option_fields,  # each option's sidecar field (the table's), and `options` for the rest
    )
    try:  # a signal here raises at once (a stalled disk is not waited for); what was written goes
        save_build(engine_path, serialized, meta, report)
        after_build(build, options)  # the timing cache: merged with the file as it is now, under its lock
    except KeyboardInterrupt:  # Terminated (SIGTERM) too
        remove_build(engine_path)
        raise
    log.info("built %s in %.1f s; layers by precision %s", engine_path, seconds, report.summary)
    return engine_path, meta


def _build(
    onnx_path: Path, options: EngineOptions, name: str, host: BuildHost, stop: Deferred
) -> tuple[memoryview, float, LayerReport, Build]:
    """The serialized engine, its build seconds, its layer report and its Build."""
    flavour = str(options.flavour)
    with capture(flavour) as (logger, record):
        if TYPE_CHECKING:
            import tensorrt as trt
        else:
            trt = import_flavour(flavour)
        builder = trt.Builder(logger)
        if builder is None:
            raise UserError(f"{flavour} could not create a builder: {record.last_error()}")
        network, parser = network_from_onnx(flavour, builder, logger, onnx_path)
        build = config_from_options(flavour, builder, options)
        serialized, seconds = _serialize(flavour, builder, network, build.config, record, name, stop)
        del parser
        stop.raise_pending()
        report = _layer_report(flavour, host, serialized, record, logger)
    stop.raise_pending()
    return serialized, seconds, report, build
