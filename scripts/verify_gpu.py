"""Verify a GPU machine in one command (`make verify-gpu`): what CI cannot prove without one.

    PYTHON=python3 make verify-gpu            # or: python3 scripts/verify_gpu.py [--engine E]

Runs offline with the Python and packages already installed (nothing is pip-installed):

  1. the machine: GPUs, driver, versions of every package the GPU path uses;
  2. NVRTC compiles kernels.cu for this GPU's architecture (registers, spills);
  3. the `gpu` and `trt` tests (none skipped), then the GPU kernel tests under
     compute-sanitizer memcheck and racecheck where compute-sanitizer is installed;
  4. `python -m runtime classify --decode gpu` end to end into --engine, or, without one,
     benchmarks/gpu_pipeline.py's classify row with its stand-in engine (labelled so);
  5. benchmarks/gpu_pipeline.py (its table goes into the report);
  6. where two GPUs are present, the kernel tests and the benchmark on device 1.

It writes ONE report (--report, default build/verify-gpu.md): GPU, driver, versions,
pass/fail per step with its output's tail, and the benchmark table. Exit 0 when every step
passed, 1 when one failed, 2 when this machine cannot run it (no GPU, a package missing:
said in one line, with how to carry the package over as a wheel).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.core.atomic import atomic_path  # noqa: E402

# import name -> the distribution that provides it (what to carry over as a wheel).
REQUIRED = {
    "cupy": "cupy-cuda13x",
    "nvidia.nvimgcodec": "nvidia-nvimgcodec-cu13",
    "cuda.bindings": "cuda-python",
    "pytest": "pytest",
    "PIL": "pillow",
}
REPORTED = [
    "numpy", "pillow", "cupy-cuda13x", "nvidia-nvimgcodec-cu13", "nvidia-nvjpeg", "nvidia-cuda-nvrtc",
    "nvidia-cuda-nvrtc-cu12", "nvidia-cuda-runtime", "cuda-python", "cuda-bindings", "tensorrt", "tensorrt-rtx-cu12",
    "onnxruntime", "onnxruntime-gpu", "pytest",
]  # fmt: skip
STEP_SECONDS = 300  # per step; the whole run aims at under 8 minutes on an H100/H200


@dataclass
class Step:
    name: str
    status: str  # "pass", "FAIL", "skip"
    detail: str
    seconds: float = 0.0


def gpus() -> list[str]:
    """`name, driver, memory` of each GPU nvidia-smi lists; [] without a GPU or a driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = [smi, "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"]
    done = subprocess.run(query, capture_output=True, text=True, timeout=60)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def missing_package() -> str | None:
    """One line naming the first required package that is not importable, and how to carry it."""
    for module, dist in REQUIRED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            py = f"{sys.version_info.major}.{sys.version_info.minor}"
            return (
                f"{dist} is not installed (import {module}); on a machine with network run `pip download {dist} "
                f"-d wheels --only-binary=:all: --python-version {py} --platform manylinux_2_28_{platform.machine()}`, "
                f"copy wheels/ here and `{sys.executable} -m pip install --no-index --find-links wheels {dist}`"
            )
    return None


def versions() -> list[str]:
    out = [f"python {platform.python_version()} ({sys.executable})"]
    for dist in REPORTED:
        try:
            out.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            pass
    return out


def run(name: str, command: list[str], env: dict[str, str] | None = None) -> Step:
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=STEP_SECONDS
        )
    except subprocess.TimeoutExpired:
        return Step(name, "FAIL", f"timed out after {STEP_SECONDS} s: {' '.join(command)}", STEP_SECONDS)
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
    status = "pass" if done.returncode == 0 else "FAIL"
    return Step(name, status, f"$ {' '.join(command)}\n{tail}", time.monotonic() - start)


def nvrtc_step(gpu_lines: list[str]) -> Step:
    """NVRTC 13 (the gpu-images extra's) compiles kernels.cu for each GPU's architecture."""
    from runtime.app.images.gpu.nvrtc import Nvrtc
    from runtime.app.images.gpu.resize import NVRTC_OPTIONS, kernel_source
    from runtime.core.errors import UserError

    start, lines = time.monotonic(), []
    try:
        compiler = Nvrtc(13)
        for cap in sorted({line.split(",")[-1].strip() for line in gpu_lines}):
            arch = int(cap.replace(".", ""))
            for k in compiler.compile(kernel_source(), arch, NVRTC_OPTIONS).kernels:
                lines.append(f"sm_{arch} {k.name}: {k.registers} registers, {k.spill_bytes} bytes spilled")
    except (UserError, OSError, ValueError) as exc:
        return Step("nvrtc: kernels.cu for this GPU", "FAIL", str(exc), time.monotonic() - start)
    return Step("nvrtc: kernels.cu for this GPU", "pass", "\n".join(lines), time.monotonic() - start)


