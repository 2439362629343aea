"""An engine's optimization profiles: which input shapes it accepts, which profile runs
a shape, and how a batch is cut into chunks the profile can run.

A batch larger than a profile's maximum is split into chunks of that maximum; a chunk
smaller than the profile's minimum (the last one, on a static 4:4:4 profile or one whose
minimum batch is over 1) is padded up to the minimum and its extra outputs dropped. So
every batch size from 1 up is accepted, and errors name the caller's input shape, never
a chunk's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from ..manifest import INPUT_NAME

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ProfileRange:
    index: int
    min: Shape
    opt: Shape
    max: Shape

    def holds_image(self, shape: Shape) -> bool:
        """Whether every dimension but the batch is inside this profile's range."""
        return len(shape) == len(self.min) and all(self.min[d] <= shape[d] <= self.max[d] for d in range(1, len(shape)))

    def describe(self) -> str:
        return "(" + ",".join(map(str, self.min)) + ")..(" + ",".join(map(str, self.max)) + ")"


@dataclass(frozen=True)
class Chunk:
    """Images [start, stop) of the caller's batch, run as a batch of `run` (>= stop - start)."""

    start: int
    stop: int
    run: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def padded(self) -> bool:
        return self.run > self.size


class ProfileSet:
    """Owns accept, choose and pad for one engine input."""

    def __init__(self, ranges: Sequence[ProfileRange]) -> None:
        if not ranges:
            raise UserError(f"the engine has no optimization profile for input '{INPUT_NAME}'")
        self.ranges = tuple(ranges)

    @classmethod
    def from_shapes(cls, shapes: Sequence[tuple[Shape, Shape, Shape]]) -> ProfileSet:
        return cls([ProfileRange(i, tuple(lo), tuple(opt), tuple(hi)) for i, (lo, opt, hi) in enumerate(shapes)])

    def describe(self) -> str:
        return ", ".join(r.describe() for r in self.ranges)

    @property
    def max_batch(self) -> int:
        return max(r.max[0] for r in self.ranges)

    @property
    def max_elements(self) -> int:
        """The most input elements any one run can take: what an input buffer must hold."""
        total = 0
        for r in self.ranges:
            n = 1
            for d in r.max:
                n *= d
            total = max(total, n)
        return total

    def accepts(self, shape: Shape) -> bool:
        return len(shape) >= 1 and shape[0] >= 1 and any(r.holds_image(shape) for r in self.ranges)

    def choose(self, shape: Shape) -> ProfileRange:
        """The first profile whose image range holds `shape` (any batch fits by chunking)."""
        if shape and shape[0] >= 1:
            for r in self.ranges:
                if r.holds_image(shape):
                    return r
        raise UserError(f"input '{INPUT_NAME}' | got shape {tuple(shape)} | engine profile allows {self.describe()}")

    @staticmethod
    def chunks(batch: int, profile: ProfileRange) -> list[Chunk]:
        """Cut `batch` images into runs of at most the profile's max batch, each padded up
        to its min batch."""
        lo, hi = profile.min[0], profile.max[0]
        out = []
        for start in range(0, batch, hi):
            stop = min(start + hi, batch)
            out.append(Chunk(start, stop, max(stop - start, lo)))
        return out

    def run_shape(self, shape: Shape, chunk: Chunk) -> Shape:
        return (chunk.run, *shape[1:])
