"""An ONNX model whose external-data file is missing or cut short: one line, not a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from tests.calibration.conftest import copy_export
from tests.conftest import run_cli


def _with_external_data(digits_export: Path, folder: Path, fault: str) -> Path:
    onnx_path = copy_export(digits_export, folder)
    model = onnx.load(str(onnx_path))
    onnx.save(model, str(onnx_path), save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    data = folder / "model.onnx.data"
    if fault == "missing":
        data.unlink()
    elif fault == "truncated":
        data.write_bytes(data.read_bytes()[:100])
    return onnx_path


@pytest.mark.parametrize("fault", ["missing", "truncated"])
@pytest.mark.parametrize("command", [("export", "fp16"), ("calibration",)], ids=["export fp16", "calibration"])
def test_missing_external_data_is_one_line(
    digits_export: Path, tmp_path: Path, fault: str, command: tuple[str, ...]
) -> None:
    onnx_path = _with_external_data(digits_export, tmp_path / "build", fault)
    extra = ["--data", "digits", "--limit", "16"] if command == ("calibration",) else []
    res = run_cli(*command, str(onnx_path), *extra)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "model.onnx.data" in res.stderr.strip().splitlines()[-1]


def _edited(onnx_path: Path, edit: Callable[[onnx.ModelProto], None]) -> None:
    model = onnx.load(str(onnx_path), load_external_data=False)
    edit(model)
    onnx.save(model, str(onnx_path))


def _set_entry(key: str, value: str) -> Callable[[onnx.ModelProto], None]:
    def edit(model: onnx.ModelProto) -> None:
        tensor = next(t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL)
        entries = {e.key: e for e in tensor.external_data}
        if key in entries:
            entries[key].value = value
        else:
            tensor.external_data.add(key=key, value=value)

    return edit


def _wrong_dims(model: onnx.ModelProto) -> None:
    tensor = max(model.graph.initializer, key=lambda t: len(t.dims))
    tensor.dims[0] += 1


def _symlinked(onnx_path: Path) -> None:
    data = onnx_path.parent / "model.onnx.data"
    elsewhere = onnx_path.parent.parent / "elsewhere.data"
    data.rename(elsewhere)
    data.symlink_to(elsewhere)


FAULTS: dict[str, Callable[[Path], None]] = {
    "offset-abc": lambda p: _edited(p, _set_entry("offset", "abc")),
    "offset-negative": lambda p: _edited(p, _set_entry("offset", "-5")),
    "length-not-a-number": lambda p: _edited(p, _set_entry("length", "1e3")),
    "dims-not-the-data": lambda p: _edited(p, _wrong_dims),
    "symlinked-file": _symlinked,
}
MESSAGES = {  # runtime.core.onnx_files' rule words the first four; export.graph_edit the dims
    "offset-abc": "offset 'abc' is not a whole number of bytes",
    "offset-negative": "offset '-5' is not a whole number of bytes",
    "length-not-a-number": "length '1e3' is not a whole number of bytes",
    "dims-not-the-data": "bytes), but external-data length",
    "symlinked-file": "outside the model's folder",
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize(
    "command", [("export", "fp16"), ("calibration",), ("export", "triton")], ids=["fp16", "calibration", "triton"]
)
def test_bad_external_data_entries_are_one_line(
    digits_export: Path, tmp_path: Path, fault: str, command: tuple[str, ...]
) -> None:
    onnx_path = _with_external_data(digits_export, tmp_path / "build", "")
    FAULTS[fault](onnx_path)
    extra = {
        ("calibration",): ["--data", "digits", "--limit", "16"],
        ("export", "triton"): ["--out", str(tmp_path / "repo")],
    }.get(command, [])
    target = onnx_path.parent if command == ("export", "triton") else onnx_path
    res = run_cli(*command, str(target), *extra)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {onnx_path}: ") and MESSAGES[fault] in last, res.stderr


@pytest.mark.parametrize("command", [("export", "fp16"), ("calibration",)], ids=["fp16", "calibration"])
def test_initializer_dims_that_do_not_match_their_data_are_one_line(
    digits_export: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    onnx_path = copy_export(digits_export, tmp_path / "build")
    _edited(onnx_path, _wrong_dims)
    extra = ["--data", "digits", "--limit", "16"] if command == ("calibration",) else []
    res = run_cli(*command, str(onnx_path), *extra)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {onnx_path}: initializer ") and "the file is damaged or was edited" in last


def test_external_data_declaring_more_than_memory_is_refused_unread(digits_export: Path, tmp_path: Path) -> None:
    """A 2 TiB tensor in a sparse file: one line from the sizes declared, before onnx reads a byte."""
    onnx_path = _with_external_data(digits_export, tmp_path / "build", "")
    huge = onnx_path.parent / "huge.data"
    with huge.open("wb") as fh:
        fh.truncate(2 << 40)  # sparse: no disk space used
    model = onnx.load(str(onnx_path), load_external_data=False)
    tensor = model.graph.initializer.add(name="huge", data_type=onnx.TensorProto.FLOAT, dims=[1 << 39])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="huge.data")
    tensor.external_data.add(key="length", value=str(2 << 40))
    onnx.save(model, str(onnx_path))
    for command, extra in (
        (("export", "fp16"), []),
        (("calibration",), ["--data", "digits", "--limit", "16"]),
    ):
        res = run_cli(*command, str(onnx_path), *extra)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        last = res.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {onnx_path} (external-data weights) needs 2048.0 GiB, over "), last


def test_the_external_data_budget_is_the_batch_budget(
    digits_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from export.graph_edit import load_onnx
    from runtime.core import memory as memory_budget
    from runtime.core.errors import UserError

    onnx_path = _with_external_data(digits_export, tmp_path / "build", "")
    size = (onnx_path.parent / "model.onnx.data").stat().st_size
    monkeypatch.setattr(memory_budget, "physical_memory", lambda: size)  # half of it is the budget
    monkeypatch.setattr(onnx, "load_external_data_for_model", lambda *a: pytest.fail("read before the check"))
    with pytest.raises(UserError, match=r"\(external-data weights\) needs .* over half of this machine's"):
        load_onnx(onnx_path)


def test_dims_beyond_the_data_without_a_length_are_one_line(digits_export: Path, tmp_path: Path) -> None:
    """No `length`: onnx reads to the end of the file, so the dims are checked after reading."""
    onnx_path = _with_external_data(digits_export, tmp_path / "build", "")

    def drop_lengths_and_shrink(model: onnx.ModelProto) -> None:
        for t in model.graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                kept = [(e.key, e.value) for e in t.external_data if e.key != "length"]
                del t.external_data[:]
                for key, value in kept:
                    t.external_data.add(key=key, value=value)
        _wrong_dims(model)
        first = max(model.graph.initializer, key=lambda t: len(t.dims))
        first.dims[0] -= 2  # now fewer elements than the data holds

    _edited(onnx_path, drop_lengths_and_shrink)
    res = run_cli("export", "fp16", str(onnx_path))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "the file is damaged or was edited" in res.stderr.strip().splitlines()[-1]
