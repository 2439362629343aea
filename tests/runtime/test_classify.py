from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.datasets import load_digits
from tests.conftest import run_cli


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
    from runtime.errors import UserError
    from runtime.preprocess import open_image

    Image.new("L", (12000, 8000)).save(tmp_path / "bomb.png")
    with pytest.raises(UserError, match="decompression bomb"):
        open_image(tmp_path / "bomb.png")


def test_no_images_is_a_clear_error(digits_export: Path, tmp_path: Path) -> None:
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(tmp_path / "none*.png"))
    assert res.returncode == 2 and "no such file, directory or matching glob" in res.stderr
