"""The `.engine.json` sidecar: where and how an engine was built, checked before loading.

A TensorRT engine runs only on the TensorRT version that built it (unless built
version-compatible) and only on GPUs of the compute capability it was built for
(unless built hardware-compatible); a TensorRT-RTX engine only on its release and its
target compute capabilities. The library's own failure in those cases is an obscure
deserialisation error; reading the sidecar first lets the runtime say what is wrong,
before the library is even imported. The sidecar also says which ONNX graph the engine
came from, which is checked against model.json (`check_provenance`), and the sha256 and
size of the engine's own bytes, which every reader of an engine checks (`check_engine_bytes`):
a sidecar describes one engine file, not whatever lies under its name.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from .artifacts import INT8, ONNX_NAME, calibration_path, sidecar_path
from .errors import UserError
from .flavours import TENSORRT_RTX
from .io import read_json, read_json_object, sha256_file
from .manifest import Manifest

log = logging.getLogger(__name__)

# GPUs TensorRT-RTX never targets, by compute capability: data-centre Hopper and the
# Jetson modules (Xavier 7.2, Orin 8.7, Thor 10.1 before CUDA 13 and 11.0 since).
_NOT_RTX = {"9.0": "Hopper", "7.2": "Jetson", "8.7": "Jetson", "10.1": "Jetson", "11.0": "Jetson"}


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
    flavour: str = "tensorrt"  # runtime.core.flavours: tensorrt | tensorrt-rtx
    target_compute_capabilities: list[str] = field(default_factory=list)  # RTX targets; [cc] for tensorrt
    built_with_gpu: bool = True
    tf32: bool = False  # FP32 engines: whether TF32 tensor-core maths was allowed
    input_dtype: str = "float32"  # runtime.core.manifest.InputSpec.dtype of the source graph
    hardware_compatibility: str = "none"  # none | ampere_plus | same_compute_capability
    version_compatible: bool = False
    dla_core: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    engine_sha256: str = ""  # of the engine file as written; "" in sidecars older than this field
    engine_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "sidecar") -> EngineMeta:
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except TypeError as exc:
            raise UserError(f"{where}: not an engine sidecar ({exc})") from None


@overload
def read_sidecar(engine: str | Path, allow_missing: Literal[False] = False, verify: bool = True) -> EngineMeta: ...
@overload
def read_sidecar(engine: str | Path, allow_missing: bool, verify: bool = True) -> EngineMeta | None: ...
def read_sidecar(engine: str | Path, allow_missing: bool = False, verify: bool = True) -> EngineMeta | None:
    """The engine's sidecar; None only when it is missing and `allow_missing` says that is fine
    (an engine built by trtexec, say; the library's own checks are then all there is).
    With `verify`, the engine file's bytes are checked against it (check_engine_bytes); a
    reader that checks the very bytes it then uses passes verify=False and calls that itself."""
    path = sidecar_path(engine)
    if not path.is_file():
        if allow_missing:
            log.warning(
                "%s: no sidecar; loading it anyway as asked (--no-sidecar): its TensorRT version, GPU and source "
                "ONNX are not checked here, only by TensorRT itself",
                engine,
            )
            return None
        raise UserError(
            f"{path}: no such file; an engine is only loaded with the sidecar `python -m export engine` writes "
            "beside it (it records the GPU and TensorRT version the engine needs). For an engine built by "
            "trtexec, pass --no-sidecar to rely on TensorRT's own checks"
        )
    meta = EngineMeta.from_dict(read_json_object(path, "an engine sidecar"), str(path))
    if verify:
        check_engine_bytes(meta, Path(engine))
    return meta


def check_engine_bytes(meta: EngineMeta, engine: Path, data: bytes | memoryview | None = None) -> None:
    """Refuse an engine whose bytes (`data`, or the file's) are not the ones its sidecar
    records: another model's engine, one copied over another precision's, or bytes under
    an edited sidecar. A sidecar without the record is refused too (anyone can drop a field)."""
    if not meta.engine_sha256:
        raise UserError(
            f"{engine}: its sidecar records no sha256 of the engine (written before engines were fingerprinted, "
            f"or edited), so these bytes cannot be trusted. {_rebuild_hint(meta)}"
        )
    if data is None:
        try:
            size, actual = engine.stat().st_size, sha256_file(engine)
        except FileNotFoundError:
            raise UserError(f"{engine}: no such file") from None
    else:
        size, actual = len(data), hashlib.sha256(data).hexdigest()
    if actual != meta.engine_sha256 or size != meta.engine_size:
        raise UserError(
            f"{engine}: sha256 {actual} ({size} bytes), but its sidecar {sidecar_path(engine).name} records "
            f"sha256 {meta.engine_sha256} ({meta.engine_size} bytes); the engine is not the one the sidecar "
            f"describes (copied over, or another build's). {_rebuild_hint(meta)}"
        )


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _library_name(meta: EngineMeta) -> str:
    return "TensorRT-RTX" if meta.flavour == TENSORRT_RTX else "TensorRT"


def _rebuild_hint(meta: EngineMeta) -> str:
    return f"Rebuild it here: python -m export engine {meta.source_onnx or '<model.*.onnx>'}"


def check_device(meta: EngineMeta, engine: Path, gpu: tuple[str, str] | None) -> None:
    """Refuse, before the library is touched, an engine this GPU (or its absence) cannot run.

    `gpu` is (name, compute capability) of the device the runner will use, or None when
    the machine has no CUDA GPU."""
    library = _library_name(meta)
    if gpu is None:
        raise UserError(f"{engine}: a {library} engine runs only on an NVIDIA GPU, and this machine has none")
    gpu_name, capability = gpu
    if meta.flavour == TENSORRT_RTX:
        family = _NOT_RTX.get(capability)
        targets = [str(t) for t in meta.target_compute_capabilities]
        if family is not None:
            raise UserError(
                f"{engine}: a TensorRT-RTX engine cannot run on {gpu_name} ({family}, compute capability "
                f"{capability}); TensorRT-RTX has no {family} support. Build one with --flavour tensorrt on this machine"
            )
        if targets and capability not in targets:
            raise UserError(
                f"{engine}: built by TensorRT-RTX for compute capabilities {', '.join(targets)}; this GPU is "
                f"{gpu_name} ({capability}). Rebuild it with --compute-capability {capability}"
            )
        return
    if meta.hardware_compatibility == "ampere_plus":
        ok = _version_tuple(capability) >= (8, 0)
        rule = "a hardware-compatible (Ampere+) engine needs compute capability 8.0 or newer"
    else:
        ok = capability == meta.compute_capability
        rule = "engines run only on GPUs of the compute capability they were built for"
    if not ok:
        raise UserError(
            f"{engine}: built for {meta.gpu_name} (compute capability {meta.compute_capability}), this GPU is "
            f"{gpu_name} ({capability}); {rule}. {_rebuild_hint(meta)}"
        )


def check_library(meta: EngineMeta, engine: Path, version: str) -> None:
    """Refuse an engine this library version cannot deserialise.

    TensorRT documents version-compatible engines (built with VERSION_COMPATIBLE, 8.6 or
    later) as forward compatible: they run on the same or any later TensorRT, the next
    major release included, never an earlier one. Other engines, and every TensorRT-RTX
    engine, run only on the exact release that built them."""
    built, here = _version_tuple(meta.library_version), _version_tuple(version)
    library = _library_name(meta)
    if meta.version_compatible and meta.flavour != TENSORRT_RTX:
        ok = here >= built
        rule = f"a version-compatible engine runs on TensorRT {meta.library_version} or later, not earlier"
    else:
        ok = built == here
        rule = f"engines run only on the {library} release that built them"
    if not ok:
        raise UserError(
            f"{engine}: built with {library} {meta.library_version}, this machine has {version}; {rule}. "
            f"{_rebuild_hint(meta)}"
        )


def check_provenance(meta: EngineMeta, engine: Path, manifest: Manifest) -> None:
    """Refuse an engine that was not built from this export's graphs.

    The sidecar records the sha256 of the ONNX the engine was built from; model.json
    records the sha256 of model.onnx, from which the golden logits were made. An engine
    of model.onnx must carry that hash. An engine of a derived graph (model.fp16.onnx,
    model.int8.onnx) must carry the hash of that graph as it lies beside it now, and an
    INT8 graph's calibration.json must name model.json's model.onnx as its source."""
    recorded = manifest.data.get("onnx_sha256")
    source = Path(meta.source_onnx).name
    if not recorded or not meta.source_onnx_sha256:
        log.debug("%s: no ONNX hash to compare (older model.json or sidecar)", engine)
        return
    mismatch = (
        f"{engine}: built from {source} (sha256 {meta.source_onnx_sha256[:12]}…), "
        "but {what}; the engine belongs to another export. " + _rebuild_hint(meta)
    )
    if source == ONNX_NAME:
        if meta.source_onnx_sha256 != recorded:
            raise UserError(mismatch.format(what=f"{manifest.path.name} records {ONNX_NAME} as {recorded[:12]}…"))
        return
    graph = engine.parent / source
    if graph.is_file():
        actual = sha256_file(graph)
        if actual != meta.source_onnx_sha256:
            raise UserError(mismatch.format(what=f"the {source} beside it is {actual[:12]}… (re-exported since?)"))
    else:
        log.debug("%s: %s is not beside it; its hash cannot be compared", engine, source)
    report = calibration_path(engine)
    if meta.precision == INT8 and report.is_file():
        data = read_json(report)
        if isinstance(data, dict) and data.get("int8_onnx_sha256") == meta.source_onnx_sha256:
            origin = str(data.get("source_onnx_sha256", ""))
            if origin and origin != recorded:
                raise UserError(
                    mismatch.format(
                        what=f"{report.name} says that graph came from a {ONNX_NAME} of sha256 {origin[:12]}…, "
                        f"and {manifest.path.name} records {recorded[:12]}…"
                    )
                )


def describe_profiles(meta: EngineMeta) -> str:
    return ", ".join(
        "(" + ",".join(map(str, p["min"])) + ")..(" + ",".join(map(str, p["max"])) + ")" for p in meta.profiles
    )
