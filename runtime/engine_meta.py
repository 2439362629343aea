"""The `.engine.json` sidecar: where and how an engine was built, checked before loading.

A TensorRT engine runs only on the TensorRT version that built it (unless built
version-compatible) and only on GPUs of the compute capability it was built for
(unless built hardware-compatible). TensorRT's own failure in those cases is an obscure
deserialisation error; reading the sidecar first lets the runtime say what is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .io import read_json

SHAPE_KEYS = ("min", "opt", "max")


@dataclass
class EngineMeta:
    library_version: str  # of the flavour's library: TensorRT 10.13.0.35, TensorRT-RTX 1.7.1.116
    gpu_name: str | None  # the GPU present at build time; None when built without one (RTX ahead of time)
    compute_capability: str | None  # "8.7" of that GPU, or None
    precision: str
    profiles: list[dict[str, list[int]]]  # [{"min": [1,3,224,224], "opt": [...], "max": [...]}]
    source_onnx: str
    source_onnx_sha256: str
    build_seconds: float
    flavour: str = "tensorrt"  # runtime.flavours: tensorrt | tensorrt-rtx
    target_compute_capabilities: list[str] = field(default_factory=list)  # RTX targets; [cc] for tensorrt
    built_with_gpu: bool = True
    tf32: bool = False  # FP32 engines: whether TF32 tensor-core maths was allowed
    input_dtype: str = "float32"  # runtime.manifest.InputSpec.dtype of the source graph
    hardware_compatibility: str = "none"  # none | ampere_plus | same_compute_capability
    version_compatible: bool = False
    dla_core: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "sidecar") -> EngineMeta:
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except TypeError as exc:
            raise UserError(f"{where}: not an engine sidecar ({exc})") from None


def sidecar_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def read_sidecar(engine: str | Path) -> EngineMeta:
    path = sidecar_path(engine)
    if not path.is_file():
        raise UserError(
            f"{path}: no such file; an engine is only loaded with the sidecar `python -m export engine` writes "
            "beside it (it records the GPU and TensorRT version the engine needs)"
        )
    data = read_json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not an engine sidecar")
    return EngineMeta.from_dict(data, str(path))


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_compatible(meta: EngineMeta, engine: Path, trt_version: str, compute_capability: str, gpu_name: str) -> None:
    """Raise UserError if this TensorRT or GPU cannot run the engine described by `meta`."""
    built, here = _version_tuple(meta.library_version), _version_tuple(trt_version)
    if meta.version_compatible:
        ok = built[0] == here[0] and here >= built
        rule = f"a version-compatible engine needs TensorRT {built[0]}.x at or above {meta.library_version}"
    else:
        ok = built == here
        rule = "engines run only on the TensorRT version that built them"
    if not ok:
        raise UserError(
            f"{engine}: built with TensorRT {meta.library_version}, this machine has {trt_version}; {rule}. "
            "Rebuild it here: python -m export engine <model.*.onnx>"
        )
    if meta.hardware_compatibility == "ampere_plus":
        ok = _version_tuple(compute_capability) >= (8, 0)
        rule = "a hardware-compatible (Ampere+) engine needs compute capability 8.0 or newer"
    else:
        ok = compute_capability == meta.compute_capability
        rule = "engines run only on GPUs of the compute capability they were built for"
    if not ok:
        raise UserError(
            f"{engine}: built for {meta.gpu_name} (compute capability {meta.compute_capability}), this GPU is "
            f"{gpu_name} ({compute_capability}); {rule}. Rebuild it here: python -m export engine <model.*.onnx>"
        )


def profile_for(meta: EngineMeta, shape: tuple[int, ...]) -> int | None:
    """Index of the first profile whose min..max range holds `shape`, or None."""
    for i, profile in enumerate(meta.profiles):
        lo, hi = profile["min"], profile["max"]
        if len(shape) == len(lo) and all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return i
    return None


def describe_profiles(meta: EngineMeta) -> str:
    return ", ".join(
        "(" + ",".join(map(str, p["min"])) + ")..(" + ",".join(map(str, p["max"])) + ")" for p in meta.profiles
    )
