"""Variant registry: a name maps to architecture arguments and the preprocessing its weights expect."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class PreprocessingCfg:
    """The preprocessing a variant's weights expect (timm's PretrainedCfg, preprocessing part).

    Resize the shorter side to `input_size / crop_pct` with `interpolation`, centre-crop
    `input_size`, scale to [0, 1], normalise with `mean` and `std` (RGB). convmixer may
    import only torch, so this is a typed twin of runtime.core.preprocess.Preprocessing:
    export builds that one (which validates the values) from `to_dict()` for model.json.
    """

    input_size: int = 224
    crop_pct: float = 0.96
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as runtime's Preprocessing.from_dict and model.json take them."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


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
    preprocessing: PreprocessingCfg = field(default_factory=PreprocessingCfg)
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
    Variant(
        name="convmixer_1536_20",
        dim=1536,
        depth=20,
        kernel_size=9,
        patch_size=7,
        act="gelu",
        num_classes=1000,
        labels="imagenet1k",
        imagenet_top1=81.37,
    ),
    # The released 768/32 weights were trained with ReLU throughout.
    Variant(
        name="convmixer_768_32",
        dim=768,
        depth=32,
        kernel_size=7,
        patch_size=7,
        act="relu",
        num_classes=1000,
        labels="imagenet1k",
        imagenet_top1=80.16,
    ),
    Variant(
        name="convmixer_1024_20_ks9_p14",
        dim=1024,
        depth=20,
        kernel_size=9,
        patch_size=14,
        act="gelu",
        num_classes=1000,
        labels="imagenet1k",
        imagenet_top1=76.94,
    ),
    Variant(
        name="convmixer_256_8",
        dim=256,
        depth=8,
        kernel_size=5,
        patch_size=2,
        act="gelu",
        num_classes=10,
        preprocessing=PreprocessingCfg(
            input_size=32, crop_pct=1.0, interpolation="bicubic", mean=CIFAR10_MEAN, std=CIFAR10_STD
        ),
        labels="cifar10",
    ),
    # Trained by scripts/train_digits.py on scikit-learn's digits; weights ship with the package.
    Variant(
        name="convmixer_digits",
        dim=64,
        depth=4,
        kernel_size=5,
        patch_size=2,
        act="gelu",
        num_classes=10,
        preprocessing=PreprocessingCfg(
            input_size=32, crop_pct=1.0, interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
        ),
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


def wnid_names(label_set: str | None) -> list[str] | None:
    """WordNet IDs (n01440764, ...) in class order, for label sets that have them (ImageNet-1k:
    labels/imagenet1k_wnids.txt, the standard sorted list, as timm ships it); else None.
    `evaluate` maps ImageNet-style class folders (val/n01440764/...) by them."""
    path = LABELS_DIR / f"{label_set}_wnids.txt"
    return path.read_text(encoding="ascii").split() if label_set and path.is_file() else None
