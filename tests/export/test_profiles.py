from __future__ import annotations

from pathlib import Path

import pytest

from export.engine_options import (
    EngineOptions,
    parse_compute_capabilities,
    trtexec_command,
    validate,
    validate_flavour,
)
from export.shapes import Profile, default_profile
from runtime.core.errors import UserError
from runtime.core.manifest import InputSpec

NHWC = InputSpec("uint8")


def test_parse_and_validate_a_profile() -> None:
    p = Profile.parse("1x3x224x224:32x3x224x224:64x3x448x448")
    assert (p.min, p.opt, p.max) == ((1, 3, 224, 224), (32, 3, 224, 224), (64, 3, 448, 448))
    p.validate(patch_size=7)
    assert not p.is_static and Profile.parse("8x3x224x224:8x3x224x224:8x3x224x224").is_static


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("1x3x224x224:32x3x224x224", "expected MIN:OPT:MAX"),
        ("1x3x224:32x3x224x224:64x3x224x224", "is not four sizes: NxCxHxW"),
        ("1x3x224x224:64x3x224x224:32x3x224x224", "batch must satisfy min <= opt <= max"),
        ("1x3x448x224:1x3x224x224:1x3x448x224", "height must satisfy"),
        ("1x1x224x224:8x1x224x224:8x1x224x224", "channels must be 3"),
        ("1x3x4x4:1x3x224x224:8x3x224x224", "at least the patch size 7"),
        ("0x3x224x224:1x3x224x224:8x3x224x224", "batch must be at least 1"),
    ],
)
def test_bad_profiles_are_refused_before_any_build(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        Profile.parse(spec).validate(patch_size=7)


def test_uint8_models_take_nhwc_profiles() -> None:
    assert default_profile(224, NHWC) == Profile.parse("1x224x224x3:32x224x224x3:64x224x224x3")
    Profile.parse("1x224x224x3:8x224x320x3:8x448x448x3").validate(7, NHWC)
    with pytest.raises(UserError, match="channels must be 3 .* got 224 on axis 3 .* uint8 NHWC"):
        Profile.parse("1x3x224x224:8x3x224x224:8x3x224x224").validate(7, NHWC)
    with pytest.raises(UserError, match=r"height and width \(NHWC\) must be at least the patch size 7"):
        Profile.parse("1x4x224x3:8x224x224x3:8x224x224x3").validate(7, NHWC)
    with pytest.raises(UserError, match="width must satisfy"):
        Profile.parse("1x224x448x3:8x224x224x3:8x224x448x3").validate(7, NHWC)


def test_flavour_rules() -> None:
    rtx = EngineOptions(profiles=[], compute_capabilities=["8.6", "12.0", "7.5"])
    validate_flavour(rtx, "tensorrt-rtx")
    with pytest.raises(UserError, match="tensorrt does not support --compute-capability"):
        validate_flavour(rtx, "tensorrt")
    with pytest.raises(UserError, match=r"--compute-capability 8\.7: tensorrt-rtx targets only .*no Jetson"):
        validate_flavour(EngineOptions(profiles=[], compute_capabilities=["8.7"]), "tensorrt-rtx")
    validate_flavour(_opts(timing_cache=Path("c"), version_compatible=True, dla_core=0), "tensorrt")
    assert parse_compute_capabilities("8.6, 12.0") == ["8.6", "12.0"]
    with pytest.raises(UserError, match="is not MAJOR.MINOR"):
        parse_compute_capabilities("sm_86")


def _opts(**kw: object) -> EngineOptions:
    return EngineOptions(profiles=[Profile.parse("8x3x224x224:8x3x224x224:8x3x224x224")], **kw)  # type: ignore[arg-type]


def test_dla_rules() -> None:
    validate(_opts(dla_core=0), 7, "fp16", "relu")
    dynamic = EngineOptions(profiles=[Profile.parse("1x3x224x224:8x3x224x224:16x3x224x224")], dla_core=0)
    with pytest.raises(UserError, match="DLA needs static shapes"):
        validate(dynamic, 7, "int8", "relu")
    with pytest.raises(UserError, match="FP16 or INT8 only"):
        validate(_opts(dla_core=0), 7, "fp32", "relu")
    with pytest.raises(UserError, match="cannot be hardware- or version-compatible"):
        validate(_opts(dla_core=0, version_compatible=True), 7, "fp16", "relu")


def test_dla_warns_for_gelu(caplog: pytest.LogCaptureFixture) -> None:
    validate(_opts(dla_core=1), 7, "fp16", "gelu")
    assert "fall back to the GPU" in caplog.text and "convmixer_768_32" in caplog.text


def test_trtexec_line_has_no_precision_flags() -> None:
    opts = EngineOptions(
        profiles=[
            Profile.parse("1x3x224x224:32x3x224x224:64x3x224x224"),
            Profile.parse("1x3x448x448:4x3x448x448:8x3x448x448"),
        ],
        workspace_mib=1024,
        opt_level=5,
        timing_cache=Path("cache.bin"),
        hardware_compatibility="ampere_plus",
        version_compatible=True,
    )
    line = trtexec_command(Path("b/model.int8.onnx"), Path("b/model.int8.engine"), opts)
    assert line.startswith("trtexec --onnx=b/model.int8.onnx --saveEngine=b/model.int8.engine --stronglyTyped")
    assert line.count("--minShapes=images:") == 2 and "--maxShapes=images:8x3x448x448" in line
    for flag in (
        "--memPoolSize=workspace:1024",
        "--builderOptimizationLevel=5",
        "--timingCacheFile=cache.bin",
        "--hardwareCompatibilityLevel=ampere+",
        "--versionCompatible",
    ):
        assert flag in line
    assert not any(f in line for f in ("--fp16", "--int8", "--calib", "--best"))
    assert line.endswith("--noTF32")
    dla = trtexec_command(Path("model.fp16.onnx"), Path("model.fp16.engine"), _opts(dla_core=1))
    assert "--useDLACore=1 --allowGPUFallback" in dla
