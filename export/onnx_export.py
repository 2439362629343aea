"""PyTorch -> ONNX: model.onnx, model.json and golden.npz for one variant."""

from __future__ import annotations

import datetime
import logging
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import convmixer
from convmixer.checkpoint import load_into
from convmixer.registry import label_names, wnid_names
from runtime.app.images.inputs import find_images
from runtime.app.images.transform import ImageTransform
from runtime.core.artifacts import GOLDEN_NAME, MANIFEST_NAME, ONNX_NAME
from runtime.core.atomic import atomic_path, write_json_atomic
from runtime.core.errors import UserError
from runtime.core.io import sha256_file
from runtime.core.manifest import INPUT_NAME, OUTPUT_NAME, InputSpec
from runtime.core.parity import compare
from runtime.core.preprocess import ImageError, Preprocessing

log = logging.getLogger(__name__)

# Opset 18: the lowest opset the torch.export-based exporter emits natively (the
# TorchScript exporter is deprecated), and inside the 9..20 range that TensorRT 10.x's
# ONNX parser covers (JetPack 6 ships 10.3); TensorRT 11 parses it too. Opset 20 would
# only add a fused Gelu op, which TensorRT recovers from the Erf pattern anyway.
OPSET = 18
PROTOBUF_LIMIT = 2**31 - 1
GOLDEN_BATCH = 8


@dataclass(frozen=True)
class ExportResult:
    onnx: Path
    manifest: Path
    golden: Path


def check_shapes(size: int) -> list[tuple[int, int, int]]:
    """(batch, height, width) the export is verified at: square, non-square, and not a
    multiple of the patch."""
    return [(1, size, size), (3, size * 5 // 7, size * 8 // 7), (2, size + 1, size + 1)]


class Uint8Input(torch.nn.Module):
    """uint8 NHWC images in, the float NCHW the ConvMixer takes made inside the graph:
    cast, times 1/255, minus mean, over std, transpose. The same float32 operations in
    the same order as runtime.core.preprocess.to_tensor, so logits match the float graph's."""

    def __init__(self, model: torch.nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 1, 3))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 1, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.to(torch.float32) * (1.0 / 255.0) - self.mean) / self.std
        return self.model(x.permute(0, 3, 1, 2))


