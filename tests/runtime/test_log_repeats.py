"""Repeated warnings are one line and a count; the first is shown whole, the rest at DEBUG."""

from __future__ import annotations

import subprocess
import sys

from runtime.app.cli.log_repeats import kind_of
from tests.conftest import ROOT

NOISE = """
import logging, warnings
from runtime.app.cli.options import setup_logging
setup_logging({verbose})
for i in range(54):  # onnxconverter-common, once per small weight
    warnings.warn(f"the float32 number -{{i + 1}}.5e-08 will be truncated to -1e-07")
for i in range(18):  # TensorRT, once per layer
    logging.getLogger("export.trt.log").warning("TensorRT: Converting conv activation scales to fp32 for '%s'", f"conv{{i}}")
logging.getLogger("export.onnx_export").warning("convmixer_768_32: NO CHECKPOINT given, random weights")
print("wrote model.onnx")
"""


def _run(verbose: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NOISE.format(verbose=verbose)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_repeated_warnings_are_summarised_with_a_count() -> None:
    res = _run(verbose=False)
    assert res.returncode == 0, res.stderr
    err = res.stderr
    assert err.count("will be truncated") == 2  # the first, and the summary line
    assert "and 53 more like it" in err
    assert err.count("Converting conv activation scales") == 2
    assert "and 17 more like it" in err
    assert err.count("NO CHECKPOINT") == 1
    assert len(err.splitlines()) < 12


def test_debug_shows_every_copy() -> None:
    err = _run(verbose=True).stderr
    assert err.count("will be truncated") == 54
    assert err.count("Converting conv activation scales") == 18
    assert "more like it" not in err


def test_kind_ignores_numbers_and_quoted_names() -> None:
    assert kind_of("the float32 number -9.6e-08 will be truncated") == kind_of(
        "the float32 number 1.5 will be truncated"
    )
    assert kind_of("Removing initializer 'a_zero_point'") == kind_of("Removing initializer 'b'")
    assert kind_of("NO CHECKPOINT") != kind_of("checkpoint loaded")


TWO_COMMANDS = """
import argparse, logging, sys
from runtime.app.cli.options import run_parsed
from runtime.core.errors import UserError

def command(args):
    for scale in args.scales:
        logging.getLogger("export.trt.log").warning("layer %r scale %s", args.layer, scale)
    if args.fail:
        raise UserError("boom")
    return 0

parser = argparse.ArgumentParser()
parser.add_argument("-v", "--verbose", action="store_true")
parser.add_argument("layer")
parser.add_argument("--fail", action="store_true")
parser.set_defaults(func=command, scales=[1.5, 2.5, 3.5])
print(run_parsed(parser, ["a", "--fail"]), run_parsed(parser, ["c"]), file=sys.stderr)
"""


def test_the_summary_comes_before_the_error_line_and_each_command_counts_its_own() -> None:
    """main() run twice in one process (as tests and notebooks do): the first command's
    summary precedes its error line, and the second command's first warning is shown."""
    res = subprocess.run(
        [sys.executable, "-c", TWO_COMMANDS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    lines = res.stderr.splitlines()
    error = lines.index("error: boom")
    assert "layer 'a' scale 1.5 ... and 2 more like it" in lines[error - 1]
    assert any("layer 'c' scale 1.5" in line and "more like it" not in line for line in lines[error + 1 :])
    assert "layer 'c' scale 1.5 ... and 2 more like it" in lines[-2] and lines[-1] == "2 0"