def steps(args: argparse.Namespace, count: int) -> list[Step]:
    py = sys.executable
    kernel_tests = ["tests/runtime/test_gpu_kernel.py"]
    bench = [py, "benchmarks/gpu_pipeline.py", "--count", "512", "--seconds", "1"]
    out = [
        nvrtc_step(args.gpu_lines),
        run("gpu and trt tests", [py, "-m", "pytest", "-q", "-m", "gpu or trt"], {"CONVMIXER_REQUIRE_GPU": "1"}),
    ]
    sanitizer = shutil.which("compute-sanitizer")
    for tool in ("memcheck", "racecheck"):
        if sanitizer is None:
            out.append(Step(f"compute-sanitizer {tool}", "skip", "compute-sanitizer is not on PATH (CUDA toolkit)"))
        else:
            cmd = [sanitizer, "--tool", tool, "--error-exitcode", "1", py, "-m", "pytest", "-q", *kernel_tests]
            out.append(run(f"compute-sanitizer {tool}", cmd, {"CONVMIXER_REQUIRE_GPU": "1"}))
    if args.engine is not None:
        images = args.report.parent / "verify-gpu-images"
        made = run("synthetic JPEGs", [py, "scripts/bench_jpegs.py", str(images), "--count", "256"])
        if made.status != "pass":
            out.append(made)
        cmd = [py, "-m", "runtime", "classify", str(args.engine), str(images), "--decode", "gpu", "--batch", "64"]
        out.append(run("classify --decode gpu into the engine", [*cmd, "--output", str(images / "predictions.jsonl")]))
        bench += ["--engine", str(args.engine)]
    else:
        why = "no --engine: the benchmark's classify row below feeds its STAND-IN engine, not TensorRT"
        out.append(Step("classify --decode gpu", "skip", why))
    out.append(run("benchmarks/gpu_pipeline.py", bench))
    if count >= 2:  # the runner and the GPU pipeline on device 1, from their own threads
        out.append(run("device 1: benchmark", [*bench, "--device", "1"]))
        if args.engine is not None:
            cmd = [py, "-m", "runtime", "classify", str(args.engine), str(images), "--decode", "gpu", "--device", "1"]
            out.append(run("device 1: classify --decode gpu", cmd))
    else:
        out.append(Step("two GPUs", "skip", f"{count} GPU here"))
    return out


def report(gpu_lines: list[str], found: list[Step]) -> str:
    lines = ["# make verify-gpu", "", f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", f"- host: {platform.node()}"]
    lines += [f"- GPU {i}: {g}" for i, g in enumerate(gpu_lines)]
    lines += [f"- {v}" for v in versions()]
    lines += ["", "| step | result | seconds |", "|---|---|---|"]
    lines += [f"| {s.name} | {s.status} | {s.seconds:.0f} |" for s in found]
    for s in found:
        lines += ["", f"## {s.name}: {s.status}", "", "```", s.detail, "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--engine",
        type=Path,
        help="a TensorRT .engine (model.json beside it) for classify end to end (default: none, a labelled stand-in)",
    )
    parser.add_argument(
        "--report", type=Path, default=ROOT / "build" / "verify-gpu.md", help="the report file (default: build/verify-gpu.md)"
    )
    parser.add_argument(
        "--check", action="store_true", help="only say (in one line) why this machine cannot run it (default: off)"
    )
    args = parser.parse_args(argv)
    if args.engine is not None and not args.engine.is_file():
        print(f"error: --engine {args.engine}: no such file", file=sys.stderr)
        return 2
    gpu_lines = gpus()
    if not gpu_lines:
        print("error: verify-gpu needs an NVIDIA GPU and its driver, and finds none here (nvidia-smi)", file=sys.stderr)
        return 2
    why = missing_package()
    if why is not None:
        print(f"error: verify-gpu: {why}", file=sys.stderr)
        return 2
    if args.check:
        return 0
    args.gpu_lines = gpu_lines
    found = steps(args, len(gpu_lines))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.report) as tmp:
        tmp.write_text(report(gpu_lines, found))
    failed = [s.name for s in found if s.status == "FAIL"]
    print(f"verify-gpu: {len(found) - len(failed)} of {len(found)} steps passed or skipped; report {args.report}")
    if failed:
        print(f"error: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
