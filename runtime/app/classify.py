"""Batch image classification: the host pipeline decodes, the runner infers, results stream
to a file.

Decoding runs in worker processes (runtime.app.images.pipeline) a bounded number of batches ahead
of inference, so the accelerator is not left waiting on Pillow and memory stays bounded
however many images there are. Every input gets a record: its top-k classes, or the
reason it was skipped. Results go to a temporary file that replaces the output only
when the run ends, so an interrupted run (Ctrl-C, SIGTERM) leaves no torn file.

When a later batch fails (the runner or the pipeline raises), what was classified is not
lost: the output is still written, with the records made so far and, for each input not
reached, a record whose error says the run stopped and why; the command then exits
non-zero with the failure's one line. So the file always holds one record per input.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import io
import json
import logging
import os
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from ..core.artifacts import model_artifacts, model_path
from ..core.atomic import atomic_path, same_file, write_error
from ..core.errors import UserError
from ..core.runner import Runner
from .images.inputs import ImageInputs
from .images.transform import Batch, ImagePipeline

log = logging.getLogger(__name__)

OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}


def output_format(output: Path | None, formats: dict[str, str] = OUTPUT_FORMATS) -> str:
    """ "text" for stdout, else the format the file name asks for (UserError if none).
    `formats` maps suffixes to formats (Ray classify adds Parquet)."""
    if output is None:
        return "text"
    fmt = formats.get(output.suffix.lower())
    if not fmt:
        names = sorted({s for s in formats if s != ".json"})
        raise UserError(f"--output {output}: use a {', '.join(names[:-1])} or {names[-1]} file name")
    return fmt


def check_output_path(output: Path | None, inputs: list[Path], model_file: Path) -> None:
    """Refuse, before any work, an --output that is a folder, one of the input images, or
    an artifact of the model in use: the results would replace it."""
    if output is None:
        return
    try:
        st = os.stat(output)
    except FileNotFoundError:
        return  # a new file clobbers nothing
    except OSError as exc:  # a file where a folder should be, no permission: an OS error (exit 74)
        raise write_error(output, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"--output {output} is a folder; name a .jsonl or .csv file")
    artifacts = model_artifacts(model_file) + model_artifacts(model_path(model_file))  # a link's and its target's
    for kind, paths in (("an artifact of the model in use", artifacts), ("an input", inputs)):
        path = same_file(output, paths)
        if path is not None:
            raise UserError(f"--output {output} is {kind} ({path}); results would overwrite it")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def top_k_records(logits: np.ndarray, topk: int, labels: list[str] | None) -> list[dict[str, Any]]:
    """Logits [N, classes] -> each row's record fields: its top-k classes, their label names
    (the class index where the model has no labels) and softmax probabilities. Local and
    Ray classification both write these, so their answers match file for file."""
    probs = softmax(logits)
    top = np.argsort(-probs, axis=1)[:, : min(topk, probs.shape[1])]
    records = []
    for r, row in enumerate(top):
        classes = [int(c) for c in row]
        records.append(
            {
                "classes": classes,
                "labels": [labels[c] if labels and c < len(labels) else str(c) for c in classes],
                "probs": [float(probs[r, c]) for c in classes],
            }
        )
    return records


def one_line(text: str) -> str:
    """`text` for a line of text output: as it is when printable, else as a Python string
    literal (quoted; newlines, control characters and the surrogate escapes of bytes that
    are not UTF-8 written as escapes), so one record stays one line and nothing is lost."""
    return text if text.isprintable() else repr(text)


class Writer:
    """JSONL, CSV or human-readable lines, chosen by the output file's extension.

    File names need not be UTF-8: Python holds such bytes as surrogate escapes
    (os.fsdecode), and each format keeps them losslessly. JSONL writes them as \\udcXX
    escapes (ASCII JSON; os.fsencode of the read-back string gives the original bytes),
    CSV writes the name's bytes as they are on disk (read it back with
    errors="surrogateescape"), text lines quote such a name as a Python literal."""

    def __init__(self, fh: IO[str], fmt: str, topk: int) -> None:
        self.fh, self.fmt, self.topk = fh, fmt, topk
        if fmt == "csv":
            if isinstance(fh, io.TextIOWrapper) and fh.errors != "surrogateescape":
                fh.reconfigure(errors="surrogateescape")
            self.csv = csv.writer(fh)
            self.csv.writerow(
                ["path", "error", *[f"{c}{i + 1}" for i in range(topk) for c in ("class", "label", "prob")]]
            )

    def write(self, row: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.fh.write(json.dumps(row) + "\n")
        elif self.fmt == "csv":
            cells = [row["path"], row.get("error", "")]
            for c, lab, p in zip(row.get("classes", []), row.get("labels", []), row.get("probs", []), strict=True):
                cells += [c, lab, f"{p:.6f}"]
            self.csv.writerow(cells)
        elif "error" in row:
            self.fh.write(f"{one_line(str(row['path']))}: ERROR {one_line(str(row['error']))}\n")
        else:
            best = ", ".join(f"{one_line(lab)} {p:.1%}" for lab, p in zip(row["labels"], row["probs"], strict=True))
            self.fh.write(f"{one_line(str(row['path']))}: {best}\n")


@dataclass
class ClassifyStats:
    images: int
    classified: int
    skipped: int
    seconds: float


def classify(
    runner: Runner,
    pipeline: ImagePipeline,
    inputs: ImageInputs,
    labels: list[str] | None,
    output: Path | None,
    topk: int = 5,
    buffer: np.ndarray | None = None,
    stream: IO[str] | None = None,
) -> ClassifyStats:
    """Classify `inputs`, writing one record per input to `output` (or `stream`, or
    stdout): its top-k, or the reason it was skipped. `buffer` is the preallocated batch
    array the pipeline assembles into (e.g. a runner's pinned host buffer)."""
    if topk < 1:
        raise UserError("--topk must be at least 1")
    fmt = output_format(output)
    classified = skipped = reached = 0
    start = time.perf_counter()
    # Records on stdout name each skipped file already; a warning too would say it twice.
    # With an output file, stderr is where the person running it sees a skip.
    warn = log.warning if output is not None else log.debug
    complete = [False]  # set once every input has a record, so a failure keeps the output
    with _sink(output, stream, complete) as fh, tqdm(total=inputs.count, unit="img", desc="classifying", disable=None) as bar:
        writer = Writer(fh, fmt, topk)
        for skip in inputs.skipped:
            skipped += 1
            warn("skipped %s: %s", skip.path, skip.reason)
            writer.write({"path": skip.path, "error": skip.reason})
            bar.update(1)
        waiting: collections.deque[Batch] = collections.deque()  # decoded, logits not yet back

        def to_runner() -> Iterator[np.ndarray]:
            for b in pipeline.batches(inputs.paths, buffer):
                waiting.append(b)
                if b.images is not None:
                    yield b.images

        def write(b: Batch, found: list[dict[str, Any]]) -> None:
            nonlocal classified, skipped, reached
            reached += len(b.paths)
            row_of = {path_index: row for row, path_index in enumerate(b.ok)}
            for i, path in enumerate(b.paths):
                if i in b.errors:
                    skipped += 1
                    warn("skipped %s: %s", path, b.errors[i])
                    writer.write({"path": path, "error": b.errors[i]})
                    continue
                writer.write({"path": path, **found[row_of[i]]})
                classified += 1
            bar.update(len(b.paths))

        # One infer_batches pass, so the runner copies batch i+1 to the GPU while batch i
        # runs. Its contract: a batch's memory may be refilled once the next batch is asked
        # for, which is when the pipeline assembles the next batch into `buffer`.
        try:
            with contextlib.closing(runner.infer_batches(to_runner())) as results:
                for logits in results:
                    while waiting[0].images is None:  # batches where nothing decoded, in input order
                        write(waiting.popleft(), [])
                    write(waiting.popleft(), top_k_records(logits, topk, labels))
            while waiting:
                write(waiting.popleft(), [])
        except Exception as exc:
            reason = f"not classified: the run stopped ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            for path in inputs.paths[reached:]:
                writer.write({"path": str(path), "error": reason})
            fh.flush()
            complete[0] = True
            if output is not None:
                log.warning(
                    "%s keeps the %d result(s) made before the failure; %d input(s) are marked not classified",
                    output,
                    classified,
                    len(inputs.paths) - reached,
                )
            raise
    return ClassifyStats(inputs.count, classified, skipped, time.perf_counter() - start)


@contextlib.contextmanager
def _sink(output: Path | None, stream: IO[str] | None = None, complete: list[bool] | None = None) -> Iterator[IO[str]]:
    """A file that replaces `output` only once the run completes; else `stream` or stdout.

    An exception (not Ctrl-C or SIGTERM) that leaves while `complete` holds True still
    replaces `output`: every input has its record, some saying why they were not reached."""
    if output is None:
        yield stream or sys.stdout
        return
    failure: Exception | None = None
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        try:
            yield fh
        except Exception as exc:
            if not (complete and complete[0]):
                raise
            failure = exc
    if failure is not None:
        raise failure
