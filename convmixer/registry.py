"""Variant registry: a name maps to architecture arguments and the preprocessing its weights expect."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)

WEIGHTS_DIR = Path(__file__).parent / "weights"


def preprocessing_values(
    input_size: int = 224,
    crop_pct: float = 0.96,
    interpolation: str = "bicubic",
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> dict[str, Any]:
    """The preprocessing a variant's weights expect, as plain values: resize the shorter
    side to `input_size / crop_pct` with `interpolation`, centre-crop `input_size`, scale
    to [0, 1], normalise with `mean` and `std` (RGB). The export step turns these into
    the runtime's Preprocessing (the one definition, checked there) for model.json."""
    return {"input_size": input_size, "crop_pct": crop_pct, "interpolation": interpolation, "mean": mean, "std": std}


@dataclass(frozen=True)
class Variant:
    """One registered ConvMixer: architecture, preprocessing, labels and bundled weights."""

    name: str
    dim: int
    depth: int
    kernel_size: int
    patch_size: int
    act: str
    num_classes: int
    preprocessing: dict[str, Any] = field(default_factory=preprocessing_values)
    labels: str | None = None  # "imagenet1k", "digits", "cifar10" or None
    bundled_weights: str | None = None  # file name in convmixer/weights/
    imagenet_top1: float | None = None  # of the released weights, for the README

    def arch(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "depth": self.depth,
            "kernel_size": self.kernel_size,
            "patch_size": self.patch_size,
            "act": self.act,
            "num_classes": self.num_classes,
        }


_VARIANTS = [
    Variant("convmixer_1536_20", 1536, 20, 9, 7, "gelu", 1000, labels="imagenet1k", imagenet_top1=81.37),
    # The released 768/32 weights were trained with ReLU throughout.
    Variant("convmixer_768_32", 768, 32, 7, 7, "relu", 1000, labels="imagenet1k", imagenet_top1=80.16),
    Variant("convmixer_1024_20_ks9_p14", 1024, 20, 9, 14, "gelu", 1000, labels="imagenet1k", imagenet_top1=76.94),
    Variant(
        "convmixer_256_8",
        256,
        8,
        5,
        2,
        "gelu",
        10,
        preprocessing=preprocessing_values(32, 1.0, "bicubic", CIFAR10_MEAN, CIFAR10_STD),
        labels="cifar10",
    ),
    # Trained by scripts/train_digits.py on scikit-learn's digits; weights ship with the package.
    Variant(
        "convmixer_digits",
        64,
        4,
        5,
        2,
        "gelu",
        10,
        preprocessing=preprocessing_values(32, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        labels="digits",
        bundled_weights="convmixer_digits.safetensors",
    ),
]
VARIANTS: dict[str, Variant] = {v.name: v for v in _VARIANTS}


def list_models() -> list[str]:
    """Names of the registered variants."""
    return sorted(VARIANTS)


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}") from None


LABELS_DIR = Path(__file__).parent / "labels"


def label_names(label_set: str | None) -> list[str] | None:
    """Class names for a label set shipped with the package (no download)."""
    if label_set is None:
        return None
    return (LABELS_DIR / f"{label_set}.txt").read_text(encoding="utf-8").splitlines()
