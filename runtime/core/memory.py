"""Refuse, before any work, a batch that memory or shared memory cannot hold.

The options' ranges (runtime.app.cli.options) bound each number alone; a batch of 4096 at
8192x8192 is still terabytes. What a run allocates up front is known from the batch,
the sample shape and the decode ring, so it is checked here against the machine: at
most half the physical memory, and for the decode workers' shared ring, the free space
where multiprocessing puts it (/dev/shm, else the temporary folder). A ring that does
not fit there ends in SIGBUS and leaves /tmp/pymp-* behind, so it is refused instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..app.images.pipeline import HostPipeline
from .errors import UserError

GIB = float(1 << 30)


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _free_bytes(folder: str) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def batch_bytes(batch: int, sample_shape: tuple[int, ...], itemsize: int) -> int:
    return batch * int(np.prod(sample_shape, dtype=np.int64)) * itemsize


def check_host_memory(nbytes: int, what: str) -> None:
    """Refuse `nbytes` of arrays when they exceed half this machine's memory."""
    ram = physical_memory()
    if ram and nbytes > ram // 2:
        raise UserError(
            f"{what} needs {nbytes / GIB:.1f} GiB, over half of this machine's {ram / GIB:.1f} GiB of memory; "
            "use a smaller --batch (or --size)"
        )


def check_pipeline_memory(pipeline: HostPipeline) -> None:
    """Refuse a HostPipeline whose batch buffer and decode ring cannot be allocated here."""
    one = batch_bytes(pipeline.batch, pipeline.transform.sample_shape, pipeline.transform.dtype.itemsize)
    ring = pipeline.slots * one if pipeline.workers else 0
    what = f"--batch {pipeline.batch} of {'x'.join(map(str, pipeline.transform.sample_shape))} samples"
    check_host_memory(one + ring, what + (f" ({pipeline.slots} shared slots and one batch)" if ring else ""))
    if ring:
        places = [p for p in ("/dev/shm", tempfile.gettempdir()) if Path(p).is_dir()]
        free = max((_free_bytes(p) for p in places), default=0)
        if ring > free:
            raise UserError(
                f"{what}: the decode workers' {pipeline.slots} shared slots need {ring / GIB:.1f} GiB, "
                f"and only {free / GIB:.1f} GiB is free in {' or '.join(places)}; use a smaller --batch"
            )
