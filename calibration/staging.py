"""Keep ONNX Runtime's intermediate files out of the artifact folder.

ONNX Runtime's calibrators and `quantize_static` write `<name>-inferred.onnx` beside the
model path they are given (shape inference to a file, then reading it back), outside any
atomic write: a run that stops half-way, or a full disk, leaves it there, truncated.
So they are only ever given a link to the model inside a temporary folder that the caller
removes on any exit; their files land there.

Shape inference writes that file from C++ and ignores a failed write, so a full disk shows
up only when it is read back, as a protobuf DecodeError: `intermediate_errors` turns that
into the OSError it really is (exit 74), naming the folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from runtime.core.onnx_files import external_data_files


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.symlink(src, dst)
    except OSError:  # no symlinks here (some file systems, Windows without the right)
        shutil.copyfile(src, dst)


def stage(onnx_path: Path, workdir: Path) -> Path:
    """A link to `onnx_path`, and to each external-data file it names, inside `workdir`."""
    src = Path(onnx_path).resolve()
    staged = workdir / src.name
    if not staged.exists():
        _link(src, staged)
    for data in external_data_files(onnx_path):  # each checked: inside the model's folder
        if not (workdir / data.location).exists():
            _link(data.path, workdir / data.location)
    return staged


@contextlib.contextmanager
def intermediate_errors(workdir: Path) -> Iterator[None]:
    """Inside, an intermediate model that reads back truncated is reported as the failed
    write it is (an OSError naming `workdir`), not as a protobuf traceback."""
    from google.protobuf.message import DecodeError

    try:
        yield
    except DecodeError:
        full = shutil.disk_usage(workdir).free < 1 << 20
        raise OSError(
            errno.ENOSPC if full else errno.EIO,
            "an intermediate model written there came back truncated"
            f"{' (disk full)' if full else ''}; point TMPDIR at a folder with more space",
            str(workdir),
        ) from None
