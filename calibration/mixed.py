"""Automatic mixed precision: keep the layers INT8 hurts most in FP16, within a top-1 budget.

Definitions (also in the README):

- *drop*: held-out top-1 accuracy of FP32 minus that of the candidate graph, in
  percentage points, when the held-out images have labels; without labels, the share
  of held-out images whose top-1 class differs from FP32's (an upper bound on the
  accuracy drop), in points.
- *sensitivity* of a quantizable layer: the loss when only that layer is quantized
  and every other stays FP16, measured against the FP32 logits on the held-out part.
  Layers are ranked by the mean logit cosine loss (1 - cosine similarity), which is
  continuous, so layers that each move no top-1 answer on their own are still
  ordered; the top-1 drop of each is recorded beside it. Ties keep graph order, so
  the ranking is deterministic.
- *search*: keep the k most sensitive layers in FP16 and quantize the rest, for the
  smallest k (found by bisection over the ranking) whose drop is within the budget.
  When even k = all (the plain FP16 graph) misses it, the budget cannot be met and the
  best graph tried is reported.

The held-out part chooses the layers and also reports the result, so the reported
drop is optimistic for unseen data; hold out more images (`--limit` smaller than the
set) when that matters.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from runtime.core.backends.onnxruntime import OnnxRuntimeRunner

log = logging.getLogger(__name__)

EVAL_BATCH = 32


@dataclass(frozen=True)
class HeldOut:
    """The held-out images decoded once, with FP32's logits on them."""

    images: np.ndarray
    labels: np.ndarray | None
    fp32_logits: np.ndarray

    def drop_pp(self, logits: np.ndarray) -> float:
        """Top-1 accuracy drop against FP32 in points (disagreement when unlabelled)."""
        ours, ref = logits.argmax(1), self.fp32_logits.argmax(1)
        if self.labels is not None:
            return float(100.0 * ((ref == self.labels).mean() - (ours == self.labels).mean()))
        return float(100.0 * (ours != ref).mean())

    def cosine_loss(self, logits: np.ndarray) -> float:
        a, b = self.fp32_logits.astype(np.float64), logits.astype(np.float64)
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
        return float(1.0 - cos.mean())


def run_graph(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits of an ONNX graph on `images` with ONNX Runtime's CPU provider."""
    with OnnxRuntimeRunner(path, ["CPUExecutionProvider"]) as runner:
        return np.concatenate([runner.infer(images[i : i + EVAL_BATCH]) for i in range(0, len(images), EVAL_BATCH)])


@dataclass(frozen=True)
class LayerSensitivity:
    node: str
    op_type: str
    cosine_loss: float  # 1 - mean logit cosine vs FP32, only this layer quantized
    drop_pp: float  # top-1 drop vs FP32 in points, only this layer quantized


@dataclass
class MixedPrecisionResult:
    max_drop_pp: float
    metric: str  # "accuracy" or "agreement"
    ranking: list[LayerSensitivity]
    kept_fp16: list[str]
    drop_pp: float  # of the chosen graph
    budget_met: bool
    tried: dict[int, float] = field(default_factory=dict)  # k kept -> drop

    def to_json(self) -> dict[str, Any]:
        kept = set(self.kept_fp16)
        return {
            "max_drop_pp": self.max_drop_pp,
            "metric": self.metric,
            "budget_met": self.budget_met,
            "drop_pp": round(self.drop_pp, 4),
            "kept_fp16": self.kept_fp16,
            "tried": {str(k): round(v, 4) for k, v in sorted(self.tried.items())},
            "sensitivity": [
                {
                    "rank": i + 1,
                    "node": s.node,
                    "op_type": s.op_type,
                    "cosine_loss": s.cosine_loss,
                    "drop_pp": round(s.drop_pp, 4),
                    "kept_fp16": s.node in kept,
                }
                for i, s in enumerate(self.ranking)
            ],
        }


# build(quantized layers, path) writes that candidate graph
Build = Callable[[list[str], Path], Any]


def rank_layers(layers: list[str], op_types: dict[str, str], build: Build, heldout: HeldOut) -> list[LayerSensitivity]:
    """Each layer's sensitivity (only it quantized), most sensitive first; ties in graph order."""
    found = []
    with tempfile.TemporaryDirectory(prefix="sensitivity.") as tmp:
        for i, layer in enumerate(tqdm(layers, desc="layer sensitivity", unit="layer", disable=None, delay=2.0)):
            path = Path(tmp) / f"{i}.onnx"
            build([layer], path)
            logits = run_graph(path, heldout.images)
            found.append(LayerSensitivity(layer, op_types[layer], heldout.cosine_loss(logits), heldout.drop_pp(logits)))
    order = sorted(range(len(found)), key=lambda i: (-found[i].cosine_loss, -found[i].drop_pp, i))
    return [found[i] for i in order]


def search(
    layers: list[str], ranking: list[LayerSensitivity], build: Build, heldout: HeldOut, max_drop_pp: float
) -> MixedPrecisionResult:
    """Fewest most-sensitive layers kept in FP16 so that the drop is <= max_drop_pp."""
    ranked = [s.node for s in ranking]
    tried: dict[int, float] = {}
    metric = "accuracy" if heldout.labels is not None else "agreement"

    def drop_with(k: int) -> float:
        if k not in tried:
            kept = set(ranked[:k])
            with tempfile.TemporaryDirectory(prefix="mixed.") as tmp:
                path = Path(tmp) / "candidate.onnx"
                build([n for n in layers if n not in kept], path)
                tried[k] = heldout.drop_pp(run_graph(path, heldout.images))
            log.info("%d layer(s) kept in FP16: top-1 drop %.2f points", k, tried[k])
        return tried[k]

    n = len(ranked)
    if drop_with(0) <= max_drop_pp:
        k = 0
    elif drop_with(n) > max_drop_pp:
        best = min(tried, key=lambda j: (tried[j], j))
        return MixedPrecisionResult(max_drop_pp, metric, ranking, ranked[:best], tried[best], False, tried)
    else:
        low, high = 0, n  # drop(low) > budget >= drop(high)
        while high - low > 1:
            mid = (low + high) // 2
            if drop_with(mid) <= max_drop_pp:
                high = mid
            else:
                low = mid
        k = high
    return MixedPrecisionResult(max_drop_pp, metric, ranking, ranked[:k], tried[k], True, tried)
