"""Reference PyTorch ConvMixer: model, variant registry (with each variant's typed
preprocessing config), checkpoint loading."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, load_into
from .model import ConvMixer
from .registry import VARIANTS, WEIGHTS_DIR, PreprocessingCfg, Variant, get_variant, list_models

__all__ = [
    "CheckpointError",
    "ConvMixer",
    "PreprocessingCfg",
    "VARIANTS",
    "Variant",
    "create_model",
    "get_variant",
    "list_models",
]

log = logging.getLogger(__name__)


def create_model(
    name: str, checkpoint: str | Path | None = None, *, ema: bool | None = None, **overrides: Any
) -> ConvMixer:
    """Build a registered variant in eval mode.

    `checkpoint` is loaded strictly (see `convmixer.checkpoint`); when it holds both raw
    and EMA weights, `ema=None` takes the EMA ones (as timm does), True insists on them,
    False takes the raw ones. With no checkpoint, a variant
    that bundles weights (`convmixer_digits`) loads them; any other keeps its random
    initialisation. `overrides` replace architecture arguments (e.g. num_classes=10).
    """
    variant = get_variant(name)
    arch = {**variant.arch(), **overrides}
    model = ConvMixer(**arch)
    if checkpoint is None and variant.bundled_weights and not overrides:
        checkpoint = WEIGHTS_DIR / variant.bundled_weights
    if checkpoint is not None:
        load_into(model, checkpoint, name, ema=ema)
    return model.eval()
