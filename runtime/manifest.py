"""model.json: what the runtime needs to know about a model besides its graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import read_json
from .preprocess import Preprocessing

MANIFEST_NAME = "model.json"
GOLDEN_NAME = "golden.npz"
INPUT_NAME = "images"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class Manifest:
    path: Path
    data: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.data.get("model", "?"))

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing.from_dict(self.data.get("preprocessing") or {})

    @property
    def labels(self) -> list[str] | None:
        labels = self.data.get("labels")
        return list(labels) if labels else None

    @property
    def patch_size(self) -> int:
        return int(self.data.get("arch", {}).get("patch_size", 1))

    @property
    def random_init(self) -> bool:
        return self.data.get("weights", {}).get("source") == "random-init"


def precision_onnx(onnx_path: Path, precision: str) -> Path:
    """model.onnx -> model.fp16.onnx / model.int8.onnx beside it (fp32 is model.onnx itself)."""
    return (
        onnx_path if precision == "fp32" else onnx_path.with_name(onnx_path.name.replace(".onnx", f".{precision}.onnx"))
    )


def manifest_path_for(model_file: str | Path) -> Path:
    return Path(model_file).resolve().parent / MANIFEST_NAME


def find_manifest(model_file: str | Path) -> Manifest | None:
    """The model.json beside `model_file`, or None when there is none."""
    path = manifest_path_for(model_file)
    return load_manifest(model_file) if path.is_file() else None


def load_manifest(model_file: str | Path) -> Manifest:
    """The model.json beside `model_file` (an .onnx or .engine in build/<model>/)."""
    path = manifest_path_for(model_file)
    if not path.is_file():
        raise UserError(
            f"{path}: no such file; the runtime reads preprocessing and labels from the model.json "
            "that `python -m export onnx` writes beside the model files (copy it along)"
        )
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a model manifest")
    return Manifest(path, data)
