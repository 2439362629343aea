"""The memory budget: refuse, before any work, arrays this machine cannot hold.

Command-line ranges bound each number alone; a batch of 4096 at 8192x8192 is still
terabytes, and a small file can declare a huge array. What a run allocates up front is
known from the batch and the sample shape (or from what a file declares), so it is
checked here against the machine: at most half the physical memory. The decode workers'
shared ring has its own check beside the host pipeline (runtime.app.images.pipeline).
"""

from __future__ import annotations

import os

import numpy as np

from .errors import UserError

GIB = float(1 << 30)


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


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
