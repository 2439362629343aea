"""--decode on the command line, on a machine without the GPU path (this one, in CI)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from runtime.app.images.gpu import missing as gpu_missing
from tests.conftest import run_cli


def _predictions(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.skipif(not gpu_missing("tensorrt"), reason="the GPU path can run here")
def test_decode_auto_on_an_engine_falls_back_to_pillow_with_the_reason(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An engine (the test double's) is what --decode auto would decode on the GPU for; here
    the GPU path cannot run, so auto decodes with Pillow, says why, and predicts exactly
    what --decode cpu does. (On an ONNX model both would take the same path by design.)"""
    from runtime.app.cli.main import main
    from runtime.app.images.datasets import load_digits
    from tests.fakes import fake_tensorrt

    fake_tensorrt.install(monkeypatch)
    d = fake_tensorrt.copy_model_dir(digits_export, tmp_path / "m")
    engine = fake_tensorrt.write_engine(d / "model.engine", [[[1, 3, 32, 32], [4, 3, 32, 32], [8, 3, 32, 32]]], d / "model.onnx")
    test = load_digits("test")
    for i in range(5):
        test.image(i).save(tmp_path / f"{i}.png")
    outs = {}
    for mode in ("cpu", "auto"):
        out = tmp_path / f"{mode}.jsonl"
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="runtime.app.images.gpu"):
            code = main(["classify", str(engine), str(tmp_path / "*.png"), "--decode", mode, "--workers", "0", "--output", str(out)])
        assert code == 0
        outs[mode] = _predictions(out)
        if mode == "auto":
            assert "decoding on the CPU with Pillow (--decode auto)" in caplog.text
            assert gpu_missing("tensorrt") in caplog.text  # the reason, as missing() gives it
    assert outs["auto"] == outs["cpu"] and len(outs["cpu"]) == 5


def test_decode_gpu_without_the_gpu_path_is_one_line_exit_2(digits_export: Path, tmp_path: Path) -> None:
    from runtime.app.images.datasets import load_digits

    load_digits("test").image(0).save(tmp_path / "0.png")
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(tmp_path), "--decode", "gpu")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --decode gpu: ") and "onnxruntime" in lines[0]


@pytest.mark.parametrize("backend", ["tensorrt", "tensorrt-rtx"])
def test_either_tensorrt_flavour_may_take_the_gpu_path(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An activated runner reports its flavour ("tensorrt-rtx" for RTX engines), which a Ray
    actor passes on: it is a GPU backend like "tensorrt", not a CPU one."""
    from runtime.app.images import gpu

    monkeypatch.setattr(gpu, "cupy", lambda: (_ for _ in ()).throw(gpu.UserError("CuPy is not installed")))
    assert gpu.missing(backend) == "CuPy is not installed"
    assert "runs on the CPU" in str(gpu.missing("onnxruntime"))


def _depth(text: str) -> int:
    depth = deepest = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        deepest = max(deepest, depth)
    return deepest


def test_decode_auto_says_why_without_nested_parentheses(caplog: pytest.LogCaptureFixture) -> None:
    from runtime.app.images import gpu
    from runtime.app.ray.decoding import decode_in_actors

    with caplog.at_level("INFO"):
        assert gpu.choose("auto", "onnxruntime") == "cpu"
        assert decode_in_actors("auto", "onnxruntime", 0.0) is False
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decoding")]
    assert len(lines) == 2 and all("--decode auto" in line and "runs on the CPU" in line for line in lines), lines
    assert all(_depth(line) <= 1 for line in lines), lines
