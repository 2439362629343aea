"""Reading the project's JSON records and fingerprinting files: what serving an engine needs
of the file system (runtime.core.atomic writes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def read_json(path: str | Path) -> Any:
    from .errors import UserError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:  # the parser recurses once per level: 100000 nested [ ends here
        raise UserError(f"{path}: not usable JSON (nested too deeply)") from None


def read_json_object(path: str | Path, what: str) -> dict[str, Any]:
    """The JSON object in `path`, or one UserError: "{path}: not {what}" (a list, a number...)."""
    from .errors import UserError

    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not {what} (expected a JSON object)")
    return data


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
