from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.datasets import load_digits
from tests.conftest import ROOT, run_cli


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("imgs")
    test = load_digits("test")
    (root / "a" / "b").mkdir(parents=True)
    for i in range(12):
        folder = root if i < 6 else root / "a" / "b"
        test.image(i).save(folder / f"{i:02d}_label{test.labels[i]}.png")
    # odd but valid images of digit 0 from the test split, in other modes
    zero = next(i for i in range(len(test.labels)) if test.labels[i] == 0)
    img = test.image(zero)
    img.convert("RGBA").save(root / "rgba_label0.png")
    img.convert("CMYK").save(root / "cmyk_label0.jpg", quality=100)
    img.convert("P").save(root / "palette_label0.png")
    Image.fromarray(np.asarray(img, np.uint16) * 257).save(root / "sixteen_label0.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return root


def test_classify_writes_jsonl_and_reports_skips(digits_export: Path, image_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.jsonl"
    res = run_cli(
        "runtime",
        "classify",
        str(digits_export / "model.onnx"),
        str(image_tree),
        "--output",
        str(out),
        "--batch",
        "4",
        "--topk",
        "3",
        "--workers",
        "2",
    )
    assert res.returncode == 3, res.stderr  # something was skipped
    assert "broken.png" in res.stderr and "skipped 1 unreadable" in res.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 17
    errors = [r for r in rows if "error" in r]
    assert len(errors) == 1 and errors[0]["path"].endswith("broken.png")
    assert errors[0]["error"].startswith("unreadable image")  # the reason; the path is its own field
    good = [r for r in rows if "error" not in r]
    correct = sum(r["classes"][0] == int(Path(r["path"]).stem.split("label")[1]) for r in good)
    assert correct >= 15  # trained model on held-out digits, odd modes included
    assert all(len(r["classes"]) == 3 and r["labels"][0] == str(r["classes"][0]) for r in good)
    assert all(1.0 >= r["probs"][0] >= r["probs"][1] for r in good)


def test_classify_csv_glob_and_in_process(digits_export: Path, image_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    res = run_cli(
        "runtime",
        "classify",
        str(digits_export / "model.onnx"),
        str(image_tree / "a" / "**" / "*.png"),
        "--output",
        str(out),
        "--workers",
        "0",
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and all(r["error"] == "" and r["label1"] for r in rows)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    from runtime.core.errors import UserError
    from runtime.core.preprocess import open_image

    Image.new("L", (12000, 8000)).save(tmp_path / "bomb.png")
    with pytest.raises(UserError, match="decompression bomb"):
        open_image(tmp_path / "bomb.png")


def test_no_images_is_a_clear_error(digits_export: Path, tmp_path: Path) -> None:
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(tmp_path / "none*.png"))
    assert res.returncode == 2 and "no such file, directory or matching glob" in res.stderr


def test_folder_mode_reads_every_format_pillow_reads(digits_export: Path, tmp_path: Path) -> None:
    test = load_digits("test")
    names = ["a.gif", "b.tif", "c.tiff", "d.png", "e.ppm"]
    for i, name in enumerate(names):
        test.image(i).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image, not asked for")
    out = tmp_path / "p.jsonl"
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(tmp_path), "--output", str(out))
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == names and not any("error" in r for r in rows)
    assert "classified 5 of 5 images" in res.stderr


def test_every_input_is_classified_or_reported_with_its_reason(digits_export: Path, tmp_path: Path) -> None:
    load_digits("test").image(0).save(tmp_path / "good.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inner_loop.jpg").symlink_to(folder / "inner_loop.jpg")
    (folder / "cycle").symlink_to(folder)  # a folder cycle is walked once, not forever
    load_digits("test").image(1).save(folder / "ok.bmp")
    out = tmp_path / "p.csv"
    args = [str(tmp_path / n) for n in ("good.png", "loop.png", "dangling.jpg")] + [str(folder)]
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), *args, "--output", str(out))
    assert res.returncode == 3, res.stderr
    assert "classified 2 of 5 images" in res.stderr and "skipped 3 unreadable" in res.stderr
    rows = {Path(r["path"]).name: r for r in csv.DictReader(out.open())}
    assert set(rows) == {"good.png", "loop.png", "dangling.jpg", "inner_loop.jpg", "ok.bmp"}
    assert rows["loop.png"]["error"].startswith("Too many levels of symbolic links")  # no repeated path
    assert "Too many levels of symbolic links" in rows["inner_loop.jpg"]["error"]
    assert "broken symbolic link" in rows["dangling.jpg"]["error"]
    assert rows["good.png"]["error"] == "" and rows["ok.bmp"]["error"] == ""
    for name in ("loop.png", "dangling.jpg", "inner_loop.jpg"):
        assert name in res.stderr  # also said on stderr, not only in the file


def test_ctrl_c_stops_promptly_with_one_line(digits_export: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = tmp_path / "many"
    images.mkdir()
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for i in range(30):
        Image.fromarray(np.roll(noise, i, axis=1)).save(images / f"{i:03d}.jpg", quality=90)
    # Enough work that the run cannot finish before the signal lands, even on a loaded
    # machine: links to the real files are cheap to make and decode like any file.
    for i in range(30, 5000):
        (images / f"{i:04d}.jpg").symlink_to(images / f"{i % 30:03d}.jpg")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "runtime", "classify", str(digits_export / "model.onnx"), str(images)]
    proc = subprocess.Popen(
        [*cmd, "--batch", "2", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
        # and default Ctrl-C handling, as a terminal gives a foreground command: a runner that
        # started this test in the background (SIGINT ignored) must not pass that on, or
        # Python never turns SIGINT into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # classification is under way
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group gets SIGINT
    out, err = proc.communicate(timeout=30)  # a classify that ignores Ctrl-C fails here
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: interrupted; no partial artifact was kept"
    ]
    lines = [first, *out.splitlines(keepends=True)]
    assert all(re.fullmatch(r".+\.jpg: \d .+%\n", line) for line in lines if line), lines
    for _ in range(50):  # no worker (nor multiprocessing helper) left behind
        leftovers = subprocess.run(["pgrep", "-a", "-g", str(proc.pid)], capture_output=True, text=True).stdout
        if not leftovers:
            break
        time.sleep(0.1)
    assert leftovers == ""


def test_a_skipped_file_is_reported_once_on_stdout(digits_export: Path, tmp_path: Path) -> None:
    """Without --output the stdout record names the skipped file; no stderr WARNING repeats it.
    With --output the record is in the file, and stderr names the file once."""
    load_digits("test").image(0).save(tmp_path / "good.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"not a jpeg")
    model = str(digits_export / "model.onnx")
    res = run_cli("runtime", "classify", model, str(tmp_path), "--workers", "0")
    assert res.returncode == 3, res.stderr
    lines = [line for line in (res.stdout + res.stderr).splitlines() if "corrupt.jpg" in line]
    assert len(lines) == 1 and "corrupt.jpg: ERROR" in lines[0]
    res = run_cli("runtime", "classify", model, str(tmp_path), "--workers", "0", "--output", str(tmp_path / "p.csv"))
    assert res.returncode == 3 and len([line for line in res.stderr.splitlines() if "corrupt.jpg" in line]) == 1
