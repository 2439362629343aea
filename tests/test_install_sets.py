"""The Jetson install sets (pyproject's jetpack6 and jetpack7 extras) resolve for manylinux aarch64
on JetPack's Python, without installing anything, and hold what docs/jetson.md says they hold.

The set is read from pyproject.toml with its markers evaluated for the Jetson (pip evaluates
markers for the machine it runs on, whatever --platform and --python-version say), then
`pip install --dry-run --report` resolves it against the package index for the Jetson's platform
tags and Python. The markers of the set's own dependencies are still pip's, for this machine.
The project itself is pure Python and is left out: its requirements are the set. Tests marked
`network` need the package index (CI has it)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tests.conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

PROJECT = "convmixer-deploy"
NUMPY1_VENV = ROOT / "tests" / "requirements-numpy1.txt"


@dataclass(frozen=True)
class Jetson:
    extra: str
    python: str
    glibc_minor: int  # Ubuntu's glibc: the newest manylinux_2_N wheel the device can load
    wanted: dict[str, str]  # package -> the major version it must resolve to ("" = any)
    banned: tuple[str, ...]  # substrings no resolved package name may contain


# TensorRT comes from JetPack; nothing of the export extra (its onnxruntime>=1.32 has no cp310 wheel).
COMMON_BANS = ("torch", "tensorrt", "onnxscript", "onnxconverter", "scikit-learn", "matplotlib")
SETS = [
    Jetson(
        "jetpack6",
        "3.10",
        35,
        {
            "numpy": "1",
            "cuda-python": "12",
            "cuda-bindings": "12",
            "cupy-cuda12x": "",
            "nvidia-nvimgcodec-tegra-cu12": "",
            "onnxruntime": "1",
            "pillow": "",
            "tqdm": "",
        },
        (*COMMON_BANS, "cu13", "cuda13x", "nvidia-nvjpeg"),
    ),
    Jetson(
        "jetpack7",
        "3.12",
        39,
        {
            "numpy": "",
            "cuda-python": "13",
            "cuda-bindings": "13",
            "cupy-cuda13x": "",
            "nvidia-nvimgcodec-cu13": "",
            "nvidia-nvjpeg": "13",
            "onnxruntime": "1",
            "pillow": "",
            "tqdm": "",
        },
        (*COMMON_BANS, "cu12", "cuda12x", "tegra"),
    ),
]


def jetson_environment(python: str) -> dict[str, str]:
    """Marker variables as a Jetson (Linux, aarch64, CPython `python`) has them."""
    env = {name: str(value) for name, value in default_environment().items()}
    env |= {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}
    return env | {"implementation_name": "cpython", "python_version": python, "python_full_version": f"{python}.0"}


def requirements(extra: str, env: dict[str, str]) -> list[str]:
    """The project's dependencies plus `extra` (and the project's extras it names), markers
    evaluated in `env`, as pip requirement lines without markers."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines, out, seen = [*project["dependencies"], *project["optional-dependencies"][extra]], [], {extra}
    while lines:
        req = Requirement(lines.pop(0))
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        if req.name == PROJECT:  # one of its own extras
            for name in sorted(req.extras - seen):
                seen.add(name)
                lines += project["optional-dependencies"][name]
            continue
        req.marker = None
        out += [str(req)]
    return out


def platforms(glibc_minor: int) -> list[str]:
    """pip takes the tags it is given, no older ones: manylinux2014 is the legacy name of 2_17."""
    tags = ["manylinux2014_aarch64", *(f"manylinux_2_{minor}_aarch64" for minor in range(17, glibc_minor + 1))]
    return [f"--platform={tag}" for tag in tags]


@pytest.mark.parametrize("jetson", SETS, ids=lambda j: j.extra)
def test_each_set_names_the_right_cuda_wheels_on_aarch64(jetson: Jetson) -> None:
    """Offline: the set as the Jetson's markers select it (pip on this machine would evaluate
    them for x86-64)."""
    names = {Requirement(r).name for r in requirements(jetson.extra, jetson_environment(jetson.python))}
    wheels = {n for n in jetson.wanted if n.startswith(("cupy", "nvidia-nvimgcodec", "cuda-python"))}
    assert wheels <= names
    assert not [n for n in names if any(b in n for b in jetson.banned)]


@pytest.mark.network
@pytest.mark.parametrize("jetson", SETS, ids=lambda j: f"{j.extra}-cp{j.python.replace('.', '')}")
def test_each_jetson_set_resolves_for_manylinux_aarch64(jetson: Jetson, tmp_path: Path) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("\n".join(requirements(jetson.extra, jetson_environment(jetson.python))) + "\n")
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
    cmd += ["--only-binary=:all:", *platforms(jetson.glibc_minor), "--python-version", jetson.python]
    cmd += ["--implementation", "cp", "--target", str(tmp_path / "target"), "--report", str(report), "-r", str(reqs)]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{jetson.extra} does not resolve for aarch64 cp{jetson.python}:\n{res.stderr[-3000:]}"

    resolved = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    got = {name: resolved.get(name, "missing") for name in jetson.wanted}
    assert "missing" not in got.values(), got
    majors = {name: got[name].split(".")[0] for name, major in jetson.wanted.items() if major}
    assert majors == {name: major for name, major in jetson.wanted.items() if major}, got
    assert not [n for n in resolved if any(b in n for b in jetson.banned)], resolved
    assert not (tmp_path / "target").exists()  # a dry run: nothing installed
    if jetson.extra == "jetpack6":  # the numpy-1 test venv (tests/test_numpy1.py) holds what it resolves to
        pinned = [Requirement(line.split("#")[0]) for line in NUMPY1_VENV.read_text().splitlines() if line[:1].isalpha()]
        assert {r.name: r.specifier.contains(resolved[r.name]) for r in pinned if r.name in ("numpy", "onnxruntime")} == {
            "numpy": True,
            "onnxruntime": True,
        }


def test_the_jetson_doc_names_only_extras_that_exist_and_commands_that_parse() -> None:
    """docs/jetson.md's pasteable lines: every `.[extra]` exists, and every `python -m export`
    or `python -m runtime` line parses (nothing is run)."""
    import re
    import shlex

    from export.__main__ import build_parser as export_parser
    from runtime.app.cli.main import build_parser as runtime_parser

    doc = (ROOT / "docs" / "jetson.md").read_text(encoding="utf-8")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    named = set(re.findall(r"\.\[([a-z0-9-]+)\]", doc))
    assert {"jetpack6", "jetpack7"} <= named and named <= set(extras)
    parsers = {"export": export_parser(), "runtime": runtime_parser()}
    commands = [line.split("  #")[0].split() for line in doc.splitlines() if line.startswith("python -m ")]
    assert len(commands) >= 8
    for words in commands:
        if words[2] in parsers:
            try:
                parsers[words[2]].parse_args(shlex.split(" ".join(words[3:])))
            except SystemExit:
                pytest.fail(f"docs/jetson.md: {' '.join(words)} does not parse")
