"""The calibration step: data -> model.int8.onnx (+ the CPU INT8 graph) + calibration.json, skipped when up to date."""

from __future__ import annotations

import datetime
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.graph_edit import load_onnx, match_nodes
from runtime.core.artifacts import (
    FP16,
    FP32,
    INT8,
    calibration_path,
    chart_path,
    cpu_int8_for,
    onnx_for_precision,
    require_fp32_onnx,
)
from runtime.core.atomic import atomic_path, write_json_atomic
from runtime.core.backends.onnxruntime import OnnxRuntimeRunner
from runtime.core.errors import UserError, require
from runtime.core.io import read_json, sha256_file
from runtime.core.manifest import load_manifest
from runtime.core.runner import Runner

from .chart import write_chart
from .cpu_graph import CPU_QDQ_SCHEME, companions, cpu_tensors, prepare
from .cpu_quantize import write_cpu_int8
from .data import DEFAULT_LIMIT, DataSource, open_source
from .mixed import HeldOut, MixedPrecisionResult, rank_layers, run_graph, search
from .outputs import refuse_data_holding_outputs
from .quantize import QDQ_SCHEME, quantizable_layers, refuse_no_int8, write_int8
from .ranges import DEFAULT_PERCENTILE, CalibratorSettings, CpuTargets, collect_ranges
from .report import heldout_report

log = logging.getLogger(__name__)
FEW_IMAGES = 100  # fewer calibration images than this get a warning


@dataclass(frozen=True)
class CalibrationOptions:
    """What `python -m calibration` was asked for (everything but the model and data)."""

    method: str = "entropy"
    percentile: float = DEFAULT_PERCENTILE
    limit: int = DEFAULT_LIMIT
    exclude: tuple[str, ...] = ()  # patterns: not quantized, FP16
    keep_fp32: tuple[str, ...] = ()  # patterns: not quantized, FP32 (FP16 overflow)
    max_drop: float | None = None  # top-1 budget in points: turns on mixed precision
    best_effort: bool = False  # write the best INT8 graph even when max_drop cannot be met
    cpu_graph: bool = True  # also write the CPU INT8 graph (ONNX Runtime's CPU layout)

    @property
    def calibrator(self) -> CalibratorSettings:
        return CalibratorSettings(self.method, self.percentile)

    def validate(self) -> None:
        self.calibrator.validate()
        if self.max_drop is not None and not 0 <= self.max_drop <= 100:
            raise UserError(f"--max-drop must be between 0 and 100 points, got {self.max_drop:g}")
        if self.best_effort and self.max_drop is None:
            raise UserError("--best-effort only applies with --max-drop")


def _settings(onnx_path: Path, fingerprint: str, options: CalibrationOptions) -> dict[str, Any]:
    return {
        "source_onnx_sha256": sha256_file(onnx_path),
        "data_fingerprint": fingerprint,
        "method": options.method,
        "calibrator": options.calibrator.describe(),
        "limit": options.limit,
        "exclude": sorted(options.exclude),
        "keep_fp32": sorted(options.keep_fp32),
        "max_drop_pp": options.max_drop,
        "best_effort": options.best_effort,
        "qdq_scheme": QDQ_SCHEME,
        "cpu_qdq_scheme": CPU_QDQ_SCHEME if options.cpu_graph else None,
    }


def up_to_date(report_path: Path, int8_path: Path, settings: dict[str, Any]) -> bool:
    """Whether calibration.json says model.int8.onnx (and the CPU graph, when asked for) was
    made from exactly these inputs."""
    graphs = {"int8_onnx_sha256": int8_path}
    if settings.get("cpu_qdq_scheme"):
        graphs["cpu_int8_onnx_sha256"] = cpu_int8_for(int8_path)
    if not (report_path.is_file() and all(p.is_file() for p in graphs.values())):
        return False
    try:
        report = read_json(report_path)
    except UserError:
        return False
    same = all(report.get(k) == v for k, v in settings.items())
    return bool(same and all(report.get(k) == sha256_file(p) for k, p in graphs.items()))


