"""evaluate: accuracy on a labelled folder or digits; skipped files are named and make exit 3."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from runtime.app.evaluate import labelled_batches
from runtime.app.images.datasets import load_digits
from runtime.core.errors import UserError
from runtime.core.preprocess import Preprocessing
from tests.conftest import run_cli

CFG = Preprocessing(32, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _class_tree(root: Path, per_class: int = 3) -> Path:
    test = load_digits("test")
    for i in range(len(test.labels)):
        folder = root / str(test.labels[i])
        folder.mkdir(parents=True, exist_ok=True)
        if len(list(folder.iterdir())) < per_class:
            test.image(i).save(folder / f"{i}.png")
    return root


def _bad_files(folder: Path) -> list[str]:
    """One file for each way a file can fail to decode."""
    (folder / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "text.jpg").write_text("not a jpeg")
    (folder / "empty.bmp").write_bytes(b"")
    return ["truncated.png", "text.jpg", "empty.bmp"]


def test_skipped_files_are_named_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _class_tree(tmp_path / "data")
    names = _bad_files(root / "4")
    with caplog.at_level(logging.WARNING):
        batches = list(labelled_batches(str(root), CFG, [str(i) for i in range(10)], 8))
    assert batches[-1][2] == len(names)
    assert sum(len(x) for x, _, _ in batches) == 30
    skip_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert len(skip_lines) == len(names)
    for name in names:  # each line says which file, not only why
        assert any(str(root / "4" / name) in line for line in skip_lines), skip_lines


def test_evaluate_exits_3_when_images_were_skipped(digits_export: Path, tmp_path: Path) -> None:
    root = _class_tree(tmp_path / "data")
    model = str(digits_export / "model.onnx")
    res = run_cli("runtime", "evaluate", model, "--data", str(root), "--json", "--workers", "0")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["skipped"] == 0
    _bad_files(root / "7")
    res = run_cli("runtime", "evaluate", model, "--data", str(root), "--json", "--workers", "2")
    assert res.returncode == 3, res.stderr
    out = json.loads(res.stdout)
    assert out["skipped"] == 3 and out["images"] == 30
    for name in ("truncated.png", "text.jpg", "empty.bmp"):
        assert str(root / "7" / name) in res.stderr


@pytest.mark.parametrize(
    ("folders", "message"),
    [
        (["0", "1", "12"], "class folder '12' is label 12, but the model has 10 classes"),
        ([f"c{i:02d}" for i in range(11)], "class folder 'c10' is label 10, but the model has 10 classes"),
    ],
)
def test_labels_the_model_cannot_predict_are_refused(tmp_path: Path, folders: list[str], message: str) -> None:
    img = load_digits("test").image(0)
    for name in folders:
        (tmp_path / name).mkdir()
        img.save(tmp_path / name / "a.png")
    with pytest.raises(UserError, match=message):
        next(labelled_batches(str(tmp_path), CFG, [str(i) for i in range(10)], 4))


def test_digits_and_folders_come_through_one_reader() -> None:
    x, y, skipped = next(labelled_batches("digits", CFG, None, 16))
    test = load_digits("test")
    assert x.shape == (16, 3, 32, 32) and skipped == 0
    np.testing.assert_array_equal(y, test.labels[:16])


def test_wordnet_id_folders_map_by_the_models_wnids_not_sorted_order() -> None:
    from runtime.app.images.datasets import class_index

    wnids = ["n01440764", "n01443537", "n01484850", "n01491361"]
    subset = ["n01484850", "n01443537", "n01484850"]  # great white shark, goldfish
    assert class_index(subset, ["tench", "goldfish", "great white shark", "tiger shark"], wnids) == {
        "n01443537": 1,
        "n01484850": 2,
    }


def test_evaluate_on_a_subset_of_wnid_folders(digits_export: Path, tmp_path: Path) -> None:
    """ImageNet-style val/<wnid>/ folders holding only some classes: model.json's `wnids`
    numbers them (sorted order would call the two classes 0 and 1)."""
    import shutil

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in ("model.onnx", "golden.npz"):
        shutil.copy(digits_export / name, model_dir / name)
    manifest = json.loads((digits_export / "model.json").read_text())
    manifest["wnids"] = [f"n{9000000 + i:08d}" for i in range(10)]
    (model_dir / "model.json").write_text(json.dumps(manifest))
    test = load_digits("test")
    root = tmp_path / "val"
    for i in range(len(test.labels)):
        if test.labels[i] in (3, 7):
            folder = root / f"n{9000000 + int(test.labels[i]):08d}"
            folder.mkdir(parents=True, exist_ok=True)
            test.image(i).save(folder / f"{i}.png")
    res = run_cli("runtime", "evaluate", str(model_dir / "model.onnx"), "--data", str(root), "--json", "--workers", "0")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["top1"] > 0.9
