"""Command-line image arguments -> the image files to read, and the entries that cannot be.

Files named explicitly are always tried, whatever their suffix. Folders are walked
(symlinked folders followed, each real folder once); in them:
- a file with a suffix Pillow can open (`.gif` and `.tif` included) is read;
- a file with another suffix, or none, is read when Pillow recognises its content (an
  extensionless image, a `.heic` that is really a PNG), else skipped with that reason;
- passed over without a word: hidden entries (a name starting with ".": `.DS_Store`,
  macOS `._photo.jpg` resource forks, `.git/`) and the sidecar suffixes in SIDECARS
  (text, metadata, arrays) that live beside images in data sets.
Nothing else is dropped without a word: a broken link, a symlink loop, a folder that
cannot be listed or a named entry that is not a regular file comes back in `skipped`
with its reason, for the caller to report.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ...core.errors import UserError
from ...core.preprocess import ImageError, open_regular

log = logging.getLogger(__name__)

# Files that sit beside images in data sets and are not images: passed over in folders.
SIDECARS = frozenset(
    ".txt .md .rst .json .jsonl .csv .tsv .xml .yaml .yml .toml .ini .cfg .log .html .pdf "
    ".npy .npz .pt .pth .pkl .parquet .py .sh .zip .tar .gz .md5 .sha1 .sha256 .xmp .aae".split()
)


def image_suffixes() -> frozenset[str]:
    """Every file suffix that Pillow has a decoder for (not the save-only formats)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class ImageInputs:
    paths: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Every input accounted for: to be read, or skipped with a reason."""
        return len(self.paths) + len(self.skipped)


def _problem(path: Path) -> str | None:
    """Why `path` (which exists as a name) cannot be read as a file; None when it can."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link"
    except OSError as exc:  # ELOOP: a symlink loop; EACCES: a folder on the way is closed
        return exc.strerror or str(exc)
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def _unrecognised(path: Path) -> str | None:
    """Why a file of no known image suffix is not an image; None when Pillow recognises its
    content (it reads the header only; decoding, and its errors, come later)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with open_regular(path) as fh, Image.open(fh):
                return None
    except Image.DecompressionBombError:
        return None  # an image: the decoder refuses it later, with that reason
    except Image.UnidentifiedImageError:
        suffix = f"suffix {path.suffix}" if path.suffix else "no suffix"
        return f"not an image ({suffix}, and Pillow does not recognise the content)"
    except ImageError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable ({exc})"


class _Collector:
    def __init__(self) -> None:
        self.found = ImageInputs()
        self.suffixes = image_suffixes()
        self._seen_files: set[Path] = set()
        self._seen_dirs: set[tuple[int, int]] = set()

    def add_file(self, path: Path) -> None:
        """`path`, unless the file it reaches was added already (under any name or link)."""
        real = Path(os.path.realpath(path))
        if real not in self._seen_files:
            self._seen_files.add(real)
            self.found.paths.append(path)

    def skip(self, path: Path | str, reason: str) -> None:
        self.found.skipped.append(Skipped(str(path), reason))

    def add_named(self, path: Path) -> None:
        """An entry the user named (or a glob matched): always tried or reported."""
        if os.path.isdir(path):
            self.walk(path)
            return
        reason = _problem(path)
        if reason:
            self.skip(path, reason)
        else:
            self.add_file(path)

    def walk(self, root: Path) -> None:
        """Every file under `root`, folder by folder in sorted order (as os.walk, top down),
        from a stack rather than by recursion: a tree 1000 levels deep is just long."""
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)
            except OSError as exc:
                self.skip(folder, exc.strerror or str(exc))
                continue
            key = (st.st_dev, st.st_ino)
            if key in self._seen_dirs:  # a symlinked folder seen before: a cycle or a second route
                continue
            self._seen_dirs.add(key)
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as exc:
                self.skip(exc.filename or folder, f"cannot list folder ({exc.strerror or exc})")
                continue
            dirs: list[str] = []
            files: list[str] = []
            for entry in entries:
                try:
                    is_dir = entry.is_dir()  # follows symlinks, as os.walk(followlinks=True)
                except OSError:
                    is_dir = False
                (dirs if is_dir else files).append(entry.name)
            for name in sorted(files):
                path = Path(folder) / name
                suffix = path.suffix.lower()
                if name.startswith(".") or suffix in SIDECARS:
                    continue
                reason = _problem(path)
                if reason is None and suffix not in self.suffixes:
                    reason = _unrecognised(path)
                if reason:
                    self.skip(path, reason)
                else:
                    self.add_file(path)
            stack.extend(Path(folder) / d for d in sorted(dirs, reverse=True) if not d.startswith("."))


def _named(path: Path) -> bool:
    """Whether `path` is there as a name. A folder on the way that cannot be searched
    (EACCES) counts: the entry is then reported as "Permission denied", not as missing."""
    try:
        os.lstat(path)
    except PermissionError:
        return True
    except (OSError, ValueError):
        return False
    return True


def collect_images(items: list[str] | list[Path]) -> ImageInputs:
    """Files, folders (recursive) and glob patterns -> image paths, in order, deduplicated,
    plus every entry that cannot be read, with the reason. A name that matches nothing at
    all is an error (most often a typo), not a skip."""
    collector = _Collector()
    for item in items:
        path = Path(item)
        if _named(path):
            collector.add_named(path)
            continue
        try:
            matches = sorted(glob.glob(str(item), recursive=True))
        except RecursionError:  # `**` recurses once per folder level
            raise UserError(f"{item}: the pattern's folders are nested too deeply for a glob; name the folder") from None
        if not matches:
            raise UserError(f"{item}: no such file, directory or matching glob")
        for match in matches:
            collector.add_named(Path(match))
    return collector.found


def find_images(inputs: list[str] | list[Path]) -> list[Path]:
    """Files, directories (recursive) and glob patterns -> image paths in order, deduplicated.

    Entries that cannot be images (broken links, symlink loops, unreadable folders) are
    logged as warnings; callers that must account for every input use
    `collect_images`, which returns them."""
    found = collect_images(inputs)
    for skip in found.skipped:
        log.warning("skipped %s: %s", skip.path, skip.reason)
    return found.paths
