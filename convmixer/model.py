"""The reference ConvMixer ("Patches Are All You Need?", Trockman & Kolter 2022).

Module names follow timm's layout (`stem`, `blocks.{i}.0.fn`, `head`) so that the
canonical state dict is timm's; the official and mmpretrain layouts are renamed onto
it in `checkpoint.py`.
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class ConvMixer(nn.Module):
    """ConvMixer-dim/depth: patch embedding, `depth` mixer blocks, pooled linear head."""

    def __init__(
        self,
        dim: int,
        depth: int,
        kernel_size: int = 9,
        patch_size: int = 7,
        num_classes: int = 1000,
        act: str = "gelu",
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        act_layer = ACTIVATIONS[act]
        self.dim, self.depth, self.kernel_size, self.patch_size = dim, depth, kernel_size, patch_size
        self.num_classes, self.act = num_classes, act
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size),
            act_layer(),
            nn.BatchNorm2d(dim),
        )
        self.blocks = nn.Sequential(
            *[
                nn.Sequential(
                    Residual(
                        nn.Sequential(
                            nn.Conv2d(dim, dim, kernel_size, groups=dim, padding="same"),
                            act_layer(),
                            nn.BatchNorm2d(dim),
                        )
                    ),
                    nn.Conv2d(dim, dim, kernel_size=1),
                    act_layer(),
                    nn.BatchNorm2d(dim),
                )
                for _ in range(depth)
            ]
        )
        self.head = nn.Linear(dim, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # mean over H, W rather than AdaptiveAvgPool2d: exports as one ReduceMean
        # with constant axes, which every TensorRT ONNX parser accepts.
        return self.head(self.forward_features(x).mean(dim=(2, 3)))
