"""Activation ranges from the calibration images, with ONNX Runtime's calibrators.

The maths is ONNX Runtime's (`onnxruntime.quantization.calibrate`); this module picks
its settings and feeds it:

- `max`: MinMaxCalibrater, symmetric: the largest |x| seen.
- `entropy`: EntropyCalibrater set up as TensorRT's entropy calibrator: a 2048-bin
  histogram and the threshold whose 128-bin quantized copy has the least KL
  divergence from it. `quantize_static` would run it with 128 bins and 128 quantized
  bins, which leaves one candidate threshold, the full range: min-max in disguise.
  ONNX Runtime grows a histogram at its first batch's bin width when a later batch
  reaches further, so one far outlier can multiply the bin count (and the KL search
  time) by its size; as TensorRT does, a min-max pass first fixes each histogram's
  span at the set's |max|, which also makes the result independent of batch order.
- `percentile`: PercentileCalibrater, symmetric, 2048 bins of |x|; the threshold is
  that percentile of |x| (`--percentile`, default 99.99).

Only the tensors that get Q/DQ are recorded: the activation input of every Conv and
Gemm and both inputs of every skip-add. The branch input of a skip-add loses its Q/DQ
right after quantization (calibration.qdq), so with `entropy` it keeps its min-max
range as a placeholder rather than cost a KL search. Batches go through one at a time, so
memory is one batch's activations whatever the set size, and batches of different
sizes never meet in one array.

The same run also gives the CPU INT8 graph (calibration.cpu_graph) its ranges, when asked:
it then calibrates that graph's prepared FP32 twin (BatchNorm rewritten, the same function
and the same tensor names), records the tensors both graphs quantize, and writes a second
cache. The min-max pass is then asymmetric (the observed min and max: uint8 activations
use both ends), and every method runs it first. A CPU range is the method's threshold
clipped to the observed min and max. TensorRT's ranges are made symmetric (|x|), as before.
With `entropy` the CPU graph's own tensors (convolution and activation outputs, BatchNorm
products) take their KL threshold from the same histogram merged to 512 bins: ONNX
Runtime's search costs about a second per 2048-bin histogram, and there are 2-3 times as
many of these tensors.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from runtime.core.errors import UserError, require
from runtime.core.manifest import INPUT_NAME

from .data import MIN_USABLE, DataSource
from .qdq import residual_inputs, skip_adds
from .staging import intermediate_errors, stage

log = logging.getLogger(__name__)

METHODS = ("entropy", "max", "percentile")
DEFAULT_PERCENTILE = 99.99
HISTOGRAM_BINS = 2048
ENTROPY_QUANTIZED_BINS = 128
BATCH = 8  # images per calibrator run: bounds the activations held at once
CPU_MERGED_BINS = 4  # 2048 -> 512 bins for the CPU graph's own entropy thresholds
BAR_DELAY_S = 2.0  # a bar only for a wait a person notices; none in logs (not a terminal)


@dataclass(frozen=True)
class CalibratorSettings:
    """How activation ranges are found; recorded in calibration.json."""

    method: str = "entropy"
    percentile: float = DEFAULT_PERCENTILE

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if not 0 < self.percentile <= 100:
            raise UserError(f"--percentile must be in (0, 100], got {self.percentile:g}")

    def describe(self) -> dict[str, Any]:
        if self.method == "entropy":
            return {"method": "entropy", "bins": HISTOGRAM_BINS, "quantized_bins": ENTROPY_QUANTIZED_BINS}
        if self.method == "percentile":
            return {"method": "percentile", "bins": HISTOGRAM_BINS, "percentile": self.percentile}
        return {"method": "max"}


def calibrated_tensors(model: Any) -> tuple[set[str], set[str]]:
    """(tensors ONNX Runtime's quantizer wants ranges for, those that keep a Q/DQ pair).

    The first adds the branch inputs of skip-adds, whose Q/DQ is removed afterwards."""
    kept = {n.input[0] for n in model.graph.node if n.op_type in ("Conv", "Gemm")}
    kept |= set(residual_inputs(model).values())
    adds = set(skip_adds(model))
    wanted = kept | {name for n in model.graph.node if n.name in adds for name in n.input}
    return wanted, kept


class _Feed:
    """A CalibrationDataReader holding one batch: the calibrators take readers."""

    def __init__(self, x: np.ndarray) -> None:
        self.items = [{INPUT_NAME: x}]

    def get_next(self) -> dict[str, np.ndarray] | None:
        return self.items.pop() if self.items else None


def _calibrator(
    kind: str, onnx_path: Path, tensors: set[str], workdir: Path, settings: CalibratorSettings, symmetric: bool = True
) -> Any:
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    classes = {
        "max": calib.MinMaxCalibrater,
        "entropy": calib.EntropyCalibrater,
        "percentile": calib.PercentileCalibrater,
    }

    class Only(classes[kind]):  # type: ignore[misc,valid-type]
        """The library's calibrator, recording only the tensors that will be quantized."""

        def select_tensors_to_calibrate(self, model: Any) -> tuple[set[str], dict[str, Any]]:
            chosen, infos = super().select_tensors_to_calibrate(model)
            return chosen & tensors, infos

    options: dict[str, Any] = {"symmetric": symmetric}
    if kind == "entropy":
        options.update(num_bins=HISTOGRAM_BINS, num_quantized_bins=ENTROPY_QUANTIZED_BINS)
    elif kind == "percentile":
        options.update(num_bins=HISTOGRAM_BINS, percentile=settings.percentile)
    cal = Only(str(onnx_path), [], str(workdir / f"augmented.{kind}.onnx"), **options)
    cal.augment_graph()
    cal.execution_providers = ["CPUExecutionProvider"]
    cal.create_inference_session()
    return cal


def _feed(cal: Any, source: DataSource, what: str) -> int:
    """Run every calibration batch through `cal`; returns the number of images used."""
    used = 0
    with tqdm(total=len(source.calibration), desc=what, unit="img", disable=None, delay=BAR_DELAY_S) as bar:
        for x, _ in source.calibration_batches(BATCH):
            cal.collect_data(_Feed(x))
            used += len(x)
            bar.update(len(x))
        bar.update(len(source.calibration) - bar.n)
    return used


def _need_enough(used: int, source: DataSource) -> None:
    if used < MIN_USABLE:
        raise UserError(
            f"only {used} usable calibration images ({len(source.skipped)} skipped); need at least {MIN_USABLE} usable images"
        )


def _seed_histograms(cal: Any, spans: Any, settings: CalibratorSettings) -> None:
    """Give each entropy histogram its final span (the set's |max|) before any data."""
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    cal.collector = calib.HistogramCollector(
        method="entropy",
        symmetric=True,
        num_bins=HISTOGRAM_BINS,
        num_quantized_bins=ENTROPY_QUANTIZED_BINS,
        percentile=settings.percentile,
        scenario="same",
    )
    for name in cal.tensors_to_calibrate:
        low, high = (np.float32(np.asarray(v).item()) for v in spans.data[name].range_value)
        amax = np.float32(max(abs(low), abs(high)))
        edges = np.linspace(-amax, amax, HISTOGRAM_BINS + 1, dtype=np.float32)
        # The collector's own tuple: (counts, edges, min, max, threshold).
        cal.collector.histogram_dict[name] = (np.zeros(HISTOGRAM_BINS, np.int64), edges, low, high, amax)


def _search_thresholds(cal: Any, count: int) -> Any:
    """`cal.compute_data()` with a bar per tensor: the KL search is the long silent part."""
    collector = cal.collector
    search = collector.get_entropy_threshold
    with tqdm(total=count, desc="entropy thresholds", unit="tensor", disable=None, delay=BAR_DELAY_S) as bar:

        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return search(*args, **kwargs)
            finally:
                bar.update(1)

        collector.get_entropy_threshold = counted
        return cal.compute_data()
@dataclass(frozen=True)
class CpuTargets:
    """What the CPU INT8 graph needs from the same calibration run."""

    prepared: Path  # its FP32 twin, calibrated in place of model.onnx
    tensors: frozenset[str]  # the activations it quantizes
    cache: Path  # where its ranges go


def _clip(name: str, threshold: Any, observed: Any) -> Any:
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    low, high = (np.float32(np.asarray(v).item()) for v in threshold)
    seen_low, seen_high = (np.float32(np.asarray(v).item()) for v in observed.data[name].range_value)
    return calib.TensorData(lowest=np.float32(max(low, seen_low)), highest=np.float32(min(high, seen_high)))


def _symmetric(ranges: Any) -> Any:
    """Each range as (-|x|max, |x|max): what TensorRT's symmetric int8 is given."""
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    data = {}
    for name, value in ranges.items():
        amax = np.float32(max(abs(float(np.asarray(v).item())) for v in value.range_value))
        data[name] = calib.TensorData(lowest=-amax, highest=amax)
    return calib.TensorsData(ranges.calibration_method, data)


def _coarse_entropy(cal: Any, names: set[str]) -> dict[str, tuple[Any, Any]]:
    """KL thresholds of `names` from their histograms merged to 512 bins; taken out of
    the calibrator so that its own compute_data searches only the 2048-bin ones."""
    found = {}
    for name in sorted(names & set(cal.collector.histogram_dict)):
        counts, edges, low, high, amax = cal.collector.histogram_dict.pop(name)
        merged = counts.reshape(-1, CPU_MERGED_BINS).sum(1), edges[::CPU_MERGED_BINS]
        found[name] = cal.collector.get_entropy_threshold((*merged, low, high, amax), ENTROPY_QUANTIZED_BINS)
    return found


def collect_ranges(
    onnx_path: Path,
    source: DataSource,
    settings: CalibratorSettings,
    workdir: Path,
    cache: Path,
    cpu: CpuTargets | None = None,
) -> int:
    """Calibrate on `source.calibration`; write ONNX Runtime's range cache to `cache`
    (and the CPU graph's to `cpu.cache`).

    Returns the number of images used. `quantize_static(calibration_cache_path=cache)`
    then quantizes with these ranges as often as mixed precision needs, without
    running the images again."""
    onnx = require("onnx", "pip install onnx")
    calib = require("onnxruntime.quantization.calibrate", "pip install onnxruntime")
    if not hasattr(calib, "save_tensors_data"):
        raise UserError("calibration needs onnxruntime >= 1.32 (its calibration cache); pip install -U onnxruntime")
    settings.validate()
    tensors, kept = calibrated_tensors(onnx.load(str(onnx_path), load_external_data=False))
    extra = set(cpu.tensors) if cpu else set()
    quiet = io.StringIO()  # the calibrators print() their progress; ours is the bar
    # The calibrators write beside the model they get: give them a link inside `workdir`.
    staged = stage(cpu.prepared if cpu else onnx_path, workdir)
    with contextlib.redirect_stdout(quiet), intermediate_errors(workdir):
        first = "max" if settings.method in ("max", "entropy") or cpu else settings.method
        cal = _calibrator(first, staged, tensors | extra, workdir, settings, symmetric=cpu is None)
        used = _feed(cal, source, f"calibrating ({first})" if first == settings.method else "calibrating (range)")
        _need_enough(used, source)
        observed = ranges = cal.compute_data()
        del cal
        cpu_thresholds: dict[str, Any] = {}
        if settings.method != "max" and (settings.method != first or settings.method == "entropy"):
            method = settings.method
            cal = _calibrator(method, staged, kept | extra, workdir, settings)
            if method == "entropy":
                _seed_histograms(cal, ranges, settings)
            _feed(cal, source, f"calibrating ({method})")
            if method == "entropy":
                cpu_thresholds = _coarse_entropy(cal, extra - kept)
                log.info(
                    "choosing %d entropy thresholds (KL divergence, %d bins; %d more at %d)",
                    len(kept),
                    HISTOGRAM_BINS,
                    len(cpu_thresholds),
                    HISTOGRAM_BINS // CPU_MERGED_BINS,
                )
            # the KL search is the long silent part: a bar per tensor (the others are quick)
            found = _search_thresholds(cal, len(kept)) if method == "entropy" else cal.compute_data()
            del cal
            cpu_thresholds.update({k: v.range_value for k, v in found.items()})
            placeholders = {k: v for k, v in ranges.items() if k not in kept}
            ranges = calib.TensorsData(found.calibration_method, {**placeholders, **dict(found.items())})
    log.debug("onnxruntime calibrator output:\n%s", quiet.getvalue())
    if cpu is not None:
        cpu_ranges = {
            name: _clip(name, cpu_thresholds.get(name, observed.data[name].range_value), observed)
            for name in sorted(extra & set(observed.data))
        }
        calib.save_tensors_data(calib.TensorsData(ranges.calibration_method, cpu_ranges), cpu.cache)
        ranges = _symmetric(ranges)
    calib.save_tensors_data(ranges, cache)
    return used
