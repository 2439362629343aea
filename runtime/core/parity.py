"""Parity of a backend's logits against the reference (PyTorch) logits.

The tolerances for each precision live here and nowhere else; README.md documents them.

- max_abs is scaled by the reference's largest |logit| (at least 1), so one rule serves
  models whose logits are O(1) and O(100).
- cosine is the lowest per-image cosine similarity of the logit vectors.
- top-1 agreement counts an image as disagreeing only when the reference itself is
  decisive: its logit for its own top-1 class beats its logit for the backend's pick
  by more than the precision's absolute error budget. A swap between two classes
  the reference scores within that budget of each other is noise, not a wrong model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .artifacts import FP16, FP32, INT8
from .errors import UserError


@dataclass(frozen=True)
class Tolerance:
    max_abs_rel: float  # max |ref - out| / max(1, max |ref|); None-like inf disables
    min_cosine: float
    min_top1: float  # fraction of decisive images whose top-1 must agree


TOLERANCES: dict[str, Tolerance] = {
    # ONNX Runtime / TensorRT FP32 against PyTorch: only summation order differs.
    FP32: Tolerance(max_abs_rel=1e-3, min_cosine=0.99999, min_top1=1.0),
    # FP16 weights and activations: ~3 significant digits per op, compounded over depth.
    FP16: Tolerance(max_abs_rel=5e-2, min_cosine=0.999, min_top1=0.99),
    # INT8: the logits move; what matters is that decisions and the logit direction hold.
    INT8: Tolerance(max_abs_rel=float("inf"), min_cosine=0.98, min_top1=0.90),
}


@dataclass
class ParityResult:
    precision: str
    images: int
    max_abs: float
    mean_abs: float
    min_cosine: float
    mean_cosine: float
    top1_agreement: float
    top5_agreement: float
    decisive_top1_agreement: float
    tolerance: Tolerance
    failures: list[str] = field(default_factory=list)
    note: str = ""

    def __bool__(self) -> bool:
        return not self.failures

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["passed"] = self.passed
        out["tolerance"] = {k: (None if v == float("inf") else v) for k, v in asdict(self.tolerance).items()}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.failures)
        if self.note:
            verdict += f" ({self.note})"
        return (
            f"{self.precision} parity on {self.images} images: max|err| {self.max_abs:.3g}, "
            f"mean|err| {self.mean_abs:.3g}, cosine min {self.min_cosine:.6f}, "
            f"top-1 {self.top1_agreement:.1%}, top-5 {self.top5_agreement:.1%} -> {verdict}"
        )


def compare(reference_logits: np.ndarray, logits: np.ndarray, precision: str) -> ParityResult:
    """Compare logits [N, classes] with the reference under `precision`'s tolerances."""
    if precision not in TOLERANCES:
        raise UserError(f"unknown precision {precision!r}; expected one of {', '.join(TOLERANCES)}")
    ref = np.asarray(reference_logits, dtype=np.float64)
    out = np.asarray(logits, dtype=np.float64)
    if ref.shape != out.shape or ref.ndim != 2:
        raise UserError(f"logits shape {out.shape} does not match the reference {ref.shape}")
    tol = TOLERANCES[precision]
    err = np.abs(ref - out)
    scale = max(1.0, float(np.abs(ref).max()))
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cosine = np.where(norms > 0, (ref * out).sum(axis=1) / np.maximum(norms, 1e-30), 0.0)

    ref_top1 = ref.argmax(axis=1)
    out_top1 = out.argmax(axis=1)
    k = min(5, ref.shape[1])
    ref_top5 = np.argsort(-ref, axis=1)[:, :k]
    out_top5 = np.argsort(-out, axis=1)[:, :k]
    top5 = np.mean([len(set(a) & set(b)) / k for a, b in zip(ref_top5, out_top5, strict=False)])

    rows = np.arange(len(ref))
    budget = (tol.max_abs_rel if np.isfinite(tol.max_abs_rel) else 0.1) * scale
    margin = ref[rows, ref_top1] - ref[rows, out_top1]
    decisive = (ref_top1 == out_top1) | (margin > budget)
    agree_decisive = float(np.mean((ref_top1 == out_top1)[decisive])) if decisive.any() else 1.0

    result = ParityResult(
        precision=precision,
        images=len(ref),
        max_abs=float(err.max()),
        mean_abs=float(err.mean()),
        min_cosine=float(cosine.min()),
        mean_cosine=float(cosine.mean()),
        top1_agreement=float(np.mean(ref_top1 == out_top1)),
        top5_agreement=float(top5),
        decisive_top1_agreement=agree_decisive,
        tolerance=tol,
    )
    if not np.isfinite(out).all():
        result.failures.append("non-finite logits")
    if result.max_abs > tol.max_abs_rel * scale:
        result.failures.append(f"max|err| {result.max_abs:.3g} > {tol.max_abs_rel:g} x {scale:.3g}")
    if result.min_cosine < tol.min_cosine:
        result.failures.append(f"cosine {result.min_cosine:.6f} < {tol.min_cosine}")
    if agree_decisive < tol.min_top1:
        result.failures.append(f"top-1 agreement {agree_decisive:.1%} < {tol.min_top1:.0%}")
    return result
