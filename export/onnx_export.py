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
from convmixer.registry import label_names
from runtime.errors import UserError
from runtime.io import atomic_path, sha256_file, write_json_atomic
from runtime.manifest import GOLDEN_NAME, INPUT_NAME, MANIFEST_NAME, OUTPUT_NAME
from runtime.parity import compare
from runtime.preprocess import Preprocessing, find_images, load_and_preprocess

log = logging.getLogger(__name__)

# Opset 18: the lowest opset the torch.export-based exporter emits natively (the
# TorchScript exporter is deprecated), and inside the 9..20 range that TensorRT 10.x's
# ONNX parser covers (JetPack 6 ships 10.3); TensorRT 11 parses it too. Opset 20 would
# only add a fused Gelu op, which TensorRT recovers from the Erf pattern anyway.
OPSET = 18
ONNX_NAME = "model.onnx"
PROTOBUF_LIMIT = 2**31 - 1
GOLDEN_BATCH = 8


@dataclass(frozen=True)
class ExportResult:
    onnx: Path
    manifest: Path
    golden: Path


def check_shapes(size: int) -> list[tuple[int, int, int, int]]:
    """Shapes the export is verified at: square, non-square, and not a multiple of the patch."""
    return [(1, 3, size, size), (3, 3, size * 5 // 7, size * 8 // 7), (2, 3, size + 1, size + 1)]


def _golden_inputs(cfg: Preprocessing, images_dir: Path | None, seed: int) -> tuple[list[np.ndarray], str]:
    size = cfg.input_size
    shapes = [(size, size), (size * 5 // 7, size * 8 // 7)]
    if images_dir is None:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((2, 3, h, w), dtype=np.float32) for h, w in shapes], f"random, seed {seed}"
    paths = find_images([images_dir])[:GOLDEN_BATCH]
    if not paths:
        raise UserError(f"--golden-images {images_dir}: no images found (jpg, png, webp, bmp)")
    batches = [np.stack([load_and_preprocess(p, cfg, (h, w)) for p in paths]) for h, w in shapes]
    return batches, f"images from {images_dir}"


def _torch_export(model: torch.nn.Module, path: Path, size: int, patch: int) -> None:
    dims = (
        torch.export.Dim("batch", min=1, max=4096),
        torch.export.Dim("height", min=patch, max=16384),
        torch.export.Dim("width", min=patch, max=16384),
    )
    example = torch.randn(2, 3, size, size)
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
            dynamic_shapes=({0: dims[0], 2: dims[1], 3: dims[2]},),
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise UserError("torch.onnx.export returned no program")
    program.optimize()
    proto = program.model_proto
    # Name the dynamic dims as the contract says, whatever the exporter called them.
    for value, names in (
        (proto.graph.input[0], ("batch", None, "height", "width")),
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


def verify_with_onnxruntime(onnx_path: Path, model: torch.nn.Module, size: int, seed: int) -> None:
    """Run ONNX Runtime and PyTorch at several shapes; raise if they disagree."""
    from runtime.backends.onnxruntime import OnnxRuntimeRunner

    rng = np.random.default_rng(seed + 1)
    with OnnxRuntimeRunner(onnx_path, providers=["CPUExecutionProvider"]) as runner:
        for shape in check_shapes(size):
            x = rng.standard_normal(shape, dtype=np.float32)
            with torch.inference_mode():
                ref = model(torch.from_numpy(x)).numpy()
            result = compare(ref, runner.infer(x), "fp32")
            log.info(
                "export check %s: max|err| %.2e, cosine %.7f",
                "x".join(map(str, shape)),
                result.max_abs,
                result.min_cosine,
            )
            if not result:
                raise UserError(f"ONNX export disagrees with PyTorch at {shape}: {'; '.join(result.failures)}")


def export_onnx(
    name: str,
    checkpoint: Path | None = None,
    out_dir: Path | None = None,
    golden_images: Path | None = None,
    seed: int = 0,
) -> ExportResult:
    """Export variant `name` to `out_dir` (default build/<name>/), verified against PyTorch."""
    variant = convmixer.get_variant(name)
    torch.manual_seed(seed)
    model = convmixer.create_model(name, checkpoint=checkpoint)
    weights: dict[str, object]
    if checkpoint is not None:
        weights = {"source": "checkpoint", "checkpoint": str(checkpoint), "checkpoint_sha256": sha256_file(checkpoint)}
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
    cfg = Preprocessing.from_dict(variant.preprocessing.to_dict())
    size, patch = cfg.input_size, variant.patch_size
    onnx_path, manifest_path, golden_path = out_dir / ONNX_NAME, out_dir / MANIFEST_NAME, out_dir / GOLDEN_NAME

    inputs, golden_source = _golden_inputs(cfg, golden_images, seed)
    with atomic_path(onnx_path) as tmp_onnx:
        log.info("exporting %s to ONNX (opset %d, dynamic batch/height/width)", name, OPSET)
        _torch_export(model, tmp_onnx, size, patch)
        verify_with_onnxruntime(tmp_onnx, model, size, seed)
        golden = {}
        with torch.inference_mode():
            for i, x in enumerate(inputs):
                golden[f"input_{i}"] = x
                golden[f"logits_{i}"] = model(torch.from_numpy(x)).numpy()
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
        "preprocessing": variant.preprocessing.to_dict(),
        "label_set": variant.labels,
        "labels": label_names(variant.labels),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "dynamic_axes": {INPUT_NAME: {"0": "batch", "2": "height", "3": "width"}, OUTPUT_NAME: {"0": "batch"}},
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
    log.info("wrote %s, %s, %s", onnx_path, manifest_path, golden_path)
    return ExportResult(onnx_path, manifest_path, golden_path)
