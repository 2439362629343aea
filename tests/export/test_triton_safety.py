"""`export triton` never deletes what it did not write, writes files Triton's parser accepts
for any name it takes, serves a graph with its external data, refuses a graph that
disagrees with model.json, says which precision it picked, and writes onto a mount point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from runtime.core.io import sha256_file
from tests.conftest import run_cli
from tests.fakes import fake_tensorrt

PROFILE = [[[1, 3, 32, 32], [8, 3, 32, 32], [32, 3, 32, 32]]]


@pytest.fixture()
def build(digits_export: Path, tmp_path: Path) -> Path:
    return fake_tensorrt.copy_model_dir(digits_export, tmp_path / "build" / "convmixer_digits", ("model.onnx", "model.json"))


def _triton(build: Path, repo: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("export", "triton", str(build), "--out", str(repo), *extra)


def _one_line_refusal(res: subprocess.CompletedProcess[str], *says: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for text in says:
        assert text in lines[0], lines[0]


def _edit_manifest(build: Path, **changes: object) -> None:
    data = json.loads((build / "model.json").read_text())
    data.update(changes)
    (build / "model.json").write_text(json.dumps(data))


# -- never delete what it did not write ------------------------------------------------------
def test_a_users_folder_under_the_name_is_refused_and_kept(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "Documents" / "1").mkdir(parents=True)
    (repo / "Documents" / "taxes.pdf").write_bytes(b"mine")
    (repo / "Documents" / "config.pbtxt").write_text('name: "Documents"\n')  # even one that looks like a model
    _one_line_refusal(_triton(build, repo, "--name", "Documents"), "did not write")
    assert (repo / "Documents" / "taxes.pdf").read_bytes() == b"mine"
    assert sorted(p.name for p in (repo / "Documents").iterdir()) == ["1", "config.pbtxt", "taxes.pdf"]


def test_a_plain_file_or_link_under_the_name_is_refused_and_kept(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "notes").write_text("my notes\n")
    _one_line_refusal(_triton(build, repo, "--name", "notes"), "a file that export triton did not write")
    assert (repo / "notes").read_text() == "my notes\n"
    elsewhere = tmp_path / "elsewhere"
    assert _triton(build, elsewhere, "--name", "m").returncode == 0  # a folder it wrote, but reached by a link
    os.symlink(elsewhere / "m", repo / "linked")
    _one_line_refusal(_triton(build, repo, "--name", "linked"), "a link that export triton did not write")
    assert (elsewhere / "m" / "config.pbtxt").is_file()


def test_its_own_folder_is_replaced(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _triton(build, repo, "--max-batch", "8").returncode == 0
    res = _triton(build, repo, "--max-batch", "4")
    assert res.returncode == 0, res.stderr
    config = text_format.Parse((repo / "convmixer_digits" / "config.pbtxt").read_text(), mc.ModelConfig())
    assert config.max_batch_size == 4
    assert sorted(p.name for p in repo.iterdir()) == ["convmixer_digits"]


# -- valid files for any accepted name ---------------------------------------------------------
@pytest.mark.parametrize("name", ['say "hi"', "back\\slash", "ünïcode €"])
def test_names_with_quotes_and_backslashes_give_a_config_triton_parses(build: Path, tmp_path: Path, name: str) -> None:
    res = _triton(build, tmp_path / "repo", "--name", name)
    assert res.returncode == 0, res.stderr
    config = text_format.Parse((tmp_path / "repo" / name / "config.pbtxt").read_text(), mc.ModelConfig())
    assert config.name == name and config.output[0].label_filename == "labels.txt"


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\x07"])
def test_names_with_control_characters_are_refused(build: Path, tmp_path: Path, name: str) -> None:
    _one_line_refusal(_triton(build, tmp_path / "repo", "--name", name), "plain folder name")
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_a_label_with_a_line_break_is_refused(build: Path, tmp_path: Path) -> None:
    labels = [str(i) for i in range(10)]
    labels[3] = "three\nlines\r"
    _edit_manifest(build, labels=labels)
    _one_line_refusal(_triton(build, tmp_path / "repo"), "label 3", "line break")
    assert not (tmp_path / "repo" / "convmixer_digits").exists()


def test_labels_txt_has_one_line_per_class(build: Path, tmp_path: Path) -> None:
    labels = [f"class {i} \"quoted\" \\ back" for i in range(10)]
    _edit_manifest(build, labels=labels)
    assert _triton(build, tmp_path / "repo").returncode == 0
    assert (tmp_path / "repo" / "convmixer_digits" / "labels.txt").read_text().splitlines() == labels


@pytest.mark.parametrize("model", [None, "", 7, ["a"]])
def test_a_model_json_without_a_name_needs_name(build: Path, tmp_path: Path, model: object) -> None:
    _edit_manifest(build, model=model)
    _one_line_refusal(_triton(build, tmp_path / "repo"), "pass --name")
    assert not (tmp_path / "repo" / "None").exists()
    assert _triton(build, tmp_path / "repo", "--name", "digits").returncode == 0


# -- what must agree ----------------------------------------------------------------------------
def test_a_graphs_external_data_goes_with_it(build: Path, tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    onnx_path = build / "model.onnx"
    (build / "w").mkdir()
    onnx.save(onnx.load(str(onnx_path)), str(onnx_path), save_as_external_data=True, location="w/weights.bin")
    _edit_manifest(build, onnx_sha256=sha256_file(onnx_path))
    res = _triton(build, tmp_path / "repo")
    assert res.returncode == 0, res.stderr
    served = tmp_path / "repo" / "convmixer_digits" / "1"
    assert (served / "w" / "weights.bin").read_bytes() == (build / "w" / "weights.bin").read_bytes()
    session = ort.InferenceSession(str(served / "model.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"images": np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert out.shape == (1, 10)


def test_a_graph_narrower_than_model_json_is_refused(build: Path, tmp_path: Path) -> None:
    data = json.loads((build / "model.json").read_text())
    _edit_manifest(build, labels=[f"c{i}" for i in range(12)], arch={**data.get("arch", {}), "num_classes": 12})
    _one_line_refusal(_triton(build, tmp_path / "repo"), "has 10 classes, but model.json has 12")
    assert not (tmp_path / "repo" / "convmixer_digits").exists()
    # An engine's width is its source graph's, when that graph lies beside it.
    fake_tensorrt.write_engine(build / "model.int8.engine", PROFILE, build / "model.onnx", precision="int8")
    res = _triton(build, tmp_path / "repo", "--precision", "int8", "--format", "engine")
    _one_line_refusal(res, "model.onnx: output 'logits' has 10 classes, but model.json has 12")


# -- which precision, said --------------------------------------------------------------------------
def test_without_precision_the_most_compact_is_served_and_named(build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copyfile(build / "model.onnx", build / "model.fp16.onnx")  # stand-in: only its name matters here
    res = _triton(build, repo)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith(f"wrote {repo / 'convmixer_digits'} (fp16, ONNX graph)")
    fake_tensorrt.write_engine(build / "model.int8.engine", PROFILE, build / "model.onnx", precision="int8")
    res = _triton(build, repo)
    assert res.returncode == 0, res.stderr
    assert "(int8, TensorRT engine)" in res.stdout.strip().splitlines()[-1]
    assert (repo / "convmixer_digits" / "1" / "model.plan").is_file()
    res = _triton(build, repo, "--format", "onnx")
    assert "(fp16, ONNX graph)" in res.stdout.strip().splitlines()[-1]
    help_text = " ".join(run_cli("export", "triton", "--help").stdout.split())
    assert "--precision {fp32,fp16,int8}" in help_text and "default: the most compact one" in help_text


# -- file systems ---------------------------------------------------------------------------------
@pytest.mark.skipif(not (os.path.ismount("/dev/shm") and os.access("/dev/shm", os.W_OK)), reason="no /dev/shm mount")
def test_a_repository_that_is_a_mount_point_is_written_in_place(build: Path) -> None:
    """--out on a mount point: staging beside it would be another file system (EXDEV)."""
    name = f"i22a-triton-test-{os.getpid()}"
    repo = Path("/dev/shm")
    try:
        res = _triton(build, repo, "--name", name)
        assert res.returncode == 0, res.stderr
        assert (repo / name / "config.pbtxt").is_file() and (repo / name / "1" / "model.onnx").is_file()
        assert not [p for p in repo.iterdir() if p.name.startswith(".triton.")]
    finally:
        shutil.rmtree(repo / name, ignore_errors=True)
