"""Every numeric command-line option is range-checked and refused on one line (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

import calibration.__main__ as calibration_cli
import export.__main__ as export_cli
import runtime.app.cli.main as runtime_cli
from runtime.app.cli.options import OptionError, height_width, real, whole, whole_list
from runtime.app.images.pipeline import HostPipeline
from runtime.app.images.transform import ImageTransform
from runtime.core.manifest import load_manifest
from runtime.core.memory import check_pipeline_memory


def _all_actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {n}", a) for n, a in _all_actions(sub)]
        else:
            found.append((action.dest, action))
    return found


@pytest.mark.parametrize("build", [runtime_cli.build_parser, export_cli.build_parser])
def test_no_numeric_option_is_parsed_unchecked(build: Callable[[], argparse.ArgumentParser]) -> None:
    """The class: a bare int/float type accepts any size (or nan, or '²'); none may remain."""
    bare = [name for name, action in _all_actions(build()) if action.type in (int, float)]
    assert not bare, f"numeric options without a range check: {bare}"


BAD = [
    ("classify", "--batch", "300000000"),
    ("classify", "--batch", "1e8"),
    ("classify", "--batch", "0"),
    ("classify", "--batch", "\uff12"),  # a fullwidth 2: isdigit() is true, but not ASCII
    ("classify", "--workers", "100000"),
    ("classify", "--workers", "-1"),
    ("classify", "--topk", "1e8"),
    ("classify", "--topk", "0"),
    ("classify", "--gpus-per-worker", "nan"),
    ("classify", "--gpus-per-worker", "-1"),
    ("evaluate", "--batch", "-3"),
    ("evaluate", "--workers", "1e9"),
    ("bench", "--batch", "1,1e8"),
    ("bench", "--batch", "5000"),
    ("bench", "--size", "100000x100000"),
    ("bench", "--size", "2\u00b2x2"),  # '²'.isdigit() is True
    ("bench", "--seconds", "inf"),
    ("bench", "--seconds", "-1"),
    ("bench", "--workers", "99999999"),
]


def _positional(command: str) -> list[str]:
    extra = {"classify": ["x.png"], "evaluate": ["--data", "digits"], "bench": []}
    return extra.get(command, [])


@pytest.mark.parametrize(("command", "option", "value"), BAD)
def test_runtime_refuses_on_one_line(
    command: str, option: str, value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc = runtime_cli.main([command, str(tmp_path / "model.onnx"), *_positional(command), option, value])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {option} "), err


@pytest.mark.parametrize(
    "argv",
    [
        ["onnx", "--model", "convmixer_digits", "--seed", "-1"],
        ["engine", "m.onnx", "--opt-level", "9"],
        ["engine", "m.onnx", "--workspace", "0"],
        ["engine", "m.onnx", "--dla-core", "-1"],
        ["triton", "b", "--out", "r", "--max-batch", "1e8"],
        ["triton", "b", "--out", "r", "--instances", "0"],
    ],
)
def test_export_refuses_on_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert export_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --"), err


# --percentile and --max-drop are range-checked by calibration itself (tests/calibration/test_bad_input.py).
@pytest.mark.parametrize("argv", [["--limit", "0"], ["--limit", "1e9"], ["--limit", "\u0664"]])  # an Arabic-Indic 4
def test_calibration_refuses_on_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert calibration_cli.main(["m.onnx", "--data", "digits", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {argv[0]} "), err


def test_shapes_refuse_non_ascii_digits() -> None:
    from export.shapes import Profile
    from runtime.core.errors import UserError

    with pytest.raises(UserError, match="is not four sizes"):
        Profile.parse("1x3x2\u00b2x2:1x3x2x2:1x3x2x2")


def test_types_parse_what_they_should() -> None:
    assert whole("--n", 0, 10)("7") == 7 and whole("--n", -5, 5)("-5") == -5
    assert real("--s", 0, 10)("2.5") == 2.5 and real("--s", 0, 10)("1e-3") == 1e-3
    assert whole_list("--b", 1, 64)("1, 8,32") == [1, 8, 32]
    assert height_width("--size", 1, 8192)("224X320") == (224, 320)
    for parse, text in [(whole("--n", 0, 10), "1_0"), (real("--s", 0, 10), "\uff11"), (real("--s", 0, 10), "0x1")]:
        with pytest.raises(OptionError):
            parse(text)


def test_topk_over_the_class_count_is_refused(digits_export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = runtime_cli.main(["classify", str(digits_export / "model.onnx"), "x.png", "--topk", "11"])
    err = capsys.readouterr().err
    assert rc == 2 and "--topk 11" in err and "10 classes" in err, err


def test_bench_batch_too_big_for_memory_is_refused(digits_export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = runtime_cli.main(["bench", str(digits_export / "model.onnx"), "--batch", "4096", "--size", "8192x8192"])
    err = capsys.readouterr().err
    assert rc == 2 and "GiB" in err and err.count("\n") == 1, err


def test_decode_ring_that_shared_memory_cannot_hold_is_refused(
    digits_export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared slots that /dev/shm and the temp folder cannot back would end in SIGBUS."""
    import runtime.core.memory as budget
    from runtime.core.errors import UserError

    manifest = load_manifest(digits_export / "model.onnx")
    pipeline = HostPipeline(ImageTransform(manifest.preprocessing, manifest.input_spec), 32, 2)
    check_pipeline_memory(pipeline)  # fits on any test machine
    monkeypatch.setattr(budget, "_free_bytes", lambda folder: 1024)
    with pytest.raises(UserError, match="shared slots need"):
        check_pipeline_memory(pipeline)
    check_pipeline_memory(HostPipeline(pipeline.transform, 32, 0))  # no workers, no shared ring
