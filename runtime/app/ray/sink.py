"""Where results go: local classify's .jsonl/.csv writer, or Parquet, written atomically on the driver."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ...core.atomic import atomic_path
from ...core.errors import require
from ..classify import OUTPUT_FORMATS as LOCAL_OUTPUT_FORMATS
from ..classify import Writer
from ..classify import output_format as local_output_format
from .options import RAY_HINT
from .paths import name, with_paths_as

OUTPUT_FORMATS = {**LOCAL_OUTPUT_FORMATS, ".parquet": "parquet"}


def output_format(output: Path | None) -> str:
    """Local classify's formats, and Parquet."""
    return local_output_format(output, OUTPUT_FORMATS)


def record(row: dict[str, Any]) -> dict[str, Any]:
    """A result row as local classify's record; the path as Python's file-name string
    (surrogate escapes for bytes that are not UTF-8), which the Writer keeps losslessly."""
    path = name(row["path"])
    if row["error"] is not None:
        return {"path": path, "error": row["error"]}
    return {"path": path, "classes": row["classes"], "labels": row["labels"], "probs": row["probs"]}


@contextlib.contextmanager
def sink(output: Path | None, fmt: str, topk: int, binary_paths: bool = False) -> Iterator[Any]:
    """A function that writes one Arrow table of results. The file is opened first, so a
    path that cannot be written fails before Ray starts, and it replaces `output` only once
    the run completes. Parquet's path column is binary (each name's bytes) with
    `binary_paths`, else a string column; JSONL and CSV follow local classify's Writer."""
    with contextlib.ExitStack() as stack:
        # OS errors propagate (atomic_path names `output` in them), as in local classify.
        fh: IO[str] = sys.stdout
        tmp = stack.enter_context(atomic_path(output)) if output is not None else None
        if tmp is not None and fmt != "parquet":
            fh = stack.enter_context(open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline=""))
        if fmt == "parquet":
            pq = require("pyarrow.parquet", RAY_HINT)
            parquet: list[Any] = []  # the writer, made with the first table's schema
            stack.callback(lambda: parquet and parquet[0].close())

            def write(table: Any) -> None:
                table = with_paths_as(table, binary_paths)
                if not parquet:
                    parquet.append(pq.ParquetWriter(str(tmp), table.schema))
                parquet[0].write_table(table)

            yield write
            return
        writer = Writer(fh, fmt, topk)

        def write_rows(table: Any) -> None:
            for row in table.to_pylist():
                writer.write(record(row))

        yield write_rows
