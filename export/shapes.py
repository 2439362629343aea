"""Optimization profiles: `--shapes MIN:OPT:MAX`, parsed and checked in the model's layout.

Nothing here imports TensorRT, so shapes are checked on any machine before a build starts.
Profiles are layout-aware: a float32 model takes NCHW `[batch, 3, height, width]`, a model
exported with `--input uint8` takes NHWC `[batch, height, width, 3]` (runtime.core.manifest.InputSpec),
and shapes are given and checked in the model's own layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec

Shape = tuple[int, int, int, int]
DEFAULT_MAX_BATCH = 64
DEFAULT_OPT_BATCH = 32
MAX_INPUT_ELEMENTS = 2**31 - 1  # beyond it, sizes overflow int32 and an input is 8 GiB and more


def _parse_shape(text: str, spec: str) -> Shape:
    parts = text.lower().split("x")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts):
        raise UserError(
            f"--shapes {spec}: {text!r} is not four sizes: NxCxHxW (e.g. 8x3x224x224), or NxHxWxC "
            "(8x224x224x3) for a model exported with --input uint8"
        )
    a, b, c, d = (int(p) for p in parts)
    return a, b, c, d


def _axes(spec: InputSpec) -> tuple[int, int, int]:
    """(channel, height, width) axes of the input in this model's layout."""
    return (3, 1, 2) if spec.layout == "NHWC" else (1, 2, 3)


@dataclass(frozen=True)
class Profile:
    min: Shape
    opt: Shape
    max: Shape

    @classmethod
    def parse(cls, spec: str) -> Profile:
        """'1x3x224x224:32x3x224x224:64x3x224x224' (MIN:OPT:MAX)."""
        parts = spec.split(":")
        if len(parts) != 3:
            raise UserError(f"--shapes {spec}: expected MIN:OPT:MAX, e.g. 1x3x224x224:32x3x224x224:64x3x224x224")
        lo, opt, hi = (_parse_shape(p, spec) for p in parts)
        return cls(lo, opt, hi)

    @property
    def is_static(self) -> bool:
        return self.min == self.opt == self.max

    def validate(self, patch_size: int, input_spec: InputSpec | None = None) -> None:
        """Check the shapes in the model's layout (NCHW, or NHWC for a uint8-input model)."""
        input_spec = input_spec or InputSpec()
        spec, layout = self.spec(), input_spec.layout
        c_axis, h_axis, w_axis = _axes(input_spec)
        for shape in (self.min, self.opt, self.max):
            if shape[c_axis] != 3:
                raise UserError(
                    f"--shapes {spec}: channels must be 3 | got {shape[c_axis]} on axis {c_axis} | "
                    f"this model takes {input_spec.dtype} {layout}"
                )
            if shape[0] < 1:
                raise UserError(f"--shapes {spec}: batch must be at least 1")
            if min(shape[h_axis], shape[w_axis]) < patch_size:
                raise UserError(
                    f"--shapes {spec}: height and width ({layout}) must be at least the patch size {patch_size}"
                )
            if math.prod(shape) > MAX_INPUT_ELEMENTS:
                raise UserError(
                    f"--shapes {spec}: {'x'.join(map(str, shape))} is {math.prod(shape):,} elements; "
                    f"an input holds at most {MAX_INPUT_ELEMENTS:,} (2^31-1)"
                )
        names = {0: "batch", c_axis: "channels", h_axis: "height", w_axis: "width"}
        for axis in range(4):
            if not self.min[axis] <= self.opt[axis] <= self.max[axis]:
                raise UserError(f"--shapes {spec}: {names[axis]} must satisfy min <= opt <= max")

    def spec(self) -> str:
        return ":".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def default_profile(input_size: int, input_spec: InputSpec | None = None) -> Profile:
    """Batch 1..64 (opt 32) at the model's input size, in the model's input layout."""
    spec, s = input_spec or InputSpec(), input_size
    return Profile(spec.shape(1, s, s), spec.shape(DEFAULT_OPT_BATCH, s, s), spec.shape(DEFAULT_MAX_BATCH, s, s))
