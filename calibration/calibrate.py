"""The calibration step: data -> model.int8.onnx + calibration.json, skipped when up to date."""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path
from typing import Any

from runtime.backends.onnxruntime import OnnxRuntimeRunner
from runtime.errors import UserError
from runtime.io import atomic_path, read_json, sha256_file, write_json_atomic
from runtime.manifest import load_manifest, precision_onnx
from runtime.runner import Runner

from .data import DEFAULT_LIMIT, open_source
from .quantize import QDQ_SCHEME, quantize_int8
from .report import heldout_report

log = logging.getLogger(__name__)

REPORT_NAME = "calibration.json"


def _settings(onnx_path: Path, fingerprint: str, method: str, limit: int, exclude: list[str]) -> dict[str, Any]:
    return {
        "source_onnx_sha256": sha256_file(onnx_path),
        "data_fingerprint": fingerprint,
        "method": method,
        "limit": limit,
        "exclude": sorted(exclude),
        "qdq_scheme": QDQ_SCHEME,
    }


def up_to_date(report_path: Path, int8_path: Path, settings: dict[str, Any]) -> bool:
    """Whether calibration.json says model.int8.onnx was made from exactly these inputs."""
    if not (report_path.is_file() and int8_path.is_file()):
        return False
    try:
        report = read_json(report_path)
    except UserError:
        return False
    same = all(report.get(k) == v for k, v in settings.items())
    return bool(same and report.get("int8_onnx_sha256") == sha256_file(int8_path))


def calibrate(
    onnx_path: Path,
    data: str,
    method: str = "entropy",
    limit: int = DEFAULT_LIMIT,
    exclude: list[str] | None = None,
    force: bool = False,
) -> tuple[Path, dict[str, Any] | None]:
    """Write model.int8.onnx and calibration.json beside `onnx_path`.

    Returns (report path, report), the report being None when the existing INT8 graph
    was already made from this ONNX file, data, method, limit and exclusions.
    """
    onnx_path = Path(onnx_path)
    exclude = exclude or []
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path}: no such file")
    if ".fp16." in onnx_path.name or ".int8." in onnx_path.name:
        raise UserError(f"{onnx_path}: calibrate the FP32 model.onnx, not a precision-specific graph")
    manifest = load_manifest(onnx_path)
    if manifest.random_init:
        log.warning("%s has random weights: the INT8 accuracy figures below are meaningless", manifest.model)
    source = open_source(data, manifest.preprocessing, manifest.labels, limit)
    int8_path = precision_onnx(onnx_path, "int8")
    report_path = onnx_path.with_name(REPORT_NAME)
    settings = _settings(onnx_path, source.fingerprint, method, limit, exclude)
    if not force and up_to_date(report_path, int8_path, settings):
        log.info("%s is up to date with %s (same ONNX, data fingerprint and settings)", int8_path, report_path)
        return report_path, None

    log.info("calibration data: %s", source.description)
    start = time.perf_counter()
    with atomic_path(int8_path) as tmp:
        stats = quantize_int8(onnx_path, tmp, source, method, exclude)
        seconds = time.perf_counter() - start
        runners: dict[str, Runner] = {"fp32": OnnxRuntimeRunner(onnx_path, ["CPUExecutionProvider"])}
        fp16 = precision_onnx(onnx_path, "fp16")
        if fp16.is_file():
            runners["fp16"] = OnnxRuntimeRunner(fp16, ["CPUExecutionProvider"])
        runners["int8"] = OnnxRuntimeRunner(tmp, ["CPUExecutionProvider"])
        for runner in runners.values():
            runner.activate()
        try:
            heldout = heldout_report(source, runners)
        finally:
            for runner in runners.values():
                runner.deactivate()
        int8_sha = sha256_file(tmp)
    report = {
        **settings,
        "data": source.description,
        "images_used": stats["images_used"],
        "images_skipped": len(source.skipped),
        "skipped": source.skipped[:20],
        "excluded_nodes": stats["excluded_nodes"],
        "qdq_nodes": stats["qdq"],
        "seconds": round(seconds, 2),
        "heldout": heldout,
        "backend": "onnxruntime CPU (held-out figures)",
        "weights": manifest.data.get("weights", {}).get("source"),
        "int8_onnx_sha256": int8_sha,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(report_path, report)
    return report_path, report
