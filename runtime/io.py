"""Atomic artifact writes and file fingerprints.

Every artifact goes to a temporary file in the destination folder and is renamed over
the target only once complete, so an interrupted run never leaves a truncated file
that a later step would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success.

    On any exception (KeyboardInterrupt included) the temporary file is removed and
    `target` is left as it was. An OSError about the temporary file (read-only or full
    disk, no permission) is re-raised naming `target`, the file the user asked for.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as exc:  # mkstemp's error names its random file name, not the target
            raise write_error(target, exc) from None
        os.close(fd)
        tmp = Path(tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; artifacts get normal permissions
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        if exc.filename is None or str(exc.filename) in (str(tmp), str(target), str(target.parent)):
            raise write_error(target, exc) from None
        raise
    finally:
        if tmp is not None:
            _remove_quietly(tmp)


def same_file(path: str | Path, candidates: Iterable[str | Path]) -> Path | None:
    """The first of `candidates` that `path` would write over, or None: the same path once
    resolved (a name kept for a file not made yet counts too), or the very file it names
    (same device and inode, so hard links count). Other OS errors (a file where a folder
    should be) are raised."""
    candidates = list(candidates)
    resolved = Path(path).resolve()
    for candidate in candidates:
        if Path(candidate).resolve() == resolved:
            return Path(candidate)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    for candidate in candidates:
        try:
            other = os.stat(candidate)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return Path(candidate)
    return None


def write_error(target: Path, exc: OSError) -> OSError:
    """`exc` as the OSError a command reports for `target` it could not write (exit 74)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OSError(exc.errno, f"cannot write it ({reason})", str(target))


def _remove_quietly(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError as exc:  # the original failure matters more than a leftover temp file
        log.warning("could not remove the temporary file %s (%s)", tmp, exc.strerror or exc)


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(target: str | Path, obj: Any) -> None:
    write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | Path) -> Any:
    from .errors import UserError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:  # the parser recurses once per level: 100000 nested [ ends here
        raise UserError(f"{path}: not usable JSON (nested too deeply)") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
