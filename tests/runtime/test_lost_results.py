"""No hang, no lost results: an input that turns into a FIFO after the folder was listed is
skipped with its reason, and a batch that fails later keeps what was already classified.

A hang would stop the suite, so the FIFO checks run in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from runtime.app.classify import classify
from runtime.app.images.inputs import collect_images
from runtime.app.images.pipeline import HostPipeline
from runtime.app.images.transform import ImageTransform
from runtime.core.errors import UserError
from runtime.core.loader import load
from runtime.core.manifest import load_manifest
from tests.conftest import ROOT


def _images(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((16, 16), 20 * i, np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_an_image_swapped_for_a_fifo_after_listing_does_not_hang_classify(digits_export: Path, tmp_path: Path) -> None:
    images = _images(tmp_path / "images", 6)
    out = tmp_path / "out.jsonl"
    res = _run(
        """
        import os, sys
        from pathlib import Path
        from runtime.app.classify import classify
        from runtime.app.images.inputs import collect_images
        from runtime.app.images.pipeline import HostPipeline
        from runtime.app.images.transform import ImageTransform
        from runtime.core.loader import load
        from runtime.core.manifest import load_manifest

        model, images, out = sys.argv[1:]
        inputs = collect_images([images])
        swapped = Path(images) / "03.png"
        swapped.unlink()
        os.mkfifo(swapped)  # nothing ever writes to it: a plain open() waits for ever
        manifest = load_manifest(model)
        transform = ImageTransform(manifest.preprocessing, manifest.input_spec)
        with HostPipeline(transform, 2, 0) as pipeline, load(model) as runner:
            stats = classify(runner, pipeline, inputs, manifest.labels, Path(out), 3)
        print(stats.classified, stats.skipped)
        """,
        str(digits_export / "model.onnx"),
        str(images),
        str(out),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["5", "1"]
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 6 and rows["03.png"]["error"] == "not a regular file (a folder, FIFO or device)"


def test_the_gpu_decoders_header_read_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    pytest.importorskip("nvidia.nvimgcodec", reason="the gpu-images extra is not installed")
    images = _images(tmp_path / "images", 2)
    os.mkfifo(images / "fifo.jpg")
    res = _run(
        """
        import sys
        from runtime.app.images.gpu.decode import BatchDecoder

        for d in BatchDecoder(device_id=None).decode(sys.argv[1:]):
            print("error" if d.error is None else d.error)
        """,
        str(images / "00.png"),
        str(images / "fifo.jpg"),
        str(images / "01.png"),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[-3:] == ["error", "not a regular file (a folder, FIFO or device)", "error"]


def test_open_image_and_folder_listing_refuse_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    res = _run(
        """
        import sys
        from runtime.core.preprocess import ImageError, open_image
        from runtime.app.images.inputs import _unrecognised
        from pathlib import Path

        try:
            open_image(sys.argv[1])
        except ImageError as exc:
            print(exc)
        print(_unrecognised(Path(sys.argv[1])))
        """,
        str(tmp_path / "fifo"),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"{tmp_path / 'fifo'}: not a regular file (a folder, FIFO or device)",
        "not a regular file (a folder, FIFO or device)",
    ]


class _FailsOnBatch:
    """A runner whose `n`th batch raises, as a device or a backend failure would."""

    def __init__(self, runner: Any, n: int) -> None:
        self.runner, self.n = runner, n

    def infer_batches(self, batches: Iterable[np.ndarray]) -> Generator[np.ndarray, None, None]:
        for i, images in enumerate(batches):
            if i == self.n:
                raise UserError("the device fell off the bus")
            yield self.runner.infer(images)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_later_failure_keeps_the_results_made(digits_export: Path, tmp_path: Path, suffix: str) -> None:
    images = _images(tmp_path / "images", 7)
    out = tmp_path / f"out{suffix}"
    model = digits_export / "model.onnx"
    manifest = load_manifest(model)
    inputs = collect_images([images])
    transform = ImageTransform(manifest.preprocessing, manifest.input_spec)
    with HostPipeline(transform, 2, 0) as pipeline, load(model) as runner:
        with pytest.raises(UserError, match="fell off the bus"):
            classify(_FailsOnBatch(runner, 2), pipeline, inputs, manifest.labels, out, 3)  # type: ignore[arg-type]
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
    else:
        import csv

        rows = [{k: v for k, v in r.items() if v} for r in csv.DictReader(out.open())]
    assert [Path(r["path"]).name for r in rows] == [f"{i:02d}.png" for i in range(7)]  # one record per input
    assert all("error" not in r for r in rows[:4])  # two batches of two were classified
    reason = "not classified: the run stopped (the device fell off the bus)"
    assert [r["error"] for r in rows[4:]] == [reason] * 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_an_interrupt_still_keeps_no_partial_output(digits_export: Path, tmp_path: Path) -> None:
    images = _images(tmp_path / "images", 5)
    out = tmp_path / "out.jsonl"
    model = digits_export / "model.onnx"
    manifest = load_manifest(model)

    class Interrupted(_FailsOnBatch):
        def infer_batches(self, batches: Iterable[np.ndarray]) -> Generator[np.ndarray, None, None]:
            for i, images in enumerate(batches):
                if i == 1:
                    raise KeyboardInterrupt
                yield self.runner.infer(images)

    transform = ImageTransform(manifest.preprocessing, manifest.input_spec)
    with HostPipeline(transform, 2, 0) as pipeline, load(model) as runner:
        with pytest.raises(KeyboardInterrupt):
            classify(Interrupted(runner, 1), pipeline, collect_images([images]), manifest.labels, out, 3)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == [images]
