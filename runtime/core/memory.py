"""The memory budget: refuse, before any work, arrays this machine cannot hold.

Command-line ranges bound each number alone; a batch of 4096 at 8192x8192 is still
terabytes, and a small file can declare a huge array. What a run allocates up front is
known from the batch and the sample shape (or from what a file declares), so it is
checked here against the machine: at most half the physical memory. The decode workers'
shared ring has its own check beside the host pipeline (runtime.app.images.pipeline).

The same budget bounds what a file declares before it is read (the arrays of an .npz,
the external weights of an ONNX graph): the size comes from the header, so an 8 MB file
of compressed zeros that would inflate to 8 GiB is refused in one line, unread. Under an
address-space limit (`ulimit -v`) the budget is also what that limit leaves.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def address_space_left() -> int | None:
    """Bytes this process may still map under its address-space limit (`ulimit -v`), or
    None when there is no such limit (or the system does not say)."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    try:  # /proc/self/statm: the first field is the mapped size, in pages
        mapped = int(Path("/proc/self/statm").read_text().split()[0]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        mapped = 0
    return max(soft - mapped, 0)


def _size(nbytes: int) -> str:
    return f"{nbytes / GIB:.1f} GiB" if nbytes >= GIB / 10 else f"{nbytes / (1 << 20):.1f} MiB"


def check_host_memory(nbytes: int, what: str, hint: str = "use a smaller --batch (or --size)") -> None:
    """Refuse `nbytes` of arrays when they exceed half this machine's memory, or what the
    address-space limit leaves; `hint` says what to do instead."""
    ram = physical_memory()
    if ram and nbytes > ram // 2:
        raise UserError(
            f"{what} needs {_size(nbytes)}, over half of this machine's {_size(ram)} of memory; {hint}"
        )
    left = address_space_left()
    if left is not None and nbytes > left:
        raise UserError(
            f"{what} needs {_size(nbytes)}, over the {_size(left)} that this process's "
            f"address-space limit (ulimit -v) leaves; {hint}"
        )


def npz_declared(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype[np.generic]]]:
    """Each array's (shape, dtype) in the .npz `path`, from the .npy headers inside the zip:
    nothing is decompressed. A member that is not a readable .npy header raises ValueError
    (a damaged zip raises zipfile.BadZipFile or OSError), as np.load would."""
    import zipfile

    declared = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith(".npy"):
                continue
            with archive.open(name) as member:
                fmt = np.lib.format
                read = fmt.read_array_header_1_0 if fmt.read_magic(member) == (1, 0) else fmt.read_array_header_2_0
                shape, _, dtype = read(member)
            declared[name[: -len(".npy")]] = (tuple(shape), dtype)
    return declared


def declared_bytes(shape: tuple[int, ...], dtype: np.dtype[np.generic]) -> int:
    """The bytes an array of `shape` and `dtype` holds (Python ints: no overflow)."""
    total = int(dtype.itemsize)
    for side in shape:
        total *= int(side)
    return total
