"""Atomic artifact writes: what every step that writes a file goes through.

Every artifact goes to a temporary file in the destination folder and is renamed over
the target only once complete, so an interrupted run never leaves a truncated file
that a later step would trust.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import socket
import stat
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
    A `target` that exists keeps its permission bits. Temporary files of the same target
    left by a process that no longer runs (one killed by SIGKILL) are removed first.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target)
        tmp = _create_temp(target)
    except OSError as exc:  # named by the target, not by a random temporary name
        raise write_error(target, exc) from None
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except OSError:  # no such file yet: normal permissions (the temp file was made 0600)
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        if exc.filename is None or str(exc.filename) in (str(tmp), str(target), str(target.parent)):
            raise write_error(target, exc) from None
        raise
    finally:
        _remove_quietly(tmp)


# The temporary name: "." + the target's name + "." + pid + "@" + host + "-" + random +
# ".tmp", within the file system's limit on a name (a target name that is itself near the
# limit is cut and given a hash of the whole name). The pid and host say whose it is, so a
# later write on the same machine can tell a leftover of a dead run from the file of a run
# still going; another machine's files (a shared folder) are never judged.
_NAME_MAX = 255
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:4]


def _temp_head(target: Path) -> str:
    name = target.name
    room = _NAME_MAX - len(".") - len(".4194304@host-abcdef.tmp")
    if len(os.fsencode(name)) <= room:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    cut = os.fsencode(name)[: room - len(digest) - 1].decode("utf-8", "ignore")
    return f"{cut}~{digest}"


def _create_temp(target: Path) -> Path:
    head = _temp_head(target)
    for _ in range(100):
        tmp = target.parent / f".{head}.{os.getpid()}@{_HOST}-{secrets.token_hex(3)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(target))


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _remove_stale(target: Path) -> None:
    """Remove this target's temporary files whose writer (the pid in the name) is dead."""
    prefix = f".{_temp_head(target)}."
    try:
        names = [n for n in os.listdir(target.parent) if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return
    for name in names:
        owner = name[len(prefix) : -len(".tmp")]
        pid, _, rest = owner.partition("@")
        host, _, token = rest.partition("-")
        if not (pid.isdigit() and host == _HOST and len(token) == 6):
            continue  # not clearly one of ours, made on this machine
        if int(pid) == os.getpid() or _pid_running(int(pid)):
            continue
        path = target.parent / name
        if path.is_file() and not path.is_symlink():
            log.debug("removing %s, left by process %s, which no longer runs", path, pid)
            _remove_quietly(path)


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
    if reason.startswith("cannot write it (") and str(exc.filename) == str(target):
        return exc  # already said (a nested atomic write of the same target)
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
