"""model.json's `preprocessing` block: how an image becomes the model's input.

It sits below runtime.core.manifest (which reads it) and runtime.app.images (which applies it),
so neither has to import the other for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .errors import UserError

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input; model.json's `preprocessing` block.

    The one definition: the variant registry holds these values as plain data, export
    builds this from them and writes `to_dict()`, and everything that reads images reads
    it back with `from_dict`. Resize the shorter side to `input_size / crop_pct` with
    `interpolation`, centre-crop `input_size`, scale to [0, 1], normalise with `mean` and
    `std` (RGB). `exif_transpose` turns the image upright first as its EXIF says.
    """

    input_size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    exif_transpose: bool = True

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(f"preprocessing: unknown interpolation {self.interpolation!r}")
        if not 0 < self.crop_pct <= 1:
            raise UserError(f"preprocessing: crop_pct must be in (0, 1], got {self.crop_pct}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise UserError(f"preprocessing: mean and std need 3 values, std positive; got {self.mean}, {self.std}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        """Read model.json's block; manifests older than `exif_transpose` get the default (on)."""
        try:
            return cls(
                input_size=int(d["input_size"]),
                crop_pct=float(d["crop_pct"]),
                interpolation=str(d["interpolation"]),
                mean=tuple(float(x) for x in d["mean"]),  # type: ignore[arg-type]
                std=tuple(float(x) for x in d["std"]),  # type: ignore[arg-type]
                exif_transpose=bool(d.get("exif_transpose", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"model.json: bad preprocessing block ({exc!r})") from None
