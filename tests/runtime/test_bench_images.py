"""bench --images gives figures only for images it decoded: none decodable is refused, some
unreadable is reported (exit 3, as classify)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from runtime.app.bench import readable_images
from runtime.app.images.inputs import collect_images
from runtime.app.images.pipeline import HostPipeline
from runtime.app.images.transform import ImageTransform
from runtime.core.preprocess import Preprocessing
from tests.conftest import run_cli


def _broken(folder: Path, n: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (10 + i))


def _bench(digits_export: Path, folder: Path) -> list[str]:
    return [str(digits_export / "model.onnx"), "--images", str(folder), "--batch", "2", "--seconds", "0"]


def test_no_decodable_image_is_refused(digits_export: Path, tmp_path: Path) -> None:
    _broken(tmp_path / "imgs", 3)
    res = run_cli("runtime", "bench", *_bench(digits_export, tmp_path / "imgs"), "--workers", "0")
    assert res.returncode == 3 and "img/s" not in res.stdout, res.stdout
    assert res.stderr.count("\n") == 1 and "no --images could be decoded" in res.stderr and "bad0.png" in res.stderr


def test_partly_unreadable_is_reported_and_timed_on_decoded_images(digits_export: Path, tmp_path: Path) -> None:
    _broken(tmp_path / "imgs", 1)
    for i in range(3):
        Image.new("L", (8, 8), 40 * i).save(tmp_path / "imgs" / f"ok{i}.png")
    res = run_cli("runtime", "bench", *_bench(digits_export, tmp_path / "imgs"), "--workers", "1")
    assert res.returncode == 3, res.stderr
    assert "end-to-end classify" in res.stdout and "skipped 1 unreadable of 4 --images" in res.stderr


def test_readable_images_sorts_the_decoded_from_the_rest(tmp_path: Path) -> None:
    _broken(tmp_path, 2)
    Image.new("RGB", (10, 12)).save(tmp_path / "good.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    cfg = Preprocessing(8, 1.0, "bilinear", (0.5,) * 3, (0.5,) * 3)
    with HostPipeline(ImageTransform(cfg), 2, 0) as pipeline:
        readable, note = readable_images(pipeline, collect_images([tmp_path]))
    assert readable == [tmp_path / "good.png"]
    assert "skipped 3 unreadable of 4" in note
