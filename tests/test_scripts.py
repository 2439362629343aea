"""Every file in scripts/ and benchmarks/ runs: `--help` exits 0 and writes nothing, and
each has a tiny CPU run (or says here why it has none), so no script rots unnoticed.

Scripts are found by globbing, so a new one is covered by the `--help` test at once, and
`test_every_script_has_a_tiny_run_or_a_reason` fails until it is given one of the two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT

SCRIPTS = sorted([*(ROOT / "scripts").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
# Scripts whose tiny CPU run is elsewhere or impossible, and why. Every other script has a
# test below named test_<script name>_tiny_run.
NO_TINY_RUN_HERE = {
    "engine_summary": "reads built engines; `make engine` runs it",
    "gpu_baselines": "needs a CUDA GPU; test_gpu_only_scripts_say_so_in_one_line runs it without one",
    "gpu_pipeline": "its --cpu-backend run is tests/runtime/test_gpu_pipeline_bench.py",
    "ray_vs_local": "starts Ray clusters (a minute on 2 cores); tests/runtime/test_ray_classify.py compares the two",
    "torch_eager": "run on the digits export by tests/runtime/test_bench.py",
    "verify_gpu": "needs a GPU; tests/scripts/test_verify_gpu.py runs it without one and stubs its steps",
}


def run_script(
    script: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python SCRIPT ARGS...` from `cwd`, as a user would; a hang fails on the timeout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING", **(env or {})}
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _id(script: Path) -> str:
    return f"{script.parent.name}/{script.name}"


def test_scripts_are_found() -> None:
    names = {s.stem for s in SCRIPTS}
    assert {"digit_samples", "bench_jpegs", "runtime_overhead", "host_pipeline", "gpu_baselines"} <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_help_exits_0_prints_usage_and_writes_nothing(script: Path, tmp_path: Path) -> None:
    res = run_script(script, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: ") and "Traceback" not in res.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_every_script_has_a_tiny_run_or_a_reason() -> None:
    tested = {name.removeprefix("test_").removesuffix("_tiny_run") for name in globals() if name.endswith("_tiny_run")}
    missing = sorted(s.stem for s in SCRIPTS if s.stem not in tested and s.stem not in NO_TINY_RUN_HERE)
    assert missing == [], "add a test_<name>_tiny_run below, or a reason to NO_TINY_RUN_HERE"


def test_digit_samples_tiny_run(tmp_path: Path) -> None:
    from runtime.app.images.datasets import load_digits

    res = run_script(ROOT / "scripts" / "digit_samples.py", "out", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    labels = load_digits("test").labels
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"test{i:03d}_true{labels[i]}.png" for i in (0, 1)]
    with Image.open(tmp_path / "out" / "test000_true0.png") as img:
        assert img.size == (8, 8)


@pytest.mark.parametrize("args", [[], ["out", "0"], ["out", "two"]], ids=["no-args", "zero", "not-a-number"])
def test_digit_samples_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path, args: list[str]) -> None:
    res = run_script(ROOT / "scripts" / "digit_samples.py", *args, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith(("error: ", "digit_samples.py: error: "))
    assert sorted(tmp_path.iterdir()) == []


def test_bench_jpegs_tiny_run(tmp_path: Path) -> None:
    res = run_script(ROOT / "scripts" / "bench_jpegs.py", "jpegs", "--count", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    files = sorted((tmp_path / "jpegs").iterdir())
    assert [f.name for f in files] == ["bench_0000.jpg", "bench_0001.jpg"]
    with Image.open(files[0]) as img:
        assert (img.format, img.size, img.mode) == ("JPEG", (500, 375), "RGB")


def test_runtime_overhead_tiny_run(digits_export: Path, tmp_path: Path) -> None:
    model = str(digits_export / "model.onnx")
    script = ROOT / "benchmarks" / "runtime_overhead.py"
    res = run_script(script, model, "--batch", "1,2", "--rounds", "1", "--seconds", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[3:]]
    assert [r[0] for r in rows] == ["1", "2"] and all(len(r) == 4 and r[3].endswith("%") for r in rows)
    bad = run_script(script, model, "--batch", "0,x", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --batch 0,x") and bad.stderr.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == []


def test_host_pipeline_tiny_run(digits_export: Path, digit_images: Path, tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "host_pipeline.py"
    args = [str(digits_export / "model.onnx"), "--images", str(digit_images), "--workers", "0", "--batch", "4"]
    res = run_script(script, *args, "--rounds", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"{len(list(digit_images.iterdir()))} images")
    (row,) = [line.split() for line in lines[3:]]
    assert row[0] == "0" and float(row[1]) > 0 and float(row[2]) > 0


def test_train_digits_tiny_run(tmp_path: Path) -> None:
    res = run_script(
        ROOT / "scripts" / "train_digits.py", "--epochs", "1", "--limit", "64", "--out", "w.safetensors", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert "held-out top-1" in res.stderr
    from safetensors import safe_open

    with safe_open(str(tmp_path / "w.safetensors"), "np") as f:
        assert f.metadata()["model"] == "convmixer_digits" and len(list(f.keys())) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_gpu_only_scripts_say_so_in_one_line(tmp_path: Path) -> None:
    # No GPU visible, as on a CPU-only machine, also where there is one.
    res = run_script(
        ROOT / "benchmarks" / "gpu_baselines.py", "--batch", "1", cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""}
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("error: ") and "needs a CUDA GPU" in res.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_import_cost_tiny_run(tmp_path: Path) -> None:
    res = run_script(ROOT / "scripts" / "import_cost.py", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert "lines in" in last and "none of argparse, tqdm, PIL loaded" in last
    assert sorted(tmp_path.iterdir()) == []
def test_cpu_precisions_tiny_run(digits_int8: Path, tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "cpu_precisions.py"
    args = [str(digits_int8 / "model.onnx"), "--batch", "1,2", "--rounds", "1", "--iters", "1", "--seconds", "0"]
    res = run_script(script, *args, "--threads", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "1 threads" in lines[0] and lines[1].startswith("CPU: ")
    rows = [line.split(maxsplit=1) for line in lines[4:]]
    graphs = ["FP32", "FP16", "INT8 (TensorRT graph)", "INT8 (CPU graph)"]
    assert [r[0] for r in rows] == ["1"] * 4 + ["2"] * 4
    assert [r[1].rsplit(maxsplit=2)[0] for r in rows] == graphs * 2
    assert all(float(r[1].split()[-2]) > 0 for r in rows) and rows[0][1].split()[-1] == "1.00"
    bad = run_script(script, str(tmp_path / "missing.onnx"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("model name\t: Some x86\nflags\t\t: fpu avx2 avx512f avx512_vnni amx_tile amx_int8\n", "AVX-512 VNNI, AMX-INT8"),
        ("processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd40\n", "ARM dot-product (asimddp), ARM i8mm"),
    ],
    ids=["x86-amx", "arm64"],
)
def test_cpu_precisions_names_the_instruction_sets(cpuinfo: str, expected: str, tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("cpu_precisions", ROOT / "benchmarks" / "cpu_precisions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    assert module.cpu_description(tmp_path / "cpuinfo").endswith(expected)
