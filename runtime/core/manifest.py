"""model.json: what the runtime needs to know about a model besides its graph."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .artifacts import MANIFEST_NAME
from .errors import UserError
from .io import read_json_object
from .preprocessing import Preprocessing, whole_in

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

    def __post_init__(self) -> None:
        if self.dtype not in (FLOAT_INPUT, UINT8_INPUT):
            raise UserError(f"input.dtype {self.dtype!r} | expected {FLOAT_INPUT} (NCHW) or {UINT8_INPUT} (NHWC)")

    @classmethod
    def from_dict(cls, d: Any) -> InputSpec:
        """model.json's `input` block (None: a manifest older than it, float32 NCHW)."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise UserError(f'input.dtype {d!r} | expected a block {{"dtype": "{FLOAT_INPUT}" or "{UINT8_INPUT}"}}')
        spec = cls(d.get("dtype", FLOAT_INPUT))
        if d.get("layout", spec.layout) != spec.layout:
            raise UserError(f"input.layout {d.get('layout')!r} | expected {spec.layout} for a {spec.dtype} input")
        return spec


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
    def wnids(self) -> list[str] | None:
        """ImageNet WordNet IDs in class order (ImageNet-1k variants), else None."""
        wnids = self.data.get("wnids")
        return list(wnids) if wnids else None

    @property
    def declared_classes(self) -> int | None:
        """The class count model.json states (arch.num_classes, else its labels); None when it states none."""
        arch = self.data.get("arch") or {}
        if "num_classes" in arch:
            return int(arch["num_classes"])
        return len(self.labels) if self.labels else None

    @property
    def patch_size(self) -> int:
        return int(self.data.get("arch", {}).get("patch_size", 1))

    @property
    def random_init(self) -> bool:
        weights = self.data.get("weights")
        return isinstance(weights, dict) and weights.get("source") == "random-init"


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
    data = read_json_object(path, "a model manifest")
    validate(path, data)
    return Manifest(path, data)


def validate(path: Path, data: dict[str, Any]) -> None:
    """Refuse a manifest with a field the runtime cannot use, naming the field and the file.

    Every field the runtime reads is checked when the manifest is loaded, so a bad value
    never reaches a resize (input_size 0), a normalisation (std NaN: every prediction
    "nan%") or a layout. The preprocessing and input blocks are checked by their own types
    (Preprocessing, InputSpec), the one place each rule is written."""

    def bad(field: str, value: Any, expected: str) -> UserError:
        return UserError(f"{path}: {field} {value!r} | expected {expected}")

    try:
        Preprocessing.from_dict(data.get("preprocessing"))
        InputSpec.from_dict(data.get("input"))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    arch = data.get("arch", {})
    if not isinstance(arch, dict):
        raise bad("arch", arch, "a block of the variant's parameters")
    for field in ("num_classes", "patch_size"):
        if field in arch and not whole_in(arch[field], 1, 1 << 20):
            raise bad(f"arch.{field}", arch[field], "a whole number from 1")
    weights = data.get("weights", {})
    if not isinstance(weights, dict) or not isinstance(weights.get("source", ""), str):
        raise bad("weights", weights, 'a block such as {"source": "random-init", ...}')
    for field, names, unit in (("labels", "names", "names"), ("wnids", "WordNet IDs", "IDs")):
        values = data.get(field)  # one name (or ID) per class, or null
        if values is None:
            continue
        if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
            raise bad(field, type(values).__name__, f"a list of {names}, or null")
        if "num_classes" in arch and values and len(values) != arch["num_classes"]:
            raise bad(field, f"{len(values)} {unit}", f"{arch['num_classes']} (arch.num_classes)")
    sha = data.get("onnx_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise bad("onnx_sha256", sha, "64 lower-case hex digits")
