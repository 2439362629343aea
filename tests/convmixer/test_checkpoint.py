"""Every accepted checkpoint layout loads to identical logits; every bad one fails clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import convmixer
from convmixer import CheckpointError

NAME = "convmixer_256_8"
ARCH = {"dim": 24, "depth": 3}  # small stand-in with the variant's kernel/patch


def _reference() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = convmixer.create_model(NAME, **ARCH)
    # non-trivial BN statistics, so a mis-mapped BN key would change the logits
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        return model, x, model(x)


def to_official(state: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if k.startswith("stem."):
            out[k[len("stem.") :]] = v
        elif k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            out[f"{3 + int(i)}.{rest}"] = v
        elif k.startswith("head."):
            out[f"{5 + depth}.{k[len('head.') :]}"] = v
    return out


def to_mmpretrain(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        k = re.sub(r"^stem\.", "backbone.stem.", k)
        k = re.sub(r"^blocks\.", "backbone.stages.", k)
        k = re.sub(r"^head\.", "head.fc.", k)
        out[k] = v
    return out


LAYOUTS = {
    "timm": lambda s: s,
    "official": lambda s: to_official(s, ARCH["depth"]),
    "mmpretrain": to_mmpretrain,
    "dataparallel": lambda s: {f"module.{k}": v for k, v in s.items()},
    "wrapped_state_dict": lambda s: {"state_dict": s, "epoch": 3},
    "wrapped_model": lambda s: {"model": to_official(s, ARCH["depth"]), "optimizer": {}},
    "wrapped_ema": lambda s: {"state_dict_ema": {f"module.{k}": v for k, v in s.items()}},
    "no_num_batches_tracked": lambda s: {k: v for k, v in s.items() if "num_batches_tracked" not in k},
}


# safetensors files hold a flat tensor dict, never a training wrapper
CASES = [
    (layout, suffix)
    for layout in sorted(LAYOUTS)
    for suffix in (".pth", ".pth.tar", ".bin", ".safetensors")
    if not (suffix == ".safetensors" and layout.startswith("wrapped"))
]


@pytest.mark.parametrize(("layout", "suffix"), CASES)
def test_layouts_round_trip_to_identical_logits(tmp_path: Path, layout: str, suffix: str) -> None:
    model, x, ref = _reference()
    obj = LAYOUTS[layout](model.state_dict())
    path = tmp_path / f"ckpt{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    else:
        torch.save(obj, path)
    loaded = convmixer.create_model(NAME, checkpoint=path, **ARCH)
    with torch.inference_mode():
        assert torch.equal(loaded(x), ref)


def _save(tmp_path: Path, obj: object, name: str = "bad.pth") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_checkpoint_of_another_variant_names_what_it_looks_like(tmp_path: Path) -> None:
    other = convmixer.create_model("convmixer_256_8")  # full 256/8
    path = _save(tmp_path, other.state_dict())
    with pytest.raises(CheckpointError, match=r"does not fit convmixer_digits.*looks like convmixer_256_8"):
        convmixer.create_model("convmixer_digits", checkpoint=path)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    model, _, _ = _reference()
    state = model.state_dict()
    del state["blocks.1.1.weight"]
    with pytest.raises(CheckpointError, match=r"1 missing keys \(blocks\.1\.1\.weight\)"):
        convmixer.create_model(NAME, checkpoint=_save(tmp_path, state), **ARCH)


def test_unexpected_keys_are_named(tmp_path: Path) -> None:
    model, _, _ = _reference()
    state = {**model.state_dict(), "head.extra": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"unexpected keys \(head\.extra\)"):
        convmixer.create_model(NAME, checkpoint=_save(tmp_path, state), **ARCH)


def test_wrong_shapes_are_named_with_both_shapes(tmp_path: Path) -> None:
    model, _, _ = _reference()
    state = model.state_dict()
    state["head.weight"] = torch.zeros(5, ARCH["dim"])
    state["head.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match=r"head\.bias: checkpoint \(5,\) vs model \(10,\)"):
        convmixer.create_model(NAME, checkpoint=_save(tmp_path, state), **ARCH)


def test_truncated_files_fail_clearly(tmp_path: Path) -> None:
    model, _, _ = _reference()
    good = _save(tmp_path, model.state_dict(), "good.pth")
    for name in ("cut.pth", "cut.safetensors"):
        src = good if name.endswith(".pth") else tmp_path / "good.safetensors"
        if name.endswith(".safetensors"):
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(src))
        data = src.read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match=r"truncated or corrupt|not a readable safetensors"):
            convmixer.create_model(NAME, checkpoint=tmp_path / name, **ARCH)


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_pickles_that_need_code_are_refused_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _save(tmp_path, {"state_dict": {"x": Payload()}})
    with pytest.raises(CheckpointError, match="refused, it needs arbitrary code"):
        convmixer.create_model(NAME, checkpoint=path, **ARCH)
    assert "this must never run" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "absent.pth", "no such file"),
        (lambda p: (p / "w.ckpt").write_bytes(b"x") and p / "w.ckpt", "unknown file type"),
        (lambda p: _save(p, {"fc.weight": torch.zeros(2, 2)}), "not a ConvMixer's"),
        (lambda p: _save(p, {"epoch": 3}), "holds no state dict"),
    ],
)
def test_other_bad_files(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CheckpointError, match=message):
        convmixer.create_model(NAME, checkpoint=setup(tmp_path), **ARCH)


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    model, _, _ = _reference()
    state = model.state_dict()
    state["head.weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="non-finite values in head.weight"):
        convmixer.create_model(NAME, checkpoint=_save(tmp_path, state), **ARCH)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"epoch 3, loss 0.12\nthis is a training log, not weights\n", r"not a PyTorch checkpoint \(looks like text\)"),
        (bytes(range(7, 256)) * 20, r"not a PyTorch checkpoint \(unrecognised binary data"),
        (b"", r"not a PyTorch checkpoint \(the file is empty\)"),
        (b"\x80\x02" + bytes(range(256)) * 4, r"corrupt pickle"),
    ],
)
def test_files_that_are_not_checkpoints_are_told_from_code_pickles(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        convmixer.create_model(NAME, checkpoint=path, **ARCH)
    assert "arbitrary code" not in str(info.value)


def _two_sets() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    model, x, _ = _reference()
    raw = model.state_dict()
    ema = {k: (v * 0.5 if v.is_floating_point() and "running_var" not in k else v) for k, v in raw.items()}
    return raw, ema, x


@pytest.mark.parametrize(("ema", "expect"), [(None, "ema"), (True, "ema"), (False, "raw")])
def test_ema_weights_are_preferred_and_the_choice_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ema: bool | None, expect: str
) -> None:
    raw, ema_state, x = _two_sets()
    path = _save(tmp_path, {"state_dict": raw, "state_dict_ema": ema_state, "epoch": 300})
    with caplog.at_level("INFO", logger="convmixer.checkpoint"):
        loaded = convmixer.create_model(NAME, checkpoint=path, ema=ema, **ARCH)
    want = ema_state if expect == "ema" else raw
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in want.items())
    entry = "state_dict_ema" if expect == "ema" else "state_dict"
    assert f"using the checkpoint's '{entry}' entry ({'EMA' if expect == 'ema' else 'raw'} weights)" in caplog.text


def test_asking_for_weights_the_checkpoint_lacks_fails(tmp_path: Path) -> None:
    raw, ema_state, _ = _two_sets()
    with pytest.raises(CheckpointError, match="no EMA weights"):
        convmixer.create_model(NAME, checkpoint=_save(tmp_path, {"state_dict": raw}), ema=True, **ARCH)
    with pytest.raises(CheckpointError, match="only EMA weights"):
        convmixer.create_model(NAME, checkpoint=_save(tmp_path, {"state_dict_ema": ema_state}), ema=False, **ARCH)
