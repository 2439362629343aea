"""model.json's `preprocessing` block: how an image becomes the model's input, and the one
set of rules a block must follow.

It sits below runtime.core.manifest (which reads it) and the image code (which applies it),
so neither has to import the other for it. No Pillow here: the resampling filter a name
means is runtime.core.preprocess's business, loaded only when an image is preprocessed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import UserError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")  # Pillow's filters of these names
MAX_SIZE = 8192  # pixels per side of a model input (input_size here, bench --size)


def whole_in(value: Any, low: int, high: int) -> bool:
    """A whole number (not a bool) from `low` to `high`: what model.json's counts and sizes must be."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def finite(value: Any) -> bool:
    """A real number (not a bool), not NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input; model.json's `preprocessing` block.

    The one definition: the variant registry holds these values as plain data, export
    builds this from them and writes `to_dict()`, and everything that reads images reads
    it back with `from_dict`. Resize the shorter side to `input_size / crop_pct` with
    `interpolation`, centre-crop `input_size`, scale to [0, 1], normalise with `mean` and
    `std` (RGB). `exif_transpose` turns the image upright first as its EXIF says.
    Every value is checked when one is made, from code or from a file alike.
    """

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    exif_transpose: bool = True

    def __post_init__(self) -> None:
        def bad(field: str, value: Any, expected: str) -> UserError:
            return UserError(f"preprocessing.{field} {value!r} | expected {expected}")

        if not whole_in(self.input_size, 1, MAX_SIZE):
            raise bad("input_size", self.input_size, f"a whole number from 1 to {MAX_SIZE}")
        if not finite(self.crop_pct) or not 0 < self.crop_pct <= 1:
            raise bad("crop_pct", self.crop_pct, "a number in (0, 1]")
        if self.interpolation not in INTERPOLATIONS:
            raise bad("interpolation", self.interpolation, f"one of {', '.join(INTERPOLATIONS)}")
        for field, positive in (("mean", False), ("std", True)):
            v = getattr(self, field)
            if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(finite(x) and (x > 0 or not positive) for x in v):
                raise bad(field, list(v) if isinstance(v, tuple) else v, "3 finite numbers" + (", each above 0" if positive else ""))
        if not isinstance(self.exif_transpose, bool):
            raise bad("exif_transpose", self.exif_transpose, "true or false")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> Preprocessing:
        """Read model.json's block (UserError naming the field); manifests older than
        `exif_transpose` get the default (on)."""
        if not isinstance(d, dict):
            raise UserError(f"preprocessing {d!r} | expected a block with input_size, crop_pct, interpolation, mean, std")
        seq = (list, tuple)
        return cls(
            input_size=d.get("input_size"),  # type: ignore[arg-type]  # checked in __post_init__
            crop_pct=d.get("crop_pct"),  # type: ignore[arg-type]
            interpolation=d.get("interpolation"),  # type: ignore[arg-type]
            mean=tuple(d["mean"]) if isinstance(d.get("mean"), seq) else d.get("mean"),  # type: ignore[arg-type]
            std=tuple(d["std"]) if isinstance(d.get("std"), seq) else d.get("std"),  # type: ignore[arg-type]
            exif_transpose=d.get("exif_transpose", True),
        )
