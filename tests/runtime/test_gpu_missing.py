"""images.gpu.missing() also asks whether the resize kernel compiles (once per device), so
`--decode auto` falls back with the reason and `--decode gpu` refuses in one line when
NVRTC or the CUDA headers are missing (a driver-only machine without them). CuPy here is
the host stand-in (tests/kernel_host), which really compiles the kernel, with g++."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from runtime.app.images import gpu
from runtime.core.errors import UserError
from tests.kernel_host import host_cupy


@pytest.fixture
def cp(monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("nvidia.nvimgcodec")
    if host_cupy.compiler() is None:
        pytest.skip("no g++ to build the kernels for the host")
    stand_in = host_cupy.module()
    monkeypatch.setattr(gpu, "cupy", lambda: stand_in)
    gpu._kernel_fails.cache_clear()
    yield stand_in
    gpu._kernel_fails.cache_clear()


def test_the_kernel_is_compiled_once_per_device(cp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    class Counting(host_cupy.RawModule):
        def __init__(self, code: str, options: tuple[str, ...] = ()) -> None:
            built.append(code)
            super().__init__(code, options)

    monkeypatch.setattr(cp, "RawModule", Counting)
    assert gpu.missing("tensorrt") is None and gpu.missing("tensorrt") is None
    assert len(built) == 1 and "resample_pass" in built[0]
    assert gpu.missing("tensorrt", device=False) is None and len(built) == 1  # a Ray driver compiles nothing


def test_no_nvrtc_means_auto_falls_back_with_the_reason_and_gpu_refuses(
    cp: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class NoNvrtc:
        def __init__(self, code: str, options: tuple[str, ...] = ()) -> None:
            raise RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open shared object")

    monkeypatch.setattr(cp, "RawModule", NoNvrtc)
    why = gpu.missing("tensorrt")
    assert why is not None and "does not compile" in why and "libnvrtc.so.13" in why and "gpu-images" in why
    with caplog.at_level(logging.INFO, logger="runtime"):
        assert gpu.choose("auto", "tensorrt") == "cpu"
    assert "libnvrtc.so.13" in caplog.text
    with pytest.raises(UserError) as err:
        gpu.choose("gpu", "tensorrt")
    assert str(err.value).startswith("--decode gpu: the resize kernel does not compile") and "\n" not in str(err.value)
