"""On a machine without an NVIDIA driver, engine commands say once that a CUDA GPU is
needed, and do not advise installing cuda-python (it cannot help there). With a driver but
no cuda-python, they still name cuda-python."""

from __future__ import annotations

import sys
import types

import pytest

from runtime.core.backends import cuda
from runtime.core.backends.tensorrt.runner import TensorRTRunner
from runtime.core.errors import UserError


@pytest.fixture
def no_cuda_python(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


@pytest.mark.usefixtures("no_cuda_python")
@pytest.mark.parametrize("flavour", ["tensorrt", "tensorrt-rtx"])
def test_an_engine_without_a_gpu_needs_a_gpu_not_cuda_python(flavour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda, "driver_present", lambda: False)
    with pytest.raises(UserError) as caught:
        TensorRTRunner("model.fp16.engine")._cuda_for(flavour)
    message = str(caught.value)
    assert "cuda-python" not in message and "install" not in message
    assert message.count("GPU is needed") == 1 and "runs only on an NVIDIA GPU" in message


@pytest.mark.usefixtures("no_cuda_python")
def test_with_a_driver_the_missing_cuda_python_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda, "driver_present", lambda: True)
    with pytest.raises(UserError, match="install cuda-python"):
        TensorRTRunner("model.fp16.engine")._cuda_for("tensorrt")


def test_export_check_without_a_gpu_gives_no_install_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    from export.trt import host

    monkeypatch.setattr(host, "import_flavour", lambda flavour: types.SimpleNamespace(__version__="1.0"))
    monkeypatch.setattr(host, "probe_gpu", lambda: (None, cuda.NO_GPU))
    for flavour in ("tensorrt", "tensorrt-rtx"):
        line = host.flavour_status(flavour).line()
        assert "cuda-python" not in line and "this machine has none" in line, line

