"""The README and docs show what the code does: commands and their outputs as they run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.conftest import ROOT, run_cli

README = (ROOT / "README.md").read_text()


def _flags(command: str) -> set[str]:
    return {word.split("=", 1)[0] for word in command.split() if word.startswith("--")}


def test_the_print_trtexec_example_has_the_flags_that_run(digits_export: Path, tmp_path: Path) -> None:
    """The README's `--print-trtexec` output names the same trtexec flags the command prints
    today (--noTF32 among them), for any model."""
    shown = next(line for line in README.splitlines() if line.startswith("trtexec "))
    for name in ("model.onnx", "model.json", "golden.npz"):
        shutil.copy(digits_export / name, tmp_path / name)
    res = run_cli("export", "engine", str(tmp_path / "model.onnx"), "--flavour", "tensorrt", "--print-trtexec")
    assert res.returncode == 0, res.stderr
    assert _flags(shown) == _flags(res.stdout.strip()), (shown, res.stdout)


def test_scale_out_mounts_the_repository_that_export_writes() -> None:
    text = (ROOT / "docs" / "scale-out.md").read_text()
    (written,) = re.findall(r"python -m export triton \S+ --out (\S+)", text)
    mounts = re.findall(r"-v \$PWD/(\S+):/models", text)
    assert mounts and all(m == written for m in mounts), (written, mounts)


def test_no_exact_test_count_or_suite_time_without_a_date() -> None:
    """A test count or a suite time goes stale with the next commit: none in the README, and
    a `make test` time carries the month it was measured."""
    assert not re.search(r"\d+ tests (collected|passed)|\d+ passed", README)
    for line in README.splitlines():
        if "make test" in line and re.search(r"\d+ ?min", line):
            assert re.search(r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w* \d{4}", line), line
