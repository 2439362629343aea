"""Folder walking: every file is read, reported as skipped with its reason, or (hidden
entries and sidecar files) passed over by a documented rule; the same for every command."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.app.images.datasets import open_image_set
from runtime.app.images.inputs import collect_images
from runtime.core.errors import UserError
from tests.conftest import run_cli


def _png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def odd_folder(tmp_path: Path) -> Path:
    root = tmp_path / "odd"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "good.png").write_bytes(_png_bytes(0))
    (root / "no_suffix").write_bytes(_png_bytes(1))  # an image without a suffix: read
    (root / "fake.heic").write_bytes(_png_bytes(2))  # really a PNG: read
    (root / "sub" / "UPPER.PNG").write_bytes(_png_bytes(3))
    (root / "real.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))  # HEIC Pillow cannot open
    (root / "blob").write_bytes(b"\x01\x02 not an image")  # no suffix, not an image
    (root / "scan.xyz").write_bytes(b"whatever this is")
    (root / "notes.txt").write_text("a sidecar")  # passed over
    (root / "labels.json").write_text("{}")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: passed over
    (root / "._good.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork
    (root / ".git" / "x.png").write_bytes(_png_bytes(4))  # inside a hidden folder
    return root


READ = {"good.png", "no_suffix", "fake.heic", "UPPER.PNG"}
SKIPPED = {"real.heic", "blob", "scan.xyz"}


def test_unknown_or_missing_suffixes_are_read_or_reported(odd_folder: Path) -> None:
    found = collect_images([odd_folder])
    assert {p.name for p in found.paths} == READ
    reasons = {Path(s.path).name: s.reason for s in found.skipped}
    assert set(reasons) == SKIPPED
    assert reasons["blob"].startswith("not an image (no suffix")
    assert reasons["real.heic"].startswith("not an image (suffix .heic")
    assert found.count == len(READ) + len(SKIPPED)


def test_named_files_are_always_tried(odd_folder: Path) -> None:
    found = collect_images([odd_folder / "notes.txt", odd_folder / ".DS_Store"])
    assert {p.name for p in found.paths} == {"notes.txt", ".DS_Store"}  # the decoder will say why not


def test_calibration_and_evaluate_walk_folders_alike(odd_folder: Path) -> None:
    from calibration.data import open_source
    from runtime.core.preprocess import Preprocessing

    cfg = Preprocessing(32, 1.0, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    images = open_image_set(str(odd_folder), None)
    assert {Path(k).name for k in images.keys} == READ
    assert {Path(s.path).name for s in images.skipped} == SKIPPED
    src = open_source(str(odd_folder), cfg, None)
    assert {Path(s.key).name for s in src.calibration + src.heldout} == READ
    assert {Path(s.split(": ")[0]).name for s in src.skipped} == SKIPPED


def test_classify_counts_and_outputs_the_unrecognised_files(
    digits_export: Path, odd_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.jsonl"
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(odd_folder), "--output", str(out))
    assert res.returncode == 3, res.stderr
    assert f"classified {len(READ)} of {len(READ) + len(SKIPPED)} images" in res.stderr
    assert all(name in res.stderr for name in SKIPPED)
    text = out.read_text()
    assert all(name in text for name in READ | SKIPPED) and "notes.txt" not in text and ".DS_Store" not in text


def test_a_folder_1000_levels_deep_is_walked_without_recursion(tmp_path: Path) -> None:
    deep = leaf = tmp_path / "deep"
    deep.mkdir()
    for _ in range(1000):  # one level at a time: Path.mkdir(parents=True) recurses too
        leaf = leaf / "d"
        leaf.mkdir()
    (leaf / "bottom.png").write_bytes(_png_bytes(5))
    (deep / "top.png").write_bytes(_png_bytes(6))
    try:
        found = collect_images([deep])
        with pytest.raises(UserError, match="nested too deeply for a glob; name the folder"):
            collect_images([f"{deep}/**/*.png"])
    finally:  # pytest's own clean-up (shutil.rmtree) recurses as deep as the tree
        (leaf / "bottom.png").unlink()
        while leaf != deep:
            leaf.rmdir()
            leaf = leaf.parent
    assert [p.name for p in found.paths] == ["top.png", "bottom.png"] and found.skipped == []


def test_walk_order_is_sorted_and_top_down(tmp_path: Path) -> None:
    for rel in ("b/2.png", "a/z/3.png", "a/1.png", "0.png", "a/y/4.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(_png_bytes(7))
    found = collect_images([tmp_path])
    rels = [p.relative_to(tmp_path).as_posix() for p in found.paths]
    assert rels == ["0.png", "a/1.png", "a/y/4.png", "a/z/3.png", "b/2.png"]


def test_inputs_are_deduplicated_by_the_file_they_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.png").write_bytes(_png_bytes(8))
    (tmp_path / "link.png").symlink_to(tmp_path / "dir" / "a.png")
    monkeypatch.chdir(tmp_path)
    found = collect_images([str(tmp_path / "dir"), "dir/a.png", "./dir/../dir/a.png", "link.png"])
    assert found.paths == [tmp_path / "dir" / "a.png"]


def _closed_folder(monkeypatch: pytest.MonkeyPatch, closed: Path) -> None:
    """Make every path under `closed` fail as under a folder without execute permission.

    Tests run as root (CI too), and root searches any folder, so chmod cannot show this;
    os.stat and os.lstat raise EACCES there instead, as the kernel does for other users."""
    import os

    real_stat, real_lstat = os.stat, os.lstat

    def refuse(real):  # type: ignore[no-untyped-def]
        def call(path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if str(path).startswith(str(closed) + os.sep):
                raise PermissionError(13, "Permission denied", str(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "stat", refuse(real_stat))
    monkeypatch.setattr(os, "lstat", refuse(real_lstat))


def test_a_file_under_a_closed_folder_is_permission_denied_not_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "a.png").write_bytes(_png_bytes(9))
    _closed_folder(monkeypatch, closed)
    found = collect_images([closed / "a.png"])
    assert found.paths == [] and [s.reason for s in found.skipped] == ["Permission denied"]


def test_a_closed_folder_as_another_user_is_permission_denied(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root searches any folder; the test above simulates it")
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "a.png").write_bytes(_png_bytes(9))
    closed.chmod(0o600)
    try:
        found = collect_images([closed / "a.png"])
    finally:
        closed.chmod(0o700)
    assert found.paths == [] and [s.reason for s in found.skipped] == ["Permission denied"]


@pytest.fixture(scope="module")
def deep_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Class folders 0..9 of digits, with class 3's images 1000 folders down."""
    from runtime.app.images.datasets import load_digits

    root = tmp_path_factory.mktemp("deep")
    test = load_digits("test")
    bottom = root / "3"
    bottom.mkdir()
    for _ in range(1000):  # one level at a time: Path.mkdir(parents=True) recurses too
        bottom = bottom / "d"
        bottom.mkdir()
    for i in range(40):
        label = int(test.labels[i])
        folder = bottom if label == 3 else root / str(label)
        folder.mkdir(exist_ok=True)
        test.image(i).save(folder / f"{i:02d}.png")
    yield root
    for png in bottom.iterdir():  # pytest's own clean-up (shutil.rmtree) recurses as deep as the tree
        png.unlink()
    while bottom != root / "3":
        bottom.rmdir()
        bottom = bottom.parent


@pytest.mark.parametrize(
    "command",
    [
        ["runtime", "classify", "{model}", "{data}"],
        ["runtime", "evaluate", "{model}", "--data", "{data}"],
        ["runtime", "bench", "{model}", "--images", "{data}", "--batch", "8", "--seconds", "0.1"],
        ["calibration", "{model}", "--data", "{data}", "--method", "max"],
    ],
    ids=["classify", "evaluate", "bench", "calibration"],
)
def test_every_command_walks_a_folder_1000_levels_deep(
    digits_export: Path, deep_tree: Path, tmp_path: Path, command: list[str]
) -> None:
    from tests.calibration.conftest import copy_export

    model = copy_export(digits_export, tmp_path / "m")
    res = run_cli(*[a.format(model=model, data=deep_tree) for a in command])
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and "RecursionError" not in res.stderr
    if command[1] == "classify":
        assert len(res.stdout.splitlines()) == 40
