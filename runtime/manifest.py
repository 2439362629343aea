"""model.json: what the runtime needs to know about a model besides its graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .images.preprocess import Preprocessing
from .io import read_json

MANIFEST_NAME = "model.json"
GOLDEN_NAME = "golden.npz"
ONNX_NAME = "model.onnx"  # the FP32 graph; precision_onnx names the others
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
FLOAT_INPUT = "float32"
UINT8_INPUT = "uint8"


@dataclass(frozen=True)
class InputSpec:
    """What the graph's input `images` takes: float32 NCHW, normalised on the host (the
    default), or uint8 NHWC with the normalisation inside the graph (`--input uint8`)."""

    dtype: str = FLOAT_INPUT  # "float32" | "uint8"

    @property
    def layout(self) -> str:
        return "NHWC" if self.dtype == UINT8_INPUT else "NCHW"

    @property
    def is_uint8(self) -> bool:
        return self.dtype == UINT8_INPUT

    def shape(self, batch: int, height: int, width: int) -> tuple[int, int, int, int]:
        return (batch, height, width, 3) if self.is_uint8 else (batch, 3, height, width)

    def to_dict(self) -> dict[str, str]:
        return {"name": INPUT_NAME, "dtype": self.dtype, "layout": self.layout}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> InputSpec:
        dtype = str((d or {}).get("dtype", FLOAT_INPUT))
        if dtype not in (FLOAT_INPUT, UINT8_INPUT):
            raise UserError(f"model.json: input dtype {dtype!r} | expected {FLOAT_INPUT} or {UINT8_INPUT}")
        return cls(dtype)


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
    def input_spec(self) -> InputSpec:
        """model.json's `input` block; manifests written before it existed are float32 NCHW."""
        return InputSpec.from_dict(self.data.get("input"))

    @property
    def labels(self) -> list[str] | None:
        labels = self.data.get("labels")
        return list(labels) if labels else None

    @property
    def num_classes(self) -> int:
        """The model's output classes: arch.num_classes, else the label count."""
        arch = self.data.get("arch") or {}
        if "num_classes" in arch:
            return int(arch["num_classes"])
        return len(self.labels or []) or 1000

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
