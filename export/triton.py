"""A Triton Inference Server model repository from a build folder.

    REPO/<name>/config.pbtxt     platform, batch size, inputs/outputs, dynamic batching, instances
    REPO/<name>/labels.txt       class names, one a line (Triton's classification extension)
    REPO/<name>/1/model.plan     a TensorRT engine, or
    REPO/<name>/1/model.onnx     an ONNX graph for Triton's ONNX Runtime backend

Engines give their batch range and input dims from the sidecar's optimization
profiles; ONNX graphs from the graph itself, with the batch limit from --max-batch.
The folder is built beside REPO and renamed into place, so Triton (or a person) never
sees a half-written model.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runtime.core.artifacts import (
    ENGINE_SUFFIX,
    FP16,
    FP32,
    INT8,
    ONNX_NAME,
    TRITON_ONNX_NAME,
    TRITON_PLAN_NAME,
    check_precision,
    engine_path_for,
    onnx_for_precision,
)
from runtime.core.engine_meta import EngineMeta, describe_profiles, read_sidecar
from runtime.core.errors import UserError
from runtime.core.flavours import TENSORRT
from runtime.core.manifest import INPUT_NAME, OUTPUT_NAME, UINT8_INPUT, Manifest, load_manifest

from .graph_edit import load_onnx
from .outputs import refuse_repository_path
from .triton_files import (
    MARKER,
    check_width,
    copy_model_file,
    labels_text,
    model_name,
    pbtxt_string,
    refuse_foreign,
    staging_parent,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 32  # ONNX graphs have no profile; Triton needs a limit to batch requests
QUEUE_DELAY_US = 1000  # how long Triton may hold a request to fill a preferred batch
LABELS_FILE = "labels.txt"
TRITON_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8"}


@dataclass(frozen=True)
class TritonModel:
    """What config.pbtxt says about one model."""

    name: str
    platform: str  # "tensorrt_plan" | "onnxruntime_onnx"
    max_batch_size: int
    input_dtype: str  # "float32" | "uint8"
    input_dims: list[int]  # without the batch axis; -1 where dynamic
    num_classes: int
    preferred_batch_sizes: list[int]
    instances: int = 1

    @property
    def input_format(self) -> str:
        return "FORMAT_NHWC" if self.input_dtype == UINT8_INPUT else "FORMAT_NCHW"

    @property
    def instance_kind(self) -> str:
        # A plan runs only on a GPU; ONNX Runtime takes a GPU where Triton has one, else the CPU.
        return "KIND_GPU" if self.platform == "tensorrt_plan" else "KIND_AUTO"

    @property
    def model_file(self) -> str:
        return TRITON_PLAN_NAME if self.platform == "tensorrt_plan" else TRITON_ONNX_NAME


def config_pbtxt(model: TritonModel) -> str:
    """config.pbtxt in protobuf text format (Triton's ModelConfig message)."""

    def dims(values: list[int]) -> str:
        return "[ " + ", ".join(str(v) for v in values) + " ]"

    return f"""name: {pbtxt_string(model.name)}
platform: "{model.platform}"
max_batch_size: {model.max_batch_size}
input [
  {{
    name: "{INPUT_NAME}"
    data_type: {TRITON_DTYPES[model.input_dtype]}
    format: {model.input_format}
    dims: {dims(model.input_dims)}
  }}
]
output [
  {{
    name: "{OUTPUT_NAME}"
    data_type: TYPE_FP32
    dims: [ {model.num_classes} ]
    label_filename: {pbtxt_string(LABELS_FILE)}
  }}
]
dynamic_batching {{
  preferred_batch_size: {dims(model.preferred_batch_sizes)}
  max_queue_delay_microseconds: {QUEUE_DELAY_US}
}}
instance_group [
  {{
    count: {model.instances}
    kind: {model.instance_kind}
  }}
]
"""


def find_artifact(build_dir: Path, precision: str, fmt: str | None) -> Path:
    """The engine (preferred) or ONNX graph of `precision` in `build_dir`, or a UserError
    that says what to build first. With no `fmt`, a TensorRT-RTX engine is passed over for
    the ONNX graph: RTX engines are for RTX desktops, and Triton's tensorrt_plan backend
    runs TensorRT engines (asked for by `fmt="engine"`, describe_engine refuses it)."""
    onnx = onnx_for_precision(build_dir / ONNX_NAME, precision)
    engine = engine_path_for(onnx)
    first = {
        FP32: f"python -m export onnx --model <name> --out {build_dir}",
        FP16: f"python -m export fp16 {build_dir / ONNX_NAME}",
        INT8: f"python -m calibration {build_dir / ONNX_NAME} --data <images>",
    }[precision]
    if fmt == "engine":
        if engine.is_file():
            return engine
        raise UserError(f"{build_dir}: no {engine.name}; build it first: python -m export engine {onnx}")
    if fmt is None and engine.is_file():
        flavour = read_sidecar(engine).flavour
        if flavour == TENSORRT:
            return engine
        if not onnx.is_file():
            raise UserError(
                f"{engine}: built with {flavour}, which Triton's tensorrt_plan backend cannot run, and there is "
                f"no {onnx.name} to serve instead; build one ({first}) or an engine with --flavour tensorrt"
            )
        log.info(
            "%s was built with %s (for RTX desktops; Triton's tensorrt_plan backend runs TensorRT engines): "
            "using %s with the ONNX Runtime backend instead",
            engine.name,
            flavour,
            onnx.name,
        )
    if onnx.is_file():
        return onnx
    raise UserError(f"{build_dir}: no {onnx.name} or {engine.name}; build one first: {first}")


def describe_engine(engine: Path, manifest: Manifest, name: str, max_batch: int | None, instances: int) -> TritonModel:
    meta = read_sidecar(engine)
    if meta.flavour != TENSORRT:
        raise UserError(
            f"{engine}: built with {meta.flavour}; Triton's tensorrt_plan backend runs TensorRT engines only. "
            f"Build one with --flavour tensorrt, or export the ONNX graph: --format onnx"
        )
    if not meta.profiles:
        raise UserError(f"{engine}: its sidecar lists no optimization profile")
    source = engine.parent / Path(meta.source_onnx).name  # the output width is the graph's
    if source.is_file():
        check_width(source, load_onnx(source, load_external_data=False).graph, manifest, (manifest.declared_classes or 0))
    batch_max = max(p["max"][0] for p in meta.profiles)
    if max_batch is not None and not 1 <= max_batch <= batch_max:
        raise UserError(
            f"--max-batch {max_batch}: {engine.name}'s profiles allow 1..{batch_max} ({describe_profiles(meta)})"
        )
    top = max_batch or batch_max
    if min(p["min"][0] for p in meta.profiles) > 1:
        log.warning("%s: no profile takes batch 1; Triton sends single requests at batch 1", engine.name)
    log.info(
        "the Triton server must ship TensorRT %s (engines run only on the version that built them)",
        meta.library_version,
    )
    opts = sorted({p["opt"][0] for p in meta.profiles if p["opt"][0] <= top} | {top})
    return TritonModel(
        name, "tensorrt_plan", top, meta.input_dtype, _profile_dims(meta), (manifest.declared_classes or 0), opts, instances
    )


def _profile_dims(meta: EngineMeta) -> list[int]:
    """Input dims without batch: fixed where every profile fixes them, else -1."""
    rank = len(meta.profiles[0]["min"])
    dims = []
    for axis in range(1, rank):
        values = {p[k][axis] for p in meta.profiles for k in ("min", "max")}
        dims.append(values.pop() if len(values) == 1 else -1)
    return dims


def describe_onnx(onnx_path: Path, manifest: Manifest, name: str, max_batch: int | None, instances: int) -> TritonModel:
    from runtime.core.errors import require

    onnx = require("onnx", "export triton reads the graph's inputs with onnx: pip install -e '.[export]'")
    top = DEFAULT_MAX_BATCH if max_batch is None else max_batch
    if top < 1:
        raise UserError(f"--max-batch {top}: must be at least 1")
    graph = load_onnx(onnx_path, load_external_data=False).graph
    inputs = {i.name: i for i in graph.input}
    if INPUT_NAME not in inputs or OUTPUT_NAME not in {o.name for o in graph.output}:
        raise UserError(f"{onnx_path}: expected input '{INPUT_NAME}' and output '{OUTPUT_NAME}'")
    tensor = inputs[INPUT_NAME].type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
    if dtype not in TRITON_DTYPES:
        raise UserError(f"{onnx_path}: input '{INPUT_NAME}' is {dtype}; expected float32 or uint8")
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim][1:]
    check_width(onnx_path, graph, manifest, (manifest.declared_classes or 0))
    preferred = sorted({max(1, top // 2), top})
    return TritonModel(name, "onnxruntime_onnx", top, dtype, dims, (manifest.declared_classes or 0), preferred, instances)


def write_repository(
    build_dir: Path,
    repo: Path,
    precision: str = FP32,
    max_batch: int | None = None,
    fmt: str | None = None,
    name: str | None = None,
    instances: int = 1,
) -> Path:
    """Write REPO/<name>/ for the `precision` artifact in `build_dir`; returns that folder."""
    check_precision(precision, "--precision")
    if instances < 1:
        raise UserError(f"--instances {instances}: must be at least 1")
    if build_dir.is_file():
        raise UserError(f"{build_dir}: expected the build/<model>/ folder, got a file")
    if not build_dir.is_dir():
        raise UserError(f"{build_dir}: no such folder (expected build/<model>/ from python -m export onnx)")
    artifact = find_artifact(build_dir, precision, fmt)
    manifest = load_manifest(artifact)
    name = model_name(name, manifest)
    describe = describe_engine if artifact.suffix == ENGINE_SUFFIX else describe_onnx
    model = describe(artifact, manifest, name, max_batch, instances)
    if model.num_classes < 1:
        raise UserError(f"{manifest.path}: no labels and no arch.num_classes; cannot size the output 'logits'")
    labels = manifest.labels or [str(i) for i in range(model.num_classes)]
    labels_file = labels_text(labels, manifest.path)
    target = repo / name
    refuse_repository_path(repo, target, build_dir)
    refuse_foreign(target)
    try:
        repo.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=staging_parent(repo), prefix=".triton."))
        try:
            (tmp / "1").mkdir()
            copy_model_file(artifact, tmp / "1", model.model_file)
            (tmp / "config.pbtxt").write_text(config_pbtxt(model), encoding="utf-8")
            (tmp / LABELS_FILE).write_text(labels_file, encoding="utf-8")
            (tmp / MARKER).write_text(f"{artifact.name}\n", encoding="utf-8")
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the server may run as another user
            _swap_into_place(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:  # an OS error (exit 74), named by the folder asked for, not a temporary one
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot write the model repository ({reason})", str(target)) from None
    log.debug("wrote %s from %s (%s, max batch %d)", target, artifact.name, model.platform, model.max_batch_size)
    return target


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename the finished folder onto `target`. A folder cannot replace a non-empty one in
    one rename, so an old model is moved aside first and removed after: there is a moment
    with no model, never one with half a model."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(dir=tmp.parent, prefix=".triton.old."))
    os.replace(target, old / target.name)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old / target.name, target)  # put the old model back
        os.rmdir(old)
        raise
    shutil.rmtree(old)