def random_inputs(spec: InputSpec, batch: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Random input of the graph's dtype and layout: uint8 pixels, or normal floats."""
    if spec.is_uint8:
        return rng.integers(0, 256, spec.shape(batch, height, width), dtype=np.uint8)
    return rng.standard_normal(spec.shape(batch, height, width), dtype=np.float32)


def _golden_inputs(
    cfg: Preprocessing, spec: InputSpec, images_dir: Path | None, seed: int
) -> tuple[list[np.ndarray], str]:
    size = cfg.input_size
    shapes = [(size, size), (size * 5 // 7, size * 8 // 7)]
    if images_dir is None:
        rng = np.random.default_rng(seed)
        return [random_inputs(spec, 2, h, w, rng) for h, w in shapes], f"random, seed {seed}"
    # Unreadable files are skipped and listed, as calibration does: the first GOLDEN_BATCH
    # images that decode make the golden batch.
    transforms = [ImageTransform(cfg, spec, size=(h, w)) for h, w in shapes]
    samples: list[list[np.ndarray]] = []
    skipped: list[str] = []
    for path in find_images([images_dir]):
        if len(samples) == GOLDEN_BATCH:
            break
        try:
            samples.append([t.from_path(path) for t in transforms])
        except ImageError as exc:
            skipped.append(str(exc))
    if skipped:
        log.warning("--golden-images: skipped %d unreadable: %s", len(skipped), "; ".join(skipped))
    if not samples:
        raise UserError(f"--golden-images {images_dir}: no readable images found" + (f" ({skipped[0]})" if skipped else ""))
    batches = [np.stack([s[i] for s in samples]) for i in range(len(shapes))]
    note = f" ({len(skipped)} unreadable skipped)" if skipped else ""
    return batches, f"images from {images_dir}{note}"


def _torch_export(model: torch.nn.Module, path: Path, size: int, patch: int, spec: InputSpec) -> None:
    dims = (
        torch.export.Dim("batch", min=1, max=4096),
        torch.export.Dim("height", min=patch, max=16384),
        torch.export.Dim("width", min=patch, max=16384),
    )
    example = torch.from_numpy(random_inputs(spec, 2, size, size, np.random.default_rng(0)))
    axes = (0, 1, 2) if spec.is_uint8 else (0, 2, 3)  # batch, height, width in the input's layout
    # The exporter warns about torchvision ops it cannot register; ConvMixer uses none.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=(dict(zip(axes, dims, strict=True)),),
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise UserError("torch.onnx.export returned no program")
    program.optimize()
    proto = program.model_proto
    # Name the dynamic dims as the contract says, whatever the exporter called them.
    for value, names in (
        (
            proto.graph.input[0],
            ("batch", "height", "width", None) if spec.is_uint8 else ("batch", None, "height", "width"),
        ),
        (proto.graph.output[0], ("batch", None)),
    ):
        for dim, name in zip(value.type.tensor_type.shape.dim, names, strict=False):
            if name is not None:
                dim.dim_param = name
    import onnx

    if proto.ByteSize() > PROTOBUF_LIMIT:
        raise UserError("the model is over protobuf's 2 GB limit; external-data export is not supported")
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())


def verify_with_onnxruntime(
    onnx_path: Path, model: torch.nn.Module, size: int, seed: int, spec: InputSpec | None = None
) -> None:
    """Run ONNX Runtime and PyTorch at several shapes; raise if they disagree.

    Calls the InferenceSession directly: this checks the graph, whatever its input dtype."""
    import onnxruntime as ort

    spec = spec or InputSpec()
    rng = np.random.default_rng(seed + 1)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch, height, width in check_shapes(size):
        x = random_inputs(spec, batch, height, width, rng)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
        result = compare(ref, out, "fp32")
        log.info(
            "export check %s: max|err| %.2e, cosine %.7f",
            "x".join(map(str, x.shape)),
            result.max_abs,
            result.min_cosine,
        )
        if not result:
            raise UserError(f"ONNX export disagrees with PyTorch at {x.shape}: {'; '.join(result.failures)}")


def export_onnx(
    name: str,
    checkpoint: Path | None = None,
    out_dir: Path | None = None,
    golden_images: Path | None = None,
    seed: int = 0,
    input_dtype: str = "float32",
    ema: bool | None = None,
    exif_transpose: bool = True,
) -> ExportResult:
    """Export variant `name` to `out_dir` (default build/<name>/), verified against PyTorch.

    `input_dtype` "uint8" makes the graph take uint8 NHWC images and normalise them
    itself; `ema` picks a checkpoint's EMA or raw weights (None: EMA when present);
    `exif_transpose` is recorded in model.json for every command that reads images."""
    variant = convmixer.get_variant(name)
    spec = InputSpec.from_dict({"dtype": input_dtype})
    cfg = Preprocessing.from_dict({**variant.preprocessing.to_dict(), "exif_transpose": exif_transpose})
    torch.manual_seed(seed)
    model = convmixer.create_model(name)
    weights: dict[str, object]
    if checkpoint is not None:
        loaded = load_into(model, checkpoint, name, ema=ema)
        weights = {
            "source": "checkpoint",
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_file(checkpoint),
            "state_dict_key": loaded.entry,
        }
    elif variant.bundled_weights:
        bundled = convmixer.WEIGHTS_DIR / variant.bundled_weights
        weights = {"source": "bundled", "checkpoint": bundled.name, "checkpoint_sha256": sha256_file(bundled)}
    else:
        weights = {
            "source": "random-init",
            "checkpoint": None,
            "checkpoint_sha256": f"random-init, seed {seed}",
            "seed": seed,
        }
        log.warning(
            "NO CHECKPOINT: %s gets seeded random weights (seed %d); its predictions are meaningless. "
            "Pass --checkpoint with released or trained weights.",
            name,
            seed,
        )

    out_dir = Path(out_dir or Path("build") / name)
    out_dir.mkdir(parents=True, exist_ok=True)
    size, patch = cfg.input_size, variant.patch_size
    graph: torch.nn.Module = Uint8Input(model, cfg.mean, cfg.std).eval() if spec.is_uint8 else model
    onnx_path, manifest_path, golden_path = out_dir / ONNX_NAME, out_dir / MANIFEST_NAME, out_dir / GOLDEN_NAME

    inputs, golden_source = _golden_inputs(cfg, spec, golden_images, seed)
    with atomic_path(onnx_path) as tmp_onnx:
        log.info("exporting %s to ONNX (opset %d, dynamic batch/height/width)", name, OPSET)
        _torch_export(graph, tmp_onnx, size, patch, spec)
        verify_with_onnxruntime(tmp_onnx, graph, size, seed, spec)
        golden = {}
        with torch.inference_mode():
            for i, x in enumerate(inputs):
                golden[f"input_{i}"] = x
                golden[f"logits_{i}"] = graph(torch.from_numpy(x)).numpy()
        with atomic_path(golden_path) as tmp_golden:
            with open(tmp_golden, "wb") as fh:
                np.savez(fh, **golden)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
            onnx_sha = sha256_file(tmp_onnx)
    # The manifest goes last: its ONNX hash is what later steps check, so a run cut short
    # before this point leaves a manifest that no longer matches and is not trusted.
    import onnx
    import onnxruntime

    manifest = {
        "format_version": 1,
        "model": name,
        "arch": variant.arch(),
        "preprocessing": cfg.to_dict(),
        "input": spec.to_dict(),
        "label_set": variant.labels,
        "labels": label_names(variant.labels),
        "wnids": wnid_names(variant.labels),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "dynamic_axes": {
            INPUT_NAME: {"0": "batch", "1": "height", "2": "width"}
            if spec.is_uint8
            else {"0": "batch", "2": "height", "3": "width"},
            OUTPUT_NAME: {"0": "batch"},
        },
        "opset": OPSET,
        "weights": weights,
        "onnx_sha256": onnx_sha,
        "golden": {"source": golden_source, "shapes": [list(x.shape) for x in inputs]},
        "tools": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(manifest_path, manifest)
    log.debug("wrote %s, %s, %s", onnx_path, manifest_path, golden_path)  # the command line prints them
    return ExportResult(onnx_path, manifest_path, golden_path)
