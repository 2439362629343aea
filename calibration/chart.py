"""calibration.png: per-layer INT8 sensitivity, the layers kept in FP16 marked."""

from __future__ import annotations

from pathlib import Path

from runtime.core.atomic import atomic_path
from runtime.core.errors import require

from .mixed import MixedPrecisionResult


def write_chart(path: Path, result: MixedPrecisionResult, layers: list[str], title: str) -> None:
    """Bar per quantizable layer in graph order (log scale), FP16-kept bars in red."""
    matplotlib = require("matplotlib", "the sensitivity chart needs matplotlib: pip install -e '.[export]'")
    matplotlib.use("Agg")  # no display; safe in threads and on servers
    import matplotlib.pyplot as plt

    by_node = {s.node: s for s in result.ranking}
    kept = set(result.kept_fp16)
    values = [max(by_node[n].cosine_loss, 1e-12) for n in layers]
    colours = ["tab:red" if n in kept else "tab:blue" for n in layers]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(layers) + 2), 4.5))
    try:
        ax.bar(range(len(layers)), values, color=colours)
        ax.set_yscale("log")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=90, fontsize=6)
        ax.set_ylabel("logit cosine loss vs FP32\n(only this layer INT8)")
        verdict = "met" if result.budget_met else "NOT met"
        ax.set_title(
            f"{title}: {len(kept)} of {len(layers)} layers kept in FP16 (red); "
            f"top-1 drop {result.drop_pp:.2f} pp, budget {result.max_drop_pp:g} pp {verdict}",
            fontsize=8,
        )
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    finally:
        plt.close(fig)
