"""Output paths checked before any work: never an input, never an artifact of the model.

`export engine --out build/m/model.onnx` (or `model.json`) used to overwrite the source
graph or the manifest once the build was done. Each command names what it will write
and what it reads; a clash is refused up front, naming both. The same goes for a folder
that would shadow an importable package (`export triton --out triton` in the repository
root hides the `triton` package torch looks for).
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from runtime.core.atomic import same_file
from runtime.core.errors import UserError

# Packages this toolchain's dependencies import when they find them (torch probes for
# `triton`), whether or not they are installed here.
PROBED_PACKAGES = ("triton",)


def refuse_clobbering(outputs: Mapping[str, Path | None], inputs: Iterable[Path]) -> None:
    """UserError when an output (named by the option or role that chose it) is one of
    `inputs` (the same file, links included) or an existing folder; checked before the work."""
    inputs = list(inputs)
    for role, out in outputs.items():
        if out is None:
            continue
        clash = same_file(out, inputs)
        if clash is not None:
            raise UserError(f"{role} {out} would overwrite {clash}, an input of this step; choose another path")
        if Path(out).is_dir():
            raise UserError(f"{role} {out} is a folder; give a file path")


def shadowed_package(folder: Path) -> str | None:
    """The package name `folder` would hide from Python started in its parent folder (the
    current one, or any on sys.path), or None."""
    folder = Path(folder).resolve()
    parent, name = folder.parent, folder.name
    entries = [Path(p or ".").resolve() for p in sys.path]
    if parent != Path.cwd().resolve() and parent not in entries:
        return None
    if not name.isidentifier():
        return None  # never an import name
    if name in PROBED_PACKAGES or name in sys.builtin_module_names or name in sys.stdlib_module_names:
        return name
    elsewhere = [str(e) for e in entries if e != parent]
    return name if importlib.machinery.PathFinder.find_spec(name, elsewhere) is not None else None


def refuse_repository_path(repo: Path, target: Path, build_dir: Path) -> None:
    """Refuse a repository that would replace the build folder or hide an importable package."""
    if build_dir.resolve().is_relative_to(target.resolve()):
        raise UserError(f"--out {repo}: writing {target} would replace {build_dir}, the input; choose another folder")
    shadowed = shadowed_package(repo)
    if shadowed:
        raise UserError(
            f"--out {repo}: a folder named {shadowed!r} here hides the {shadowed!r} package from Python "
            f"(torch and this toolchain would import it); choose another name, e.g. model_repository"
        )
