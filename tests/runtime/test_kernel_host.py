"""The CUDA kernels (runtime/app/images/gpu/kernels.cu), built for the host by g++ behind a
small header and launched through DeviceResizer's own host code with a numpy stand-in for
CuPy (tests/kernel_host), equal the numpy reference and Pillow bit for bit. This proves
the kernels' arithmetic and indexing, and the launch code, on the CPU; not the GPU's own
compiler or hardware (tests/runtime/test_gpu_kernel.py and `make verify-gpu` do that)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import runtime.app.images.gpu.resize as resize
from convmixer.registry import VARIANTS
from runtime.core.preprocess import Preprocessing
from tests.kernel_host import host_cupy
from tests.kernel_host.sweep import BICUBIC, BILINEAR, mismatches

if host_cupy.compiler() is None:
    pytest.skip("no g++ to build the kernels for the host", allow_module_level=True)

REGISTRY = {
    name: Preprocessing(c.input_size, c.crop_pct, c.interpolation, c.mean, c.std)
    for name, c in ((n, v.preprocessing) for n, v in VARIANTS.items())
}
TINY = [(1, 1), (1, 2), (2, 1), (3, 5), (7, 4)]
EXTREME = [(1, 40), (40, 1), (3, 700), (700, 3)]


def around(side: int) -> list[tuple[int, int]]:
    """Sizes at and either side of `side`, both ways round."""
    return [(side + d, side + e) for d in (-1, 0, 1) for e in (-1, 0, 1)]


@pytest.fixture
def cp(monkeypatch: pytest.MonkeyPatch) -> object:
    stand_in = host_cupy.module()
    monkeypatch.setattr(resize, "cupy", lambda: stand_in)
    return stand_in


@pytest.mark.parametrize("cfg", [BICUBIC, BILINEAR], ids=["bicubic", "bilinear"])
def test_tiny_extreme_and_around_the_target_and_resized_sizes(cp: object, cfg: Preprocessing) -> None:
    resized = int(224 / cfg.crop_pct)
    sizes = TINY + EXTREME + around(224) + around(resized) + [(375, 500), (500, 375), (1000, 257)]
    assert mismatches(cp, cfg, sizes) == []


@pytest.mark.parametrize("size", [(160, 224), (224, 160), (96, 96)])
def test_other_input_sizes(cp: object, size: tuple[int, int]) -> None:
    assert mismatches(cp, BICUBIC, [(3, 5), (375, 500), (500, 375), (161, 225), (97, 61)], size) == []


def test_large_images(cp: object) -> None:
    assert mismatches(cp, BICUBIC, [(1200, 1600), (2048, 1536)], pillow=False) == []


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registry_config(cp: object, name: str) -> None:
    cfg = REGISTRY[name]
    side = int(cfg.input_size / cfg.crop_pct)
    assert mismatches(cp, cfg, [(5, 3), (side, side + 1), (side - 1, side), (300, 451), (8, 8)]) == []


@pytest.mark.parametrize(
    ("plant", "old", "new"),
    [
        ("wrong rounding constant", "int acc = 1 << 21;", "int acc = 1 << 20;"),
        ("missing clamp", "(unsigned char)(v < 0 ? 0 : (v > 255 ? 255 : v))", "(unsigned char)v"),
        ("reciprocal instead of a division", "__fdiv_rn(__fsub_rn(x, m), s)", "__fmul_rn(__fsub_rn(x, m), 1.0f / s)"),
    ],
)
def test_the_harness_catches_planted_bugs(cp: object, monkeypatch: pytest.MonkeyPatch, plant: str, old: str, new: str) -> None:
    source = resize.kernel_source()
    assert source.count(old) == 1, plant
    monkeypatch.setattr(resize, "kernel_source", lambda: source.replace(old, new))
    assert mismatches(cp, BICUBIC, [(375, 500), (97, 61), (3, 5)], pillow=False), plant


def test_the_runtime_compiles_the_packaged_source(cp: object) -> None:
    resizer = resize.DeviceResizer(BICUBIC)
    module = resizer._pass_kernel  # a host RawFunction: built from what the runtime handed CuPy
    assert module.name == "resample_pass" and resize.KERNELS_CU.is_file()
    assert host_cupy.kernel_names(resize.kernel_source()) == ["resample_pass", "normalise"]


ROOT = Path(__file__).resolve().parents[2]


def _sanitized_sweep(source: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.kernel_host.sweep", "--sanitize"]
    if source is not None:
        command += ["--source", str(source)]
    return subprocess.run(command, cwd=ROOT, env=host_cupy.sanitizer_env(), capture_output=True, text=True, timeout=300)


def test_asan_and_ubsan_find_nothing_and_catch_a_planted_out_of_bounds_read(tmp_path: Path) -> None:
    """The kernels built with -fsanitize=address,undefined, in a child process that preloads
    libasan, over a small sweep; then with the edge clamp of the taps removed (reads past
    the image), which must abort with an ASan report."""
    clean = _sanitized_sweep()
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert "sanitized sweep: 0 mismatches" in clean.stdout
    planted = tmp_path / "kernels.cu"
    source = resize.kernel_source()
    assert source.count("int x = min(s + k, n_in - 1);") == 1
    planted.write_text(source.replace("int x = min(s + k, n_in - 1);", "int x = s + k;"))
    broken = _sanitized_sweep(planted)
    assert broken.returncode != 0 and "AddressSanitizer" in broken.stderr, broken.stderr[-3000:]
