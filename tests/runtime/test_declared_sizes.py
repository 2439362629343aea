"""Memory bounded by what a file declares: sizes come from headers and are checked against
the budget that guards --batch (runtime.core.memory), before anything is read."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from runtime.core import memory as memory_budget
from runtime.core.errors import UserError
from runtime.core.golden import load_golden
from tests.conftest import ROOT


def _declared_npz(path: Path, arrays: dict[str, tuple[int, ...]]) -> Path:
    """An .npz whose members' headers declare these float32 shapes, each followed by 64 bytes only."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, shape in arrays.items():
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
            archive.writestr(f"{name}.npy", header.getvalue() + bytes(64))
    return path


def test_npz_declared_reads_headers_only(tmp_path: Path) -> None:
    path = _declared_npz(tmp_path / "x.npz", {"input_0": (8, 3, 8192, 4096), "logits_0": (8, 10)})
    declared = memory_budget.npz_declared(path)
    assert {k: s for k, (s, _) in declared.items()} == {"input_0": (8, 3, 8192, 4096), "logits_0": (8, 10)}
    assert memory_budget.declared_bytes(*declared["input_0"]) == 8 * 3 * 8192 * 4096 * 4


def test_a_golden_declaring_a_huge_input_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's 3 MB golden.npz declaring 8x3x8192x4096 (3 GiB, and several times that to
    infer), on a 16 GiB machine: one line, and np.load never runs."""
    path = _declared_npz(tmp_path / "golden.npz", {"input_0": (8, 3, 8192, 4096), "logits_0": (8, 10)})
    monkeypatch.setattr(memory_budget, "physical_memory", lambda: 16 << 30)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran before the budget check"))
    with pytest.raises(UserError) as info:
        load_golden(path)
    assert str(info.value).startswith(f"{path} (input_0 8x3x8192x4096 float32) needs 27.0 GiB, over half")
    assert "re-export it" in str(info.value)


def test_a_golden_input_side_over_the_maximum_is_refused(tmp_path: Path) -> None:
    path = _declared_npz(tmp_path / "golden.npz", {"input_0": (1, 3, 16, 100_000), "logits_0": (1, 10)})
    with pytest.raises(UserError, match=r"input_0 declares 1x3x16x100000 \| each side at most 8192"):
        load_golden(path)


def test_the_budget_counts_the_address_space_limit() -> None:
    """Under `ulimit -v` the budget is what the limit leaves, not half the RAM."""
    code = (
        "import os, resource\n"
        "from runtime.core.memory import check_host_memory\n"
        "from runtime.core.errors import UserError\n"
        "mapped = int(open('/proc/self/statm').read().split()[0]) * os.sysconf('SC_PAGE_SIZE')\n"
        "resource.setrlimit(resource.RLIMIT_AS, (mapped + (256 << 20), resource.RLIM_INFINITY))\n"
        "check_host_memory(1 << 20, 'one MiB')\n"
        "try:\n    check_host_memory(512 << 20, 'half a GiB', 'ask for less')\n"
        "except UserError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("half a GiB needs 0.5 GiB, over the 0.2 GiB that") and "address-space limit (ulimit -v)" in line, line
    assert line.endswith("; ask for less")
