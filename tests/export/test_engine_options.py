"""The table of engine options itself: one entry per field, and what is derived from it
(the command line, the sidecar fields, the one place a missing TensorRT name fails).
The option rules and the trtexec line are pinned in test_profiles.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from export.__main__ import build_parser
from export.engine_options import OPTIONS, EngineOptions, options_from_args, sidecar_fields
from export.shapes import Profile
from runtime.core.engine_meta import EngineMeta
from runtime.core.errors import UserError
from tests.fakes import fake_tensorrt


def test_every_option_has_exactly_one_entry() -> None:
    assert sorted(o.name for o in OPTIONS) == sorted(f.name for f in dataclasses.fields(EngineOptions))
    assert len({o.flag for o in OPTIONS}) == len(OPTIONS)
    meta_fields = {f.name for f in dataclasses.fields(EngineMeta)}
    for option in OPTIONS:
        assert option.sidecar is not None, f"{option.flag} is never recorded in the sidecar"
        assert option.sidecar.startswith("options.") or option.sidecar in meta_fields, option.sidecar


def _parse(*argv: str) -> EngineOptions:
    return options_from_args(build_parser().parse_args(["engine", "model.onnx", *argv]))


def test_command_line_defaults_are_the_dataclass_defaults() -> None:
    assert _parse() == EngineOptions(profiles=[])


def test_every_flag_reaches_its_field() -> None:
    options = _parse(
        *("--shapes", "1x3x32x32:2x3x32x32:4x3x32x32", "--shapes", "1x3x64x64:1x3x64x64:1x3x64x64"),
        *("--flavour", "tensorrt-rtx", "--compute-capability", "8.6,12.0", "--workspace", "64", "--opt-level", "5"),
        *("--timing-cache", "t.cache", "--hardware-compatibility", "ampere_plus", "--version-compatible"),
        *("--dla-core", "1", "--tf32"),
    )
    assert options == EngineOptions(
        profiles=[Profile.parse("1x3x32x32:2x3x32x32:4x3x32x32"), Profile.parse("1x3x64x64:1x3x64x64:1x3x64x64")],
        workspace_mib=64,
        opt_level=5,
        timing_cache=Path("t.cache"),
        hardware_compatibility="ampere_plus",
        version_compatible=True,
        dla_core=1,
        flavour="tensorrt-rtx",
        compute_capabilities=["8.6", "12.0"],
        tf32=True,
    )
    with pytest.raises(UserError, match="is not MAJOR.MINOR"):
        _parse("--compute-capability", "sm_86")


def test_sidecar_fields_fill_an_engine_meta() -> None:
    options = EngineOptions(profiles=[Profile.parse("1x3x32x32:2x3x32x32:4x3x32x32")], flavour="tensorrt", dla_core=0)
    fields = sidecar_fields(options, "8.7")
    meta = EngineMeta(
        "10.13", "GPU", "8.7", "fp16", source_onnx="m.onnx", source_onnx_sha256="", build_seconds=0, **fields
    )
    assert meta.profiles == [{"min": [1, 3, 32, 32], "opt": [2, 3, 32, 32], "max": [4, 3, 32, 32]}]
    assert meta.target_compute_capabilities == ["8.7"] and meta.dla_core == 0 and meta.tf32 is False
    assert meta.options == {"workspace_mib": None, "opt_level": 3, "timing_cache": None} == sidecar_fields(options, None)["options"]
    rtx = sidecar_fields(EngineOptions(profiles=[], flavour="tensorrt-rtx"), None)
    assert rtx["target_compute_capabilities"] == ["8.0", "8.6", "8.9", "12.0", "12.1"]  # RTX's default set


def test_an_option_the_installed_library_lacks_fails_in_one_line(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trt, _ = fake_tensorrt.install(monkeypatch, version="10.0.1")
    trt.HardwareCompatibilityLevel = fake_tensorrt._enum("NONE", "AMPERE_PLUS")  # before 10.x added the other
    from export.engine import build_engine, default_options

    model = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m") / "model.onnx"
    options = default_options(model)
    options.hardware_compatibility = "same_compute_capability"
    with pytest.raises(UserError) as err:
        build_engine(model, options)
    assert str(err.value) == (
        "--hardware-compatibility: tensorrt 10.0.1 has no HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY, "
        "so it cannot apply this option"
    )
    assert not list(model.parent.glob("*.engine*"))
    options.hardware_compatibility = "ampere_plus"
    build_engine(model, options)
    assert trt.calls["config"].hardware_compatibility_level is trt.HardwareCompatibilityLevel.AMPERE_PLUS
