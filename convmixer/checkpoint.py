"""Checkpoint loading: a chain of small functions from a file to a checked state dict.

read_checkpoint -> unwrap -> strip_prefix -> to_timm_keys -> check_against(model)

Accepted: the official release (flat nn.Sequential keys), timm and mmpretrain state
dicts, in .pth/.pth.tar/.pt/.bin (torch pickles, loaded with weights_only=True) or
.safetensors files, optionally wrapped ('state_dict', 'model', 'state_dict_ema', 'model_ema';
EMA weights are preferred when both are present, as timm does) and
with a DataParallel 'module.' prefix.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

# EMA entries first: timm prefers them when a checkpoint holds both.
EMA_KEYS = ("state_dict_ema", "model_ema")
WRAPPER_KEYS = (*EMA_KEYS, "state_dict", "model")
PICKLE_SUFFIXES = (".pth", ".pth.tar", ".pt", ".bin", ".tar")


class CheckpointError(Exception):
    """A checkpoint that cannot be used, with a message a user can act on."""


def read_checkpoint(path: str | Path) -> Any:
    """Load a checkpoint file without running code from it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.name.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path}: not a readable safetensors file ({exc})") from None
    if not path.name.endswith(PICKLE_SUFFIXES):
        raise CheckpointError(
            f"checkpoint {path}: unknown file type; expected one of .safetensors, {', '.join(PICKLE_SUFFIXES)}"
        )
    kind = sniff(path)
    if kind != "pickle":
        raise CheckpointError(f"checkpoint {path}: not a PyTorch checkpoint ({kind})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _NEEDS_CODE.search(str(exc)):
            raise CheckpointError(
                f"checkpoint {path}: refused, it needs arbitrary code to unpickle "
                "(only tensors and plain containers are loaded; re-save it as a plain state dict)"
            ) from None
        raise CheckpointError(f"checkpoint {path}: corrupt pickle ({_last_reason(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path}: truncated or corrupt ({first})") from None


# torch's weights-only unpickler names the global it refused ("GLOBAL x.Y was not an
# allowed global", "Unsupported global: ..."); every other refusal is damage.
_NEEDS_CODE = re.compile(r"was not an allowed global|Unsupported global", re.IGNORECASE)
_ZIP_MAGIC = b"PK\x03\x04"


def _last_reason(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and "documentation" not in line]
    return lines[-1] if lines else type(exc).__name__


def sniff(path: Path) -> str:
    """ "pickle" for what torch.save writes (a zip archive, or a pickle stream from before
    PyTorch 1.6); otherwise a short description of what the file looks like instead."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return "the file is empty"
    if head.startswith(_ZIP_MAGIC) or (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return "pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else ""
    if text and sum(c.isprintable() or c in "\t\r\n" for c in text) >= 0.95 * len(text):
        return "looks like text"
    return f"unrecognised binary data starting {head[:8].hex(' ')}"


def unwrap(obj: Any, ema: bool | None = None) -> tuple[dict[str, torch.Tensor], str | None]:
    """Pick the state dict out of a training wrapper dict; returns it and the key it sat under.

    With both raw and EMA weights (timm's `state_dict` and `state_dict_ema`), `ema=None`
    takes the EMA ones as timm does, True insists on them and False takes the raw ones.
    """
    if isinstance(obj, Mapping):
        present = [k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)]
        ema_keys = [k for k in present if k in EMA_KEYS]
        raw_keys = [k for k in present if k not in EMA_KEYS]
        if ema is True and present and not ema_keys:
            raise CheckpointError(f"checkpoint has no EMA weights (it holds {', '.join(present)}); drop --ema")
        if ema is False and present and not raw_keys:
            raise CheckpointError(f"checkpoint holds only EMA weights ({', '.join(ema_keys)}); drop --no-ema")
        chosen = (ema_keys if ema is not False else []) + (raw_keys if ema is not True else [])
        if chosen:
            key = chosen[0]
            others = [k for k in present if k != key]
            log.info(
                "using the checkpoint's %r entry (%s weights)%s",
                key,
                "EMA" if key in EMA_KEYS else "raw",
                f"; it also holds {', '.join(repr(k) for k in others)}" if others else "",
            )
            inner, _ = unwrap(obj[key], ema)
            return inner, key
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors, None
    raise CheckpointError(
        f"checkpoint holds no state dict (expected tensors, or one of the keys {', '.join(WRAPPER_KEYS)})"
    )


def strip_prefix(state: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    if all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def detect_format(state: Mapping[str, Any]) -> str:
    """'official', 'timm' or 'mmpretrain', from the key names."""
    keys = set(state)
    if "stem.0.weight" in keys:
        return "timm"
    if "backbone.stem.0.weight" in keys:
        return "mmpretrain"
    if "0.weight" in keys:
        return "official"
    sample = ", ".join(sorted(keys)[:5])
    raise CheckpointError(f"checkpoint keys are not a ConvMixer's (first keys: {sample})")


_OFFICIAL_KEY = re.compile(r"^(\d+)\.(.+)$")


def _official_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # nn.Sequential(conv, act, bn, *blocks, pool, flatten, linear): the head sits at 5 + depth.
    indices = {int(m.group(1)) for k in state if (m := _OFFICIAL_KEY.match(k))}
    head_index = max(indices) if indices else 0
    depth = head_index - 5
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _OFFICIAL_KEY.match(key)
        if not m:
            out[key] = value  # reported as unexpected by check_against
            continue
        index, rest = int(m.group(1)), m.group(2)
        if index in (0, 2):
            out[f"stem.{index}.{rest}"] = value
        elif 3 <= index < 3 + depth:
            out[f"blocks.{index - 3}.{rest}"] = value
        elif index == head_index:
            out[f"head.{rest}"] = value
        else:
            out[key] = value
    return out


def _mmpretrain_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renames = (("backbone.stem.", "stem."), ("backbone.stages.", "blocks."), ("head.fc.", "head."))
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def to_timm_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Rename any accepted layout onto timm's (this project's canonical) keys."""
    fmt = detect_format(state)
    if fmt == "official":
        return _official_to_timm(state), fmt
    if fmt == "mmpretrain":
        return _mmpretrain_to_timm(state), fmt
    return dict(state), fmt


def describe_arch(state: Mapping[str, torch.Tensor]) -> dict[str, int] | None:
    """Architecture read off canonical-key shapes, or None when the keys are incomplete."""
    try:
        stem = state["stem.0.weight"]
        dw = state["blocks.0.0.fn.0.weight"]
        head = state["head.weight"]
    except KeyError:
        return None
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.") and not k.endswith("num_batches_tracked")})
    return {
        "dim": int(stem.shape[0]),
        "depth": depth,
        "kernel_size": int(dw.shape[-1]),
        "patch_size": int(stem.shape[-1]),
        "num_classes": int(head.shape[0]),
    }


def _looks_like(arch: dict[str, int] | None) -> str:
    from .registry import VARIANTS

    if arch is None:
        return ""
    keys = ("dim", "depth", "kernel_size", "patch_size")
    for variant in VARIANTS.values():
        if all(variant.arch()[k] == arch[k] for k in keys):
            return f"; it looks like {variant.name}"
    shape = f"{arch['dim']}/{arch['depth']} k{arch['kernel_size']} p{arch['patch_size']}"
    return f"; it looks like a ConvMixer-{shape} with {arch['num_classes']} classes"


def check_against(state: dict[str, torch.Tensor], model: torch.nn.Module, name: str) -> dict[str, torch.Tensor]:
    """Compare keys and shapes with `model`; report every mismatch by name."""
    expected = model.state_dict()
    looks_like = _looks_like(describe_arch(state))
    # num_batches_tracked only matters in training; some exporters drop it.
    state = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches ({'; '.join(wrong[:3])}{'; ...' if len(wrong) > 3 else ''})")
        if missing:
            parts.append(f"{len(missing)} missing keys ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
        if unexpected:
            parts.append(
                f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})"
            )
        raise CheckpointError(f"checkpoint does not fit {name}: {', '.join(parts)}{looks_like}")
    return state


@dataclass(frozen=True)
class Loaded:
    """What load_into found: the key layout and the wrapper entry it took (None: a bare state dict)."""

    key_format: str
    entry: str | None


def load_into(model: torch.nn.Module, path: str | Path, name: str, ema: bool | None = None) -> Loaded:
    """Load checkpoint `path` into `model` strictly (`ema` as in `unwrap`)."""
    state, entry = unwrap(read_checkpoint(path), ema)
    state, fmt = to_timm_keys(strip_prefix(state))
    state = check_against(state, model, name)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"checkpoint {path}: non-finite values in {', '.join(bad[:3])}")
    model.load_state_dict(state, strict=True)
    log.info("loaded %s (%s keys%s) into %s", path, fmt, f", entry {entry!r}" if entry else "", name)
    return Loaded(fmt, entry)
