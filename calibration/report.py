"""calibration.json: how the INT8 graph was made and how it does on held-out images."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.app.evaluate import topk_accuracy
from runtime.core.parity import compare
from runtime.core.runner import Runner

from .data import DataSource

BATCH = 32


def heldout_report(source: DataSource, runners: dict[str, Runner]) -> dict[str, Any]:
    """Run the held-out images through each precision's runner (fp32 first) and compare."""
    logits: dict[str, list[np.ndarray]] = {p: [] for p in runners}
    labels: list[int | None] = []
    for x, y in source.batches(source.heldout, BATCH):
        labels.extend(y)
        for precision, runner in runners.items():
            logits[precision].append(runner.infer(x))
    if not labels:
        return {"images": 0, "note": "no held-out images"}
    out = {p: np.concatenate(v) for p, v in logits.items()}
    report: dict[str, Any] = {"images": len(labels)}
    for precision in (p for p in out if p != "fp32"):
        parity = compare(out["fp32"], out[precision], precision)
        report[f"{precision}_vs_fp32"] = {
            "top1_agreement": parity.top1_agreement,
            "top5_agreement": parity.top5_agreement,
            "cosine_mean": parity.mean_cosine,
            "cosine_min": parity.min_cosine,
        }
    if all(label is not None for label in labels):
        truth = np.asarray(labels)
        report["accuracy"] = {}
        for precision, z in out.items():
            top1, top5 = topk_accuracy(z, truth)
            report["accuracy"][precision] = {"top1": top1, "top5": top5}
    return report
