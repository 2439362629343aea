"""Write synthetic 500x375 JPEGs for `python -m runtime bench --images` (no download).

    python scripts/bench_jpegs.py OUT_DIR [--count 200] [--seed 0]

Each image is smooth colour gradients plus noise, saved at quality 90: it decodes and
resizes like a photo of that size (the JPEG decoder's work depends on the size and on
how much detail survives compression), which is what the host pipeline rate depends on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 500, 375


def synthetic_photo(rng: np.random.Generator) -> Image.Image:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.002, 0.03, 2).tolist() + [rng.uniform(0, 6.3)]
        channels.append(127 + 100 * np.sin(fx * x + fy * y + phase))
    img = np.stack(channels, axis=-1) + rng.normal(0, 18, (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder the JPEGs are written to")
    parser.add_argument("--count", type=int, default=200, help="how many JPEGs (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for i in range(args.count):
        synthetic_photo(rng).save(args.out / f"bench_{i:04d}.jpg", quality=90)
    print(f"wrote {args.count} {WIDTH}x{HEIGHT} JPEGs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
