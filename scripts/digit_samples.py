"""Write a few held-out digits as PNG files (named by their true label) for the demo.

python scripts/digit_samples.py OUT_DIR [N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime.images.datasets import load_digits  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    out.mkdir(parents=True, exist_ok=True)
    test = load_digits("test")
    for i in range(n):
        test.image(i).save(out / f"test{i:03d}_true{test.labels[i]}.png")
    print(f"wrote {n} held-out digit images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
