from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import convmixer
from export import onnx_export
from runtime.core.backends.onnxruntime import OnnxRuntimeRunner
from runtime.core.errors import UserError
from tests.conftest import run_cli


def test_onnx_has_named_dynamic_dims(tiny_random_export: Path) -> None:
    model = onnx.load(tiny_random_export / "model.onnx")
    (inp,) = model.graph.input
    (out,) = model.graph.output
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, dims) == ("images", ["batch", 3, "height", "width"])
    assert out.name == "logits"
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 10]
    assert {o.domain: o.version for o in model.opset_import}[""] == onnx_export.OPSET
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert list(tiny_random_export.iterdir()) and not list(tiny_random_export.glob("*.data"))


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (3, 3, 20, 40), (2, 3, 33, 33), (5, 3, 64, 48)])
def test_onnx_matches_pytorch_at_several_shapes(tiny_random_export: Path, shape: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    model = convmixer.create_model("convmixer_256_8")  # same seed as the export: same weights
    x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    with OnnxRuntimeRunner(tiny_random_export / "model.onnx", providers=["CPUExecutionProvider"]) as runner:
        out = runner.infer(x)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_manifest_records_random_init_and_hashes(tiny_random_export: Path) -> None:
    from runtime.core.io import sha256_file

    m = json.loads((tiny_random_export / "model.json").read_text())
    assert m["weights"]["source"] == "random-init"
    assert m["weights"]["checkpoint_sha256"] == "random-init, seed 3"
    assert m["onnx_sha256"] == sha256_file(tiny_random_export / "model.onnx")
    assert m["arch"]["patch_size"] == 2 and m["preprocessing"]["input_size"] == 32
    assert m["labels"][0] == "airplane" and m["opset"] == onnx_export.OPSET
    assert m["golden"]["source"].startswith("random")
    assert set(m["tools"]) >= {"torch", "onnx", "onnxruntime"}


def test_golden_holds_pytorch_logits_at_two_shapes(tiny_random_export: Path) -> None:
    golden = np.load(tiny_random_export / "golden.npz")
    shapes = {golden[k].shape[2:] for k in golden.files if k.startswith("input_")}
    assert len(shapes) >= 2
    torch.manual_seed(3)
    model = convmixer.create_model("convmixer_256_8")
    with torch.inference_mode():
        for i in range(len(shapes)):
            ref = model(torch.from_numpy(golden[f"input_{i}"])).numpy()
            np.testing.assert_allclose(golden[f"logits_{i}"], ref, rtol=1e-5, atol=1e-5)


def test_golden_from_images_and_bundled_weights(digits_export: Path) -> None:
    m = json.loads((digits_export / "model.json").read_text())
    assert m["weights"]["source"] == "bundled" and len(m["weights"]["checkpoint_sha256"]) == 64
    assert m["golden"]["source"].startswith("images from")
    golden = np.load(digits_export / "golden.npz")
    # the trained model recognises the sample digits (file names carry their labels)
    assert golden["logits_0"].shape == (8, 10)
    assert m["labels"] == [str(i) for i in range(10)]


def test_failed_export_leaves_no_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disagree(*args: object, **kwargs: object) -> None:
        raise UserError("ONNX export disagrees with PyTorch")

    monkeypatch.setattr(onnx_export, "verify_with_onnxruntime", disagree)
    with pytest.raises(UserError, match="disagrees"):
        onnx_export.export_onnx("convmixer_digits", out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def cli_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m export onnx` run once, from a checkpoint with EMA weights, for the tests below."""
    d = tmp_path_factory.mktemp("cli_export")
    state = convmixer.create_model("convmixer_digits").state_dict()
    torch.save({"state_dict": state, "state_dict_ema": state}, d / "ckpt.pth")
    res = run_cli(
        "export", "onnx", "--model", "convmixer_digits", "--checkpoint", str(d / "ckpt.pth"), "--out", str(d / "m"),
        "--no-ema", "--no-exif-transpose",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return d / "m"


def test_cli_end_to_end_and_bad_checkpoint(cli_export: Path, tmp_path: Path) -> None:
    assert {p.name for p in cli_export.iterdir()} == {"model.onnx", "model.json", "golden.npz"}

    bad = tmp_path / "bad.pth"
    torch.save(convmixer.create_model("convmixer_256_8", dim=8, depth=1).state_dict(), bad)
    res = run_cli(
        "export", "onnx", "--model", "convmixer_digits", "--checkpoint", str(bad), "--out", str(tmp_path / "x")
    )
    assert res.returncode == 2
    assert res.stderr.startswith("error: checkpoint does not fit convmixer_digits")
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x" / "model.onnx").exists()

    unknown = run_cli("export", "onnx", "--model", "convmixer_9_9")
    assert unknown.returncode == 2 and "registered:" in unknown.stderr


def test_manifest_records_exif_and_the_checkpoint_entry_used(cli_export: Path) -> None:
    m = json.loads((cli_export / "model.json").read_text())
    assert m["weights"]["state_dict_key"] == "state_dict"
    assert m["preprocessing"]["exif_transpose"] is False
    assert m["input"] == {"name": "images", "dtype": "float32", "layout": "NCHW"}


def test_default_export_turns_images_upright(tiny_random_export: Path) -> None:
    m = json.loads((tiny_random_export / "model.json").read_text())
    assert m["preprocessing"]["exif_transpose"] is True


def test_golden_images_skip_unreadable_files_and_list_them(
    digit_images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One corrupt file in --golden-images is skipped and named, as calibration does, and the
    golden batch is made of the readable images; a folder of only unreadable files is one error."""
    import shutil

    from export.onnx_export import GOLDEN_BATCH, _golden_inputs
    from runtime.core.manifest import InputSpec
    from runtime.core.preprocess import Preprocessing

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "00_corrupt.jpg").write_bytes(b"not a jpeg")
    for png in sorted(digit_images.glob("*.png"))[:3]:
        shutil.copy(png, folder / png.name)
    cfg = Preprocessing.from_dict(convmixer.get_variant("convmixer_digits").preprocessing.to_dict())
    spec = InputSpec.from_dict({"dtype": "float32"})
    with caplog.at_level("WARNING"):
        batches, source = _golden_inputs(cfg, spec, folder, 0)
    assert [b.shape[0] for b in batches] == [3, 3] and GOLDEN_BATCH > 3
    assert source.endswith("(1 unreadable skipped)")
    assert "00_corrupt.jpg" in caplog.text and "skipped 1 unreadable" in caplog.text
    for png in folder.glob("*.png"):
        png.unlink()
    with pytest.raises(UserError, match="no readable images found.*00_corrupt.jpg"):
        _golden_inputs(cfg, spec, folder, 0)
