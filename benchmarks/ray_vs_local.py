"""Local classify against `classify --ray` on the same images: wall time and memory.

    python benchmarks/ray_vs_local.py build/convmixer_digits/model.onnx IMAGES... [--batch 32]

Each command runs as a user would run it, in its own process. Every second the script
reads the memory of that process and of all its descendants (for Ray: the local
cluster's GCS, raylet, decode workers and inference actors) from /proc (Linux only):
the driver's RSS, and the proportional set size (PSS) of the whole tree, which counts
memory shared between processes (Ray's object store) once. Ray's start-up is reported
apart from the classification itself, as the CLI prints it. The two outputs are then
compared file by file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    name: str
    wall: float = 0.0
    startup: float = 0.0
    classify: float = 0.0
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)  # t, driver RSS, tree PSS, procs


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass  # the thread or process ended between listing and reading
    return kids


def _tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def _kib(path: str, key: str) -> int:
    try:
        text = Path(path).read_text()
    except OSError:
        return 0
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def measure(name: str, argv: list[str], interval: float) -> tuple[Run, str]:
    run = Run(name)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVMIXER_LOG": "WARNING"}
    with tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime", *argv], env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        while proc.poll() is None:
            pids = _tree(proc.pid)
            driver = _kib(f"/proc/{proc.pid}/status", "VmRSS")
            pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
            run.samples.append((time.perf_counter() - start, driver / 1024, pss / 1024, len(pids)))
            time.sleep(interval)
        run.wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read()
    if proc.returncode not in (0, 3):
        sys.exit(f"{name} failed ({proc.returncode}):\n{stderr}")
    summary = next(line for line in stderr.splitlines() if line.startswith("classified "))
    run.classify = float(re.search(r" in ([\d.]+) s", summary).group(1))  # type: ignore[union-attr]
    startup = re.search(r"after ([\d.]+) s of Ray start-up", summary)
    run.startup = float(startup.group(1)) if startup else 0.0
    return run, summary


def rows(path: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {r["path"]: r for r in map(json.loads, path.read_text().splitlines())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help=".onnx or .engine file")
    parser.add_argument("images", nargs="+", help="image files or folders")
    parser.add_argument("--batch", type=int, default=32, help="images per batch (default 32)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between memory samples (default 1)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = {k: Path(tmp) / f"{k}.jsonl" for k in ("local", "ray")}
        base = ["classify", str(args.model), *args.images, "--batch", str(args.batch), "--topk", "1"]
        local, local_line = measure("local", [*base, "--output", str(out["local"])], args.interval)
        ray, ray_line = measure("ray", [*base, "--ray", "--output", str(out["ray"])], args.interval)
        a, b = rows(out["local"]), rows(out["ray"])
    same = set(a) == set(b) and all(a[p].get("classes") == b[p].get("classes") for p in a)
    print(f"local: {local_line}\nray:   {ray_line}")
    print(f"outputs: {len(a)} vs {len(b)} records; same files and top-1 classes: {same}\n")
    print("| run   | wall s | Ray start-up s | classify s | peak tree PSS MiB | peak driver RSS MiB |")
    print("|-------|-------:|---------------:|-----------:|------------------:|--------------------:|")
    for r in (local, ray):
        peak_pss = max(s[2] for s in r.samples)
        peak_rss = max(s[1] for s in r.samples)
        print(
            f"| {r.name:5} | {r.wall:6.1f} | {r.startup:14.1f} | {r.classify:10.1f} | {peak_pss:17.0f} | {peak_rss:19.0f} |"
        )
    print(f"\nray / local: wall {ray.wall / local.wall:.2f}x, classify alone {ray.classify / local.classify:.2f}x")
    for r in (local, ray):
        print(f"\n{r.name}: memory every {args.interval:g} s (t s: driver RSS MiB / tree PSS MiB / processes)")
        print("  " + "  ".join(f"{t:.0f}:{d:.0f}/{p:.0f}/{n}" for t, d, p, n in r.samples))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
