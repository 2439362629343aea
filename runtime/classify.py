"""Batch image classification: decode in worker processes, infer, stream results to a file.

Decoding and preprocessing run in a process pool a bounded number of batches ahead of
inference, so the accelerator is not left waiting on Pillow and memory stays bounded
however many images there are. Results are written as they come to a temporary file
that replaces the output only when the run ends.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm import tqdm

from .errors import UserError
from .io import atomic_path
from .preprocess import ImageError, Preprocessing, load_and_preprocess
from .runner import Runner

log = logging.getLogger(__name__)


@dataclass
class Batch:
    paths: list[str]
    images: np.ndarray | None  # [n_ok, 3, H, W]
    ok: list[int]  # indices into paths that decoded
    errors: dict[int, str]


def load_batch(paths: list[str], cfg: Preprocessing) -> Batch:
    """Decode and preprocess one batch; bad images are reported, not raised."""
    arrays, ok, errors = [], [], {}
    for i, path in enumerate(paths):
        try:
            arrays.append(load_and_preprocess(path, cfg))
            ok.append(i)
        except ImageError as exc:
            errors[i] = str(exc)
    return Batch(paths, np.stack(arrays) if arrays else None, ok, errors)


def batches(paths: list[Path], cfg: Preprocessing, batch: int, workers: int) -> Iterator[Batch]:
    """Preprocessed batches in input order, at most 2 x workers batches in flight."""
    chunks = [[str(p) for p in paths[i : i + batch]] for i in range(0, len(paths), batch)]
    if workers <= 0:
        for chunk in chunks:
            yield load_batch(chunk, cfg)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[Batch]] = deque()
        todo = iter(chunks)
        for chunk in todo:
            pending.append(pool.submit(load_batch, chunk, cfg))
            if len(pending) >= 2 * workers:
                break
        while pending:
            yield pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(load_batch, nxt, cfg))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Writer:
    """JSONL, CSV or human-readable lines, chosen by the output file's extension."""

    def __init__(self, fh: IO[str], fmt: str, topk: int) -> None:
        self.fh, self.fmt, self.topk = fh, fmt, topk
        if fmt == "csv":
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
            self.fh.write(f"{row['path']}: ERROR {row['error']}\n")
        else:
            best = ", ".join(f"{lab} {p:.1%}" for lab, p in zip(row["labels"], row["probs"], strict=True))
            self.fh.write(f"{row['path']}: {best}\n")


@dataclass
class ClassifyStats:
    images: int
    classified: int
    skipped: int
    seconds: float


def classify(
    runner: Runner,
    paths: list[Path],
    cfg: Preprocessing,
    labels: list[str] | None,
    output: Path | None,
    batch: int = 32,
    topk: int = 5,
    workers: int | None = None,
) -> ClassifyStats:
    """Classify `paths`, writing one record per image to `output` (or stdout)."""
    if batch < 1 or topk < 1:
        raise UserError("--batch and --topk must be at least 1")
    fmt = "text"
    if output is not None:
        fmt = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}.get(output.suffix.lower(), "")
        if not fmt:
            raise UserError(f"--output {output}: use a .jsonl or .csv file name")
    workers = (os.cpu_count() or 1) if workers is None else workers
    classified = skipped = 0
    start = time.perf_counter()
    with _sink(output) as fh, tqdm(total=len(paths), unit="img", desc="classifying", disable=None) as bar:
        writer = Writer(fh, fmt, topk)
        for b in batches(paths, cfg, batch, workers):
            probs = softmax(runner.infer(b.images)) if b.images is not None else np.zeros((0, 1))
            k = min(topk, probs.shape[1])
            top = np.argsort(-probs, axis=1)[:, :k]
            row_of = {path_index: row for row, path_index in enumerate(b.ok)}
            for i, path in enumerate(b.paths):
                if i in b.errors:
                    skipped += 1
                    print(f"skipped {b.errors[i]}", file=sys.stderr)
                    writer.write({"path": path, "error": b.errors[i]})
                    continue
                r = row_of[i]
                classes = [int(c) for c in top[r]]
                writer.write(
                    {
                        "path": path,
                        "classes": classes,
                        "labels": [labels[c] if labels and c < len(labels) else str(c) for c in classes],
                        "probs": [float(probs[r, c]) for c in classes],
                    }
                )
                classified += 1
            bar.update(len(b.paths))
    return ClassifyStats(len(paths), classified, skipped, time.perf_counter() - start)


@contextlib.contextmanager
def _sink(output: Path | None) -> Iterator[IO[str]]:
    """stdout, or a file that replaces `output` only once the run completes."""
    if output is None:
        yield sys.stdout
        return
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        yield fh
