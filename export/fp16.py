"""model.onnx -> model.fp16.onnx: FP16 weights and compute, FP32 inputs and outputs.

The conversion is onnxconverter-common's float16 converter (keep_io_types=True), the
converter ONNX Runtime's own tooling uses. NVIDIA ModelOpt's AutoCast would also do,
but its onnx extra pins onnx and onnxruntime-gpu versions that clash with a CPU
install; this graph has no op that needs AutoCast's per-node range analysis.
The result is checked against the PyTorch golden logits with ONNX Runtime.

`keep_fp32` names layers that overflow FP16 (an op type, a node-name glob or
'depthwise'); the converter leaves them in FP32 with casts around them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from runtime.core.artifacts import (
    FP16,
    golden_path,
    graph_record_path,
    model_artifacts,
    onnx_for_precision,
    require_fp32_onnx,
)
from runtime.core.atomic import atomic_path, write_json_atomic
from runtime.core.errors import UserError, require
from runtime.core.io import sha256_file
from runtime.core.manifest import OUTPUT_NAME
from runtime.core.onnx_files import require_output
from runtime.core.parity import ParityResult, compare

from .graph_edit import load_onnx, match_nodes, to_float16
from .outputs import refuse_clobbering

log = logging.getLogger(__name__)


def golden_parity(model_file: Path, golden_file: Path, precision: str) -> list[ParityResult]:
    """Each golden batch through ONNX Runtime (CPU), compared with PyTorch's logits."""
    from runtime.core.backends.onnxruntime import OnnxRuntimeRunner
    from runtime.core.golden import load_golden

    pairs = load_golden(golden_file)
    with OnnxRuntimeRunner(model_file, providers=["CPUExecutionProvider"]) as runner:
        results = [compare(ref, runner.infer(x), precision) for x, ref in pairs]
    for (x, _), result in zip(pairs, results, strict=True):  # one line per golden shape: say which
        result.note = "input " + "x".join(map(str, x.shape))
    return results


def convert_fp16(onnx_path: Path, out: Path | None = None, keep_fp32: list[str] | None = None) -> Path:
    """Write the FP16 graph beside `onnx_path` and check it; returns its path.

    Nodes matching a `keep_fp32` pattern stay in FP32 (see export.graph_edit)."""
    onnx = require("onnx", "pip install -e '.[export]'")
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path}: no such file")
    require_fp32_onnx(onnx_path, "the FP16 step")
    fp16_default = onnx_for_precision(onnx_path, FP16)
    out = Path(out or fp16_default)
    own = {fp16_default, graph_record_path(fp16_default)}
    refuse_clobbering(
        {"the FP16 graph": out, "its record": graph_record_path(out)}, [p for p in model_artifacts(onnx_path) if p not in own]
    )
    require_output(onnx_path, OUTPUT_NAME)  # named here: below, ONNX Runtime sees only a temporary file
    model = load_onnx(onnx_path)
    kept = match_nodes(model, keep_fp32 or [], "--keep-fp32")
    if kept:
        log.info("keeping %d node(s) in FP32: %s", len(kept), ", ".join(kept))
    converted = to_float16(model, kept)
    record = graph_record_path(out)
    record.unlink(missing_ok=True)  # an old record must never describe a new graph
    with atomic_path(out) as tmp:
        onnx.save(converted, str(tmp))
        try:
            for result in golden_parity(tmp, golden_path(onnx_path), FP16):
                log.info("%s", result.summary())
                if not result:
                    raise UserError(f"FP16 graph misses the fp16 tolerance: {'; '.join(result.failures)}")
        except UserError as exc:  # name the file the user will look for, not the temporary one
            raise UserError(str(exc).replace(str(tmp), str(out))) from None
        written = sha256_file(tmp)
    write_json_atomic(record, {"fp16_onnx_sha256": written, "source_onnx_sha256": sha256_file(onnx_path)})
    log.debug("wrote %s", out)  # the command line prints it
    return out
