"""File names through Arrow, losslessly.

A file name need not be UTF-8: Python holds such bytes as surrogate escapes (os.fsdecode),
which an Arrow string cannot store. So `ray_classify` hands Ray the names as Arrow binary
(the bytes on disk, os.fsencode), the stages pass the column on in the type it came in,
and the driver turns each name back into Python's string for local classify's Writer
(JSONL \\udcXX escapes, CSV the bytes on disk). A Parquet file keeps `path` a string
column when every name is UTF-8, and binary (the bytes on disk) when one is not.
"""

from __future__ import annotations

import os
from typing import Any


def arrow_names(names: list[str]) -> Any:
    """Names as an Arrow binary array of the bytes on disk."""
    import pyarrow as pa

    return pa.array([os.fsencode(n) for n in names], pa.binary())


def all_utf8(names: list[str]) -> bool:
    """Whether every name is valid UTF-8 (holds no surrogate escape)."""
    try:
        for n in names:
            n.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name(cell: Any) -> str:
    """A path cell (str, or bytes from a binary column) as Python's file-name string."""
    return os.fsdecode(bytes(cell) if isinstance(cell, bytes) else str(cell))


def column_like(cells: list[Any]) -> Any:
    """Path cells as an Arrow array of the type they came in: binary for bytes, else string."""
    import pyarrow as pa

    binary = bool(cells) and isinstance(cells[0], bytes)
    return pa.array(
        [bytes(c) for c in cells] if binary else [str(c) for c in cells], pa.binary() if binary else pa.string()
    )


def text(message: str) -> str:
    """A message for an Arrow string column: surrogate escapes (a file name's bytes that
    are not UTF-8, quoted in an error) written as \\udcXX escapes."""
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


def with_paths_as(table: Any, binary: bool) -> Any:
    """`table` with its "path" column cast to binary, or to string (every name UTF-8)."""
    import pyarrow as pa

    i = table.schema.get_field_index("path")
    return table.set_column(i, "path", table.column(i).cast(pa.binary() if binary else pa.string()))
