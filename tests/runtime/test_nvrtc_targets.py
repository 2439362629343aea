"""Every GPU architecture --decode gpu claims compiles the packaged kernels.cu with NVRTC
from pip (no GPU needed): Turing to Blackwell and Orin with CUDA 13's NVRTC, Jetson Xavier
(sm_72) with CUDA 12's. Any error fails. Registers and spills are printed (-s shows them)."""

from __future__ import annotations

import pytest

from runtime.app.images.gpu import nvrtc
from runtime.app.images.gpu.resize import NVRTC_OPTIONS, kernel_source


def _compiler(major: int) -> nvrtc.Nvrtc:
    if nvrtc.library_path(major) is None:  # the dev extra installs both
        pytest.fail(f"NVRTC {major} is not installed: pip install {nvrtc.WHEELS[major]} (in the dev extra)")
    return nvrtc.Nvrtc(major)


@pytest.mark.parametrize("arch", nvrtc.CLAIMED_ARCHS)
def test_cuda13_nvrtc_compiles_every_claimed_architecture(arch: int) -> None:
    compiler = _compiler(13)
    if arch == 121 and arch not in compiler.supported_archs():
        pytest.skip(f"NVRTC {compiler.version} does not know sm_121")
    out = compiler.compile(kernel_source(), arch, NVRTC_OPTIONS)
    assert out.cubin_bytes > 0
    assert sorted(k.name for k in out.kernels) == ["normalise", "resample_pass"]
    for k in out.kernels:
        print(f"sm_{arch} {k.name}: {k.registers} registers, {k.spill_bytes} bytes spilled")
        assert k.registers > 0 and k.spill_bytes == 0


def test_cuda12_nvrtc_compiles_for_xavier() -> None:
    out = _compiler(12).compile(kernel_source(), nvrtc.XAVIER_ARCH, NVRTC_OPTIONS)
    assert out.cubin_bytes > 0 and {k.name for k in out.kernels} == {"normalise", "resample_pass"}


def test_cuda13_nvrtc_refuses_xavier_so_xavier_needs_the_cuda12_set() -> None:
    assert nvrtc.XAVIER_ARCH not in _compiler(13).supported_archs()


def test_a_compile_error_is_an_error_with_nvrtc_log() -> None:
    with pytest.raises(nvrtc.UserError, match="could not compile for sm_90"):
        _compiler(13).compile(kernel_source().replace("int acc", "int_t acc"), 90, NVRTC_OPTIONS)