def _heldout(source: DataSource, onnx_path: Path) -> HeldOut:
    xs, labels = [], []
    for x, y in source.batches(source.heldout, 64):
        xs.append(x)
        labels.extend(y)
    if not xs:
        raise UserError("--max-drop needs held-out images, and none are usable; give a larger set")
    images = np.concatenate(xs)
    truth = np.asarray(labels) if all(label is not None for label in labels) else None
    return HeldOut(images, truth, run_graph(onnx_path, images))


def _mixed_precision(
    onnx_path: Path, heldout: HeldOut, layers: list[str], build: Any, max_drop: float
) -> MixedPrecisionResult:
    onnx = require("onnx", "pip install onnx")
    model = onnx.load(str(onnx_path), load_external_data=False)
    op_types = {n.name: n.op_type for n in model.graph.node}
    log.info("measuring the sensitivity of %d layers on %d held-out images", len(layers), len(heldout.images))
    ranking = rank_layers(layers, op_types, build, heldout)
    return search(layers, ranking, build, heldout, max_drop)


def calibrate(
    onnx_path: Path, data: str, options: CalibrationOptions | None = None, force: bool = False
) -> tuple[Path, dict[str, Any] | None]:
    """Write model.int8.onnx (unless a --max-drop budget is missed without --best-effort),
    calibration.json and, with --max-drop, calibration.png beside `onnx_path`.

    Returns (report path, report), the report being None when the existing INT8 graph
    was already made from this ONNX file, data and options.
    """
    require("onnx", "pip install onnx")
    options = options or CalibrationOptions()
    options.validate()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path}: no such file")
    require_fp32_onnx(onnx_path, "calibration")
    manifest = load_manifest(onnx_path)
    model = load_onnx(onnx_path, load_external_data=False)
    excluded = match_nodes(model, list(options.exclude), "--exclude")
    kept_fp32 = match_nodes(model, list(options.keep_fp32), "--keep-fp32")
    layers = [n for n in quantizable_layers(model) if n not in excluded and n not in kept_fp32]
    refuse_no_int8(layers, f"--exclude/--keep-fp32 match all {len(quantizable_layers(model))} quantizable layers")
    del model
    # The graph's class count must be model.json's before any work: the accuracy figures
    # compare its outputs with labels numbered as model.json says (Runner._check_classes).
    OnnxRuntimeRunner(onnx_path, ["CPUExecutionProvider"]).activate().deactivate()
    int8_path = onnx_for_precision(onnx_path, INT8)
    report_path = calibration_path(onnx_path)
    cpu_path = cpu_int8_for(onnx_path)
    refuse_data_holding_outputs(data, [int8_path, cpu_path, report_path, chart_path(onnx_path)])
    source = open_source(
        data, manifest.preprocessing, manifest.labels, options.limit, spec=manifest.input_spec, wnids=manifest.wnids
    )
    settings = _settings(onnx_path, source.fingerprint, options)
    if not force and up_to_date(report_path, int8_path, settings):
        log.debug("%s is up to date with %s (same ONNX, data fingerprint and settings)", int8_path, report_path)
        return report_path, None

    log.info("calibration data: %s", source.description)
    with tempfile.TemporaryDirectory(prefix="calibration.") as work:
        cache = Path(work) / "ranges.json"
        start = time.perf_counter()
        cpu = None
        if options.cpu_graph:
            prepared = prepare(onnx_path, Path(work))
            tensors = frozenset(cpu_tensors(load_onnx(prepared, load_external_data=False)))
            cpu = CpuTargets(prepared, tensors, Path(work) / "ranges.cpu.json")
        used = collect_ranges(onnx_path, source, options.calibrator, Path(work), cache, cpu)
        seconds = time.perf_counter() - start
        if used < FEW_IMAGES:
            log.warning(
                "calibrated on only %d images: ranges from fewer than about %d are unreliable; "
                "give a few hundred (e.g. 512) like those the model will see",
                used,
                FEW_IMAGES,
            )

        def build(quantize: list[str], out: Path) -> dict[str, Any]:
            return write_int8(onnx_path, out, cache, quantize, kept_fp32)

        mixed = None
        quantized = layers
        heldout = _heldout(source, onnx_path) if options.max_drop is not None else None
        if heldout is not None and options.max_drop is not None:
            mixed = _mixed_precision(onnx_path, heldout, layers, build, options.max_drop)
            quantized = [n for n in layers if n not in mixed.kept_fp16]
        write_graph = mixed is None or mixed.budget_met or options.best_effort
        report: dict[str, Any] = {
            **settings,
            "data": source.description,
            "images_used": used,
            "calibration_seconds": round(seconds, 2),
            "excluded_nodes": excluded,
            "keep_fp32_nodes": kept_fp32,
            "quantized_layers": len(quantized),
            "quantizable_layers": len(layers),
        }
        if mixed is not None:
            report["mixed_precision"] = mixed.to_json()
            write_chart(chart_path(onnx_path), mixed, layers, manifest.model)
        if write_graph:
            if mixed is not None:
                refuse_no_int8(quantized, f"--max-drop {options.max_drop} keeps all {len(layers)} layers in FP16")
            with atomic_path(int8_path) as tmp:
                report["qdq_nodes"] = build(quantized, tmp)
                report["heldout"] = _final_report(onnx_path, tmp, source)
                report["int8_onnx_sha256"] = sha256_file(tmp)
        else:
            report["int8_onnx_sha256"] = None
            report["note"] = f"the --max-drop budget was missed; {int8_path.name} was not written (see --best-effort)"
        if cpu is not None:
            floats = [*excluded, *kept_fp32]
            report.update(write_cpu_graph(onnx_path, cpu, layers, floats, source, heldout, mixed, options))
    report.update(
        {
            "images_skipped": len(source.skipped),
            "skipped": source.skipped[:20],
            "backend": "onnxruntime CPU (held-out figures)",
            "weights": manifest.data.get("weights", {}).get("source"),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    write_json_atomic(report_path, report)
    return report_path, report


def write_cpu_graph(
    onnx_path: Path,
    cpu: CpuTargets,
    layers: list[str],
    floats: list[str],
    source: DataSource,
    heldout: HeldOut | None,
    mixed: MixedPrecisionResult | None,
    options: CalibrationOptions,
) -> dict[str, Any]:
    """The CPU INT8 graph from the same ranges; its part of calibration.json.

    --exclude/--keep-fp32 layers stay FP32 in it, with their activation and BatchNorm; with
    --max-drop layers are kept so by the same sensitivity ranking, searched again against
    this graph's own drop."""

    following = companions(load_onnx(cpu.prepared, load_external_data=False), [*layers, *floats])

    def build(quantize: list[str], out: Path, candidate: bool = True) -> dict[str, Any]:
        kept = [*floats, *(n for n in layers if n not in quantize)]
        floated = [*kept, *(f for n in kept for f in following[n])]
        return write_cpu_int8(cpu.prepared, out, cpu.cache, floated, candidate)

    path = cpu_int8_for(onnx_path)
    found: dict[str, Any] = {}
    quantized = layers
    if mixed is not None and heldout is not None and options.max_drop is not None:
        own = search(layers, mixed.ranking, build, heldout, options.max_drop)
        found["cpu_mixed_precision"] = {k: v for k, v in own.to_json().items() if k != "sensitivity"}
        quantized = [n for n in layers if n not in own.kept_fp16]
        if not (own.budget_met or options.best_effort):
            found["cpu_int8_onnx_sha256"] = None
            return found
    with atomic_path(path) as tmp:
        found["cpu_qdq_nodes"] = build(quantized, tmp, candidate=False)
        found["cpu_heldout"] = _final_report(onnx_path, tmp, source, fp16=False)
        found["cpu_int8_onnx_sha256"] = sha256_file(tmp)
    return found


def _final_report(onnx_path: Path, int8: Path, source: DataSource, fp16: bool = True) -> dict[str, Any]:
    runners: dict[str, Runner] = {FP32: OnnxRuntimeRunner(onnx_path, ["CPUExecutionProvider"])}
    fp16_path = onnx_for_precision(onnx_path, FP16)
    if fp16 and fp16_path.is_file():
        runners[FP16] = OnnxRuntimeRunner(fp16_path, ["CPUExecutionProvider"])
    runners[INT8] = OnnxRuntimeRunner(int8, ["CPUExecutionProvider"])
    for runner in runners.values():
        runner.activate()
    try:
        return heldout_report(source, runners)
    finally:
        for runner in runners.values():
            runner.deactivate()
