"""File names that are not UTF-8, or hold a newline, are written losslessly: JSONL and CSV stay
well-formed, and stdout keeps one line per image."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from runtime.app.classify import Writer
from tests.conftest import run_cli

NAMES = [b"caf\xe9.png", b"\xff\xfe-latin1.png", b"new\nline.png", b"tab\there.png", b"plain.png"]
BROKEN = b"broken-\xe9.png"


@pytest.fixture(scope="module")
def odd_names(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("names")
    for i, raw in enumerate(NAMES):
        Image.new("L", (8, 8), 30 * i).save(os.fsdecode(bytes(folder) + b"/" + raw), format="PNG")
    (folder / os.fsdecode(BROKEN)).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    return folder


def _expected(folder: Path) -> set[bytes]:
    return {bytes(folder) + b"/" + raw for raw in [*NAMES, BROKEN]}


def test_jsonl_is_ascii_json_and_gives_back_the_bytes(digits_export: Path, odd_names: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(odd_names), "--output", str(out))
    assert res.returncode == 3, res.stderr  # the broken file is skipped
    lines = out.read_bytes().decode("ascii").splitlines()
    rows = [json.loads(line) for line in lines]
    assert {os.fsencode(r["path"]) for r in rows} == _expected(odd_names)
    assert sum("error" in r for r in rows) == 1


def test_csv_keeps_the_bytes_and_its_rows(digits_export: Path, odd_names: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(odd_names), "--output", str(out))
    assert res.returncode == 3, res.stderr
    with open(out, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {os.fsencode(r["path"]) for r in rows} == _expected(odd_names)
    assert all(r["class1"] or r["error"] for r in rows)


def test_stdout_is_one_line_per_image(digits_export: Path, odd_names: Path) -> None:
    res = run_cli("runtime", "classify", str(digits_export / "model.onnx"), str(odd_names))
    assert res.returncode == 3 and "Traceback" not in res.stderr, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len(NAMES) + 1
    assert any("new\\nline.png" in line for line in lines) and any("caf\\udce9.png" in line for line in lines)
    assert any(line.startswith(str(odd_names / "plain.png") + ": ") for line in lines)  # plain names stay plain


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "text"])
def test_writer_on_a_strict_utf8_file(tmp_path: Path, fmt: str) -> None:
    """Ray's sink opens a plain UTF-8 file and hands it to the same Writer."""
    path = tmp_path / "out"
    name = os.fsdecode(b"/x/\xe9\n.png")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = Writer(fh, fmt, 1)
        writer.write({"path": name, "classes": [1], "labels": ["one"], "probs": [0.5]})
        writer.write({"path": name, "error": "bad\nfile"})
    data = path.read_bytes()
    assert (b"\xe9" in data) == (fmt == "csv")  # CSV keeps the raw bytes, the others escape them
    if fmt != "csv":
        assert len(data.splitlines()) == 2
