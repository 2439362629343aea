"""runtime.core.atomic.atomic_path at the file system's edges: permissions kept, names near the
limit, leftovers of a killed run, one message for one failure."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.core.atomic import atomic_path, write_bytes_atomic


def test_rewrite_keeps_the_targets_permissions(tmp_path: Path) -> None:
    target = tmp_path / "p.csv"
    target.write_text("old\n")
    os.chmod(target, 0o600)
    write_bytes_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert (target.stat().st_mode & 0o777) == 0o600


def test_a_new_file_gets_normal_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "new.csv", b"x")
    finally:
        os.umask(umask)
    assert ((tmp_path / "new.csv").stat().st_mode & 0o777) == 0o644


@pytest.mark.parametrize("length", [240, 245, 250, 255])
def test_names_the_file_system_accepts_can_be_written(tmp_path: Path, length: int) -> None:
    target = tmp_path / ("n" * (length - 4) + ".csv")
    target.write_text("the file system takes this name\n")
    write_bytes_atomic(target, b"rewritten\n")
    assert target.read_bytes() == b"rewritten\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_failed_temp_file_is_reported_once_naming_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    real_open = os.open

    def full(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        if Path(path).name.startswith(".out.csv."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, flags, mode)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "open", full)
        with pytest.raises(OSError) as caught:
            write_bytes_atomic(target, b"x")
    message = str(caught.value)
    assert caught.value.filename == str(target)
    assert message.count("cannot write it") == 1, message
    assert "No space left" in message


def test_a_nested_write_of_the_same_target_is_not_reported_twice(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(OSError) as caught:
        with atomic_path(target):
            raise OSError(errno.EIO, "cannot write it (Input/output error)", str(target))
    assert str(caught.value).count("cannot write it") == 1, str(caught.value)


def _killed_writer(target: Path) -> None:
    """A process that opens an atomic write of `target` and is then killed by SIGKILL."""
    code = (
        "import sys, time\nfrom runtime.core.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half')\n    print('ready', flush=True)\n    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def test_the_next_write_removes_a_killed_runs_leftover(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    _killed_writer(target)
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv.")]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp")
    write_bytes_atomic(target, b"done\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_temp_files_of_live_writers_and_other_files_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    from runtime.core.atomic import _HOST

    dead = _killed_pid()
    live = tmp_path / f".out.csv.{os.getppid()}@{_HOST}-abcdef.tmp"  # our parent runs
    foreign = tmp_path / ".out.csv.notours.tmp"  # no pid: not clearly ours
    elsewhere = tmp_path / f".out.csv.{dead}@zzzz-abcdef.tmp"  # another machine's (a shared folder)
    other = tmp_path / f".other.csv.{dead}@{_HOST}-abcdef.tmp"  # another target's
    for path in (live, foreign, elsewhere, other):
        path.write_text("keep")
    write_bytes_atomic(target, b"x")
    assert live.exists() and foreign.exists() and elsewhere.exists() and other.exists()


def _killed_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


def test_classify_output_keeps_its_mode_and_takes_a_long_name(
    digits_export: Path, digit_images: Path, tmp_path: Path
) -> None:
    """The issue's cases through a command: `classify --output p.csv` of mode 600 stays 600,
    and a 245-character output name the file system takes is written, leaving no temp file."""
    from tests.conftest import run_cli

    out = tmp_path / "out"
    out.mkdir()
    private = out / "p.csv"
    private.write_text("old\n")
    os.chmod(private, 0o600)
    long = out / ("n" * 241 + ".csv")
    for target in (private, long):
        res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(digit_images), "--output", str(target))
        assert res.returncode == 0, res.stderr
        assert target.read_text().count("\n") >= 12
    assert (private.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in out.iterdir()) == sorted([private.name, long.name])
