from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from runtime import TOLERANCES, compare
from runtime.core.errors import UserError
from tests.conftest import run_cli


def test_identical_logits_pass_every_precision() -> None:
    ref = np.random.default_rng(0).standard_normal((6, 10))
    for precision in TOLERANCES:
        result = compare(ref, ref.copy(), precision)
        assert result and result.max_abs == 0 and result.top1_agreement == 1.0


def test_fp32_catches_small_drift_fp16_allows_it() -> None:
    ref = np.random.default_rng(0).standard_normal((6, 10)) * 5
    drift = ref + 0.02
    assert not compare(ref, drift, "fp32")
    assert compare(ref, drift, "fp16")


def test_near_ties_do_not_count_as_disagreement_but_decisive_swaps_do() -> None:
    ref = np.array([[3.0, 2.999, 0.0], [3.0, 0.0, 0.0]])
    swapped_tie = np.array([[2.999, 3.0, 0.0], [3.0, 0.0, 0.0]])
    assert compare(ref, swapped_tie, "fp16")
    wrong = np.array([[3.0, 2.999, 0.0], [0.0, 3.0, 0.0]])
    res = compare(ref, wrong, "int8")
    assert not res and any("top-1" in f for f in res.failures)


def test_shape_mismatch_and_unknown_precision() -> None:
    with pytest.raises(UserError, match="does not match"):
        compare(np.zeros((2, 10)), np.zeros((3, 10)), "fp32")
    with pytest.raises(UserError, match="unknown precision"):
        compare(np.zeros((2, 10)), np.zeros((2, 10)), "bf16")


def test_parity_cli_passes_and_catches_altered_weights(digits_export: Path, tmp_path: Path) -> None:
    ok = run_cli("runtime", "parity", str(digits_export / "model.onnx"), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["passed"] is True

    for name in ("model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    model = onnx.load(digits_export / "model.onnx")
    for init in model.graph.initializer:
        if init.name == "blocks.2.1.weight":  # one pointwise conv, nudged by 2%
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.02, init.name))
    onnx.save(model, tmp_path / "model.onnx")
    # model.json's recorded hash no longer matches: refused before any comparison ...
    refused = run_cli("runtime", "parity", str(tmp_path / "model.onnx"))
    assert refused.returncode == 2 and "records model.onnx as" in refused.stderr
    # ... and measured as it is against a golden file the caller vouches for
    bad = run_cli("runtime", "parity", str(tmp_path / "model.onnx"), "--golden", str(tmp_path / "golden.npz"))
    assert bad.returncode == 1 and "FAIL" in bad.stdout


def test_parity_of_another_checkpoint_fails_even_at_int8(
    digits_export: Path, tiny_random_export: Path, tmp_path: Path
) -> None:
    # a different model's golden file: the logits disagree wholesale
    shutil.copy(digits_export / "model.onnx", tmp_path / "model.int8.onnx")
    shutil.copy(digits_export / "model.json", tmp_path / "model.json")
    other = np.load(digits_export / "golden.npz")
    rng = np.random.default_rng(5)
    np.savez(
        tmp_path / "other.npz",
        input_0=other["input_0"],
        logits_0=rng.standard_normal(other["logits_0"].shape).astype(np.float32) * 5,
    )
    res = run_cli("runtime", "parity", str(tmp_path / "model.int8.onnx"), "--golden", str(tmp_path / "other.npz"))
    assert res.returncode == 1 and "cosine" in res.stdout


def test_parity_cli_missing_golden_is_one_line(tmp_path: Path, digits_export: Path) -> None:
    shutil.copy(digits_export / "model.onnx", tmp_path / "model.onnx")
    shutil.copy(digits_export / "model.json", tmp_path / "model.json")
    res = run_cli("runtime", "parity", str(tmp_path / "model.onnx"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "golden.npz: no such file" in res.stderr


def test_parity_of_a_missing_model_names_the_model(digits_export: Path, tmp_path: Path) -> None:
    from runtime.core.golden import run_parity

    shutil.copy(digits_export / "model.json", tmp_path / "model.json")  # no golden.npz either
    with pytest.raises(UserError, match=r"missing\.onnx: no such file"):
        run_parity(tmp_path / "missing.onnx")
