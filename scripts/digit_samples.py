"""Write a few held-out digits as PNG files (named by their true label) for the demo.

    python scripts/digit_samples.py OUT_DIR [COUNT]

The images are the first COUNT (default 8) of the digits "test" split, which no model
of this project trains or calibrates on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.app.cli.options import guarded  # noqa: E402
from runtime.app.images.datasets import load_digits  # noqa: E402
from runtime.core.atomic import atomic_path  # noqa: E402
from runtime.core.errors import UserError  # noqa: E402


def write_samples(out: Path, count: int) -> int:
    """Save the first `count` test digits into `out`; returns how many were written."""
    if count < 1:
        raise UserError(f"COUNT {count}: expected at least 1")
    test = load_digits("test")
    if count > len(test.labels):
        raise UserError(f"COUNT {count}: expected 1 to {len(test.labels)} (the size of the digits test split)")
    for i in range(count):
        with atomic_path(out / f"test{i:03d}_true{test.labels[i]}.png") as tmp:
            test.image(i).save(tmp, format="PNG")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="folder to write the PNG files into")
    parser.add_argument("count", type=int, nargs="?", default=8, metavar="COUNT", help="how many images (default 8)")
    args = parser.parse_args(argv)

    def run() -> int:
        n = write_samples(args.out, args.count)
        print(f"wrote {n} held-out digit images to {args.out}")
        return 0

    return guarded(run)


if __name__ == "__main__":
    sys.exit(main())
