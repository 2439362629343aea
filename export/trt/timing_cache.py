"""The timing cache, shared safely between builds: read, build, then merge and write back.

Two builds that share one cache (`make -j` building FP16 and INT8) must not lose each
other's entries, so the file is never simply overwritten: under an exclusive lock on a lock
file beside it, the build reads the cache; after the build, under the lock again, it re-reads
whatever the file holds now (another build may have written it meanwhile), combines that with
what this build learnt (ITimingCache.combine) and writes the result atomically. The lock is
not held during the build itself, so parallel builds still run in parallel. TensorRT only:
TensorRT-RTX has no timing cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.core.atomic import write_bytes_atomic
from runtime.core.errors import UserError

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)


def lock_path(cache: Path) -> Path:
    """`timing.cache` -> `timing.cache.lock` (left in place: removing a lock file races)."""
    return cache.with_name(cache.name + ".lock")


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """Hold an exclusive lock on the cache's lock file (fcntl.flock) until the block ends."""
    import fcntl  # POSIX; TensorRT's timing cache is used on Linux (x86-64 and Jetson)

    target = lock_path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read(cache: Path) -> bytes:
    return cache.read_bytes() if cache.is_file() else b""


def load_timing_cache(config: trt.IBuilderConfig, cache: Path) -> None:
    """Give the builder what the cache file holds now (an empty cache when there is none)."""
    with locked(cache):
        data = _read(cache)
    loaded = config.create_timing_cache(data)
    if loaded is None or not config.set_timing_cache(loaded, False):
        raise UserError(f"{cache}: TensorRT could not use this timing cache (another TensorRT version?)")
    log.info("timing cache %s (%s)", cache, f"{len(data)} bytes" if data else "new")


def save_timing_cache(config: trt.IBuilderConfig, cache: Path) -> None:
    """Merge what this build learnt into the cache file as it is now, under the lock."""
    learnt = config.get_timing_cache()
    if learnt is None:
        raise UserError(f"{cache}: TensorRT returned no timing cache after the build")
    with locked(cache):
        current = _read(cache)
        if current:
            theirs = config.create_timing_cache(current)
            if theirs is None or not learnt.combine(theirs, False):
                raise UserError(
                    f"{cache}: could not combine this build's timing cache with the one on disk (written by "
                    "another TensorRT version or GPU?); the engine was built, the cache file left as it was"
                )
        write_bytes_atomic(cache, bytes(memoryview(learnt.serialize())))
    log.info("timing cache %s updated (%s)", cache, "merged with the entries it held" if current else "new")
