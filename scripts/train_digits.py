"""Train `convmixer_digits` on scikit-learn's handwritten digits (CPU, about a minute).

    python scripts/train_digits.py [--out convmixer/weights/convmixer_digits.safetensors]

Seeded and deterministic on one machine. Trains on the "train" split of
runtime.app.images.datasets only; reports top-1 on the held-out "test" split, which it never
sees. The images go through runtime.core.preprocess, the same code the runtime and
calibration use, so the deployed model sees exactly what it was trained on.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import convmixer  # noqa: E402
from runtime.app.images.datasets import load_digits  # noqa: E402
from runtime.core.atomic import atomic_path  # noqa: E402
from runtime.core.preprocess import Preprocessing, preprocess  # noqa: E402

log = logging.getLogger("train_digits")
NAME = "convmixer_digits"


def tensors(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits(split)
    cfg = Preprocessing.from_dict(convmixer.get_variant(NAME).preprocessing.to_dict())
    x = np.stack([preprocess(data.image(i), cfg) for i in range(len(data.labels))])
    return torch.from_numpy(x), torch.from_numpy(data.labels)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to 3 px (digits are not centred consistently)."""
    pad = 3
    padded = nn.functional.pad(x, (pad, pad, pad, pad), value=float(x.min()))
    out = torch.empty_like(x)
    offsets = torch.randint(0, 2 * pad + 1, (len(x), 2), generator=gen)
    h, w = x.shape[2:]
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    return out


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        return float((model(x).argmax(1) == y).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out",
        type=Path,
        default=convmixer.WEIGHTS_DIR / "convmixer_digits.safetensors",
        help="weights file to write (default: the bundled convmixer_digits.safetensors)",
    )
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--limit",
        type=int,
        help="train on the first N training images only (a quick check; the bundled weights use all)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)
    x_train, y_train = tensors("train")
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    x_test, y_test = tensors("test")
    model = convmixer.ConvMixer(**convmixer.get_variant(NAME).arch())
    batch = 64
    steps = args.epochs * ((len(x_train) + batch - 1) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=5e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            loss = loss_fn(model(augment(x_train[idx], gen)), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % 5 == 4 or epoch == args.epochs - 1:
            log.info(
                "epoch %d: loss %.3f, train top-1 %.2f%%",
                epoch + 1,
                loss.item(),
                100 * evaluate(model, x_train, y_train),
            )
    seconds = time.perf_counter() - start
    top1 = evaluate(model, x_test, y_test)
    log.info("held-out top-1 %.2f%% on %d images, %.0f s", 100 * top1, len(y_test), seconds)

    from safetensors.torch import save_file

    with atomic_path(args.out) as tmp:
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp), metadata={"model": NAME, "heldout_top1": f"{top1:.4f}", "seed": str(args.seed)})
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
