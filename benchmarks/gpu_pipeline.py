"""Decoding and preprocessing on the GPU against the CPU path, step by step, in one table
from one run: decode per nvImageCodec backend, the exact resize + crop kernel, the whole
GPU pipeline against the CPU pipeline per core, and classify end to end.

    python benchmarks/gpu_pipeline.py [--images DIR] [--count 1024] [--batch 256]
        [--engine build/convmixer_768_32/model.fp16.engine] [--engine-ms 60] [--seconds 3]
    python benchmarks/gpu_pipeline.py --cpu-backend --count 8      # no GPU needed

Images: synthetic 500x375 photo-like JPEGs (scripts/bench_jpegs.py's generator, written
to a temporary folder), or every image under --images. Rates are images per second over
whole passes (each step warmed up once, then repeated for at least --seconds), with
nothing else running; "per core" is one worker process.

End to end: the GPU pipeline feeds a TensorRT engine when TensorRT is installed and
--engine is given (its model.json sets the preprocessing and input kind). Otherwise a
stand-in kernel busy-waits --engine-ms per batch on a stream of its own, and the table
says so: it shows whether the pipeline keeps up with an engine of that speed, but it
does not compete with the pipeline for the GPU's cores as a real engine does.

Without a GPU (or without CuPy / nvImageCodec) the run says so in one line and exits 2.
--cpu-backend runs only the rows that need no GPU: nvImageCodec's CPU backend, the numpy
reference of the resize (runtime/core/resample.py) and the CPU pipeline per core.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.app.bench import passes  # noqa: E402
from runtime.app.images.gpu import cupy, missing, nvimgcodec  # noqa: E402
from runtime.app.images.inputs import collect_images  # noqa: E402
from runtime.app.images.pipeline import HostPipeline  # noqa: E402
from runtime.app.images.transform import ImageTransform  # noqa: E402
from runtime.core import resample  # noqa: E402
from runtime.core.errors import UserError  # noqa: E402
from runtime.core.manifest import InputSpec, load_manifest  # noqa: E402
from runtime.core.preprocess import Preprocessing, open_image  # noqa: E402

# convmixer_768_32's preprocessing (timm's): used unless --engine brings its model.json.
DEFAULT_CFG = Preprocessing(224, 0.96, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# nvImageCodec backends a decoder can be restricted to, as the table names them.
DECODE_BACKENDS = {
    "HW_GPU_ONLY": "hardware JPEG decoder",
    "GPU_ONLY": "CUDA (nvJPEG, GPU Huffman)",
    "HYBRID_CPU_GPU": "nvJPEG hybrid (CPU Huffman, GPU IDCT)",
    "CPU_ONLY": "CPU (libjpeg-turbo)",
}
NUMPY_REFERENCE_IMAGES = 64  # the reference is slow; this many images give its rate


@dataclass
class Row:
    step: str
    what: str
    rate: str  # img/s, a ratio, or "-"
    note: str = ""


def rate_of(one_pass: Callable[[], int], seconds: float) -> float:
    """Images per second: one warm-up pass, then whole passes for at least `seconds`."""
    one_pass()
    images, elapsed = passes(one_pass, seconds)
    return images / elapsed


def synthetic_jpegs(out: Path, count: int, seed: int) -> list[Path]:
    """`count` photo-like 500x375 JPEGs from scripts/bench_jpegs.py's generator."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from bench_jpegs import synthetic_photo
    except ImportError as exc:
        raise UserError(f"scripts/bench_jpegs.py is not importable ({exc}); pass --images DIR") from None
    rng = np.random.default_rng(seed)
    paths = [out / f"bench_{i:05d}.jpg" for i in range(count)]
    for p in paths:
        synthetic_photo(rng).save(p, quality=90)
    return paths


def chunks(paths: list[str], batch: int) -> Iterator[list[str]]:
    for i in range(0, len(paths), batch):
        yield paths[i : i + batch]


class Bench:
    """The measurements; `cp` is None on the CPU-backend run."""

    def __init__(self, paths: list[str], args: argparse.Namespace, cfg: Preprocessing, cp: Any) -> None:
        self.paths, self.args, self.cfg, self.cp = paths, args, cfg, cp
        self.nv = nvimgcodec()
        self.params = self.nv.DecodeParams(apply_exif_orientation=cfg.exif_transpose, color_spec=self.nv.ColorSpec.SRGB)

    def decode(self, kind: str | None) -> Row:
        """nvImageCodec decode alone (headers parsed from the files, as the pipeline does)."""
        nv, cp, args = self.nv, self.cp, self.args
        label = "default (all backends)" if kind is None else f"{DECODE_BACKENDS[kind]}, {kind}"
        if cp is None:  # no GPU: the CPU backend is all there is
            decoder = nv.Decoder(device_id=nv.NVIMGCODEC_DEVICE_CPU_ONLY, backends=[nv.Backend(nv.CPU_ONLY)])
        else:
            backends = None if kind is None else [nv.Backend(getattr(nv.BackendKind, kind))]
            decoder = nv.Decoder(device_id=args.device, backends=backends, options=":fancy_upsampling=1")
        stream = None if cp is None else cp.cuda.Stream(non_blocking=True)

        def one_pass() -> int:
            done = 0
            for chunk in chunks(self.paths, args.batch):
                images = decoder.decode(
                    [nv.CodeStream(p) for p in chunk],
                    params=self.params,
                    cuda_stream=0 if stream is None else stream.ptr,
                )
                done += sum(im is not None for im in images)
            if stream is not None:
                stream.synchronize()
            return done

        if one_pass() < len(self.paths):
            return Row("decode", f"nvImageCodec {label}", "-", "not available here (some images came back None)")
        note = "on the host, nvImageCodec's CPU threads (one per core)" if kind == "CPU_ONLY" else ""
        return Row("decode", f"nvImageCodec {label}", f"{rate_of(one_pass, args.seconds):.0f}", note)

    def device_sources(self) -> list[Any]:
        """One batch of the images decoded on the GPU, as CuPy arrays."""
        from runtime.app.images.gpu.decode import BatchDecoder

        decoded = BatchDecoder(self.cfg.exif_transpose, self.args.device).decode(self.paths[: self.args.batch])
        self.cp.cuda.Device().synchronize()
        return [self.cp.asarray(d.image) if d.image is not None else self.cp.asarray(d.pixels) for d in decoded]

    def resize(self, batched: bool) -> Row:
        """The exact resize + crop kernel on already-decoded device images."""
        from runtime.app.images.gpu.resize import DeviceResizer

        cp = self.cp
        stream = cp.cuda.Stream(non_blocking=True)
        resizer = DeviceResizer(self.cfg, None, stream)
        sources = self.device_sources()
        out = cp.empty((len(sources), self.cfg.input_size, self.cfg.input_size, 3), dtype=cp.uint8)

        def one_pass() -> int:
            if batched:
                resizer.batch_into(sources, out)
            else:
                for j, im in enumerate(sources):
                    resizer.into(im, out[j])
            stream.synchronize()
            return len(sources)

        what = "CUDA kernel, one launch per pass per size" if batched else "CUDA kernel, launched per image"
        return Row("resize + crop", what, f"{rate_of(one_pass, self.args.seconds):.0f}", f"batch of {len(sources)}")

    def numpy_reference(self) -> Row:
        """resample.resize_crop on host pixels (what the kernel is tested against)."""
        pixels = [np.asarray(open_image(p)) for p in self.paths[:NUMPY_REFERENCE_IMAGES]]

        def one_pass() -> int:
            for px in pixels:
                resample.resize_crop(px, self.cfg)
            return len(pixels)

        rate = rate_of(one_pass, self.args.seconds)
        return Row("resize + crop", "numpy reference (resample.py)", f"{rate:.0f}", "one core; a reference, not a path")

    def pipeline(self, pipe: Any) -> float:
        """Files -> uint8 batches through a started pipeline (HostPipeline or DevicePipeline)."""

        def one_pass() -> int:
            return sum(len(b.ok) for b in pipe.batches(self.paths))

        return rate_of(one_pass, self.args.seconds)

    def classify(self, transform: ImageTransform) -> Row:
        """GPU pipeline -> engine, end to end."""
        from runtime.app.images.gpu.pipeline import DevicePipeline

        args = self.args
        with DevicePipeline(transform, args.batch, args.device) as pipe:
            if args.engine is not None and tensorrt_missing() is None:
                import runtime

                with runtime.load(args.engine, options=runtime.TensorRTOptions(device=args.device)) as runner:

                    def one_pass() -> int:
                        feed = (b.images for b in pipe.batches(self.paths) if b.images is not None)
                        return sum(len(logits) for logits in runner.infer_batches(feed))

                    rate = rate_of(one_pass, args.seconds)
                return Row("classify", f"TensorRT engine {args.engine.name}", f"{rate:.0f}", "end to end, real engine")
            wait = stand_in_engine(self.cp, args.engine_ms)
            engine_stream = self.cp.cuda.Stream(non_blocking=True)

            def stand_in_pass() -> int:
                done = 0
                for b in pipe.batches(self.paths):
                    if b.images is not None:
                        wait(b.images, engine_stream)
                        engine_stream.synchronize()  # the batch's memory is free again
                        done += len(b.ok)
                return done

            rate = rate_of(stand_in_pass, args.seconds)
        why = "--engine not given" if args.engine is None else tensorrt_missing()
        engine_alone = args.batch / args.engine_ms * 1000
        return Row(
            "classify",
            f"STAND-IN kernel, {args.engine_ms:g} ms per batch",
            f"{rate:.0f}",
            f"not a real engine ({why}); such an engine alone: {engine_alone:.0f} img/s",
        )


def tensorrt_missing() -> str | None:
    try:
        import tensorrt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return "TensorRT is not installed"
    return None if hasattr(tensorrt, "Builder") else "TensorRT is not installed (only its type stubs)"


def stand_in_engine(cp: Any, ms: float) -> Callable[[Any, Any], None]:
    """A kernel that reads the batch and spins on the GPU's clock for `ms` milliseconds."""
    kernel = cp.RawKernel(
        r"""
        extern "C" __global__ void spin(const unsigned char* batch, long long ns, unsigned char* sink) {
            unsigned long long t0, t;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
            do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < (unsigned long long)ns);
            sink[0] = batch[0];
        }
        """,
        "spin",
    )
    sink = cp.empty(1, dtype=cp.uint8)

    def run(batch: Any, stream: Any) -> None:
        kernel((1,), (1,), (batch, np.int64(ms * 1e6), sink), stream=stream)

    return run


def print_table(title: str, rows: list[Row]) -> None:
    print(title)
    head = f"{'step':<14} {'what':<52} {'img/s':>9}  note"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r.step:<14} {r.what:<52} {r.rate:>9}  {r.note}".rstrip())


def run(args: argparse.Namespace, paths: list[str], source: str) -> int:
    cfg, spec = DEFAULT_CFG, InputSpec("uint8")
    if args.engine is not None:
        manifest = load_manifest(args.engine)
        cfg, spec = manifest.preprocessing, manifest.input_spec
    cp = None if args.cpu_backend else cupy()
    bench = Bench(paths, args, cfg, cp)
    rows: list[Row] = []
    if cp is None:
        rows.append(bench.decode("CPU_ONLY"))
    else:
        rows += [bench.decode(kind) for kind in (None, *DECODE_BACKENDS)]
        rows += [bench.resize(batched=True), bench.resize(batched=False)]
    rows.append(bench.numpy_reference())

    u8 = ImageTransform(cfg, InputSpec("uint8"))
    with HostPipeline(u8, args.batch, workers=1) as host:
        cpu_rate = bench.pipeline(host)
    gpu_row = Row("pipeline", f"GPU: DevicePipeline, uint8 {cfg.input_size} px", "-", "needs a GPU")
    ratio = Row("pipeline", "GPU / CPU per core", "-", "target: at least 20x")
    if cp is not None:
        from runtime.app.images.gpu.pipeline import DevicePipeline

        with DevicePipeline(u8, args.batch, args.device) as pipe:
            gpu_rate = bench.pipeline(pipe)
        gpu_row = Row(gpu_row.step, gpu_row.what, f"{gpu_rate:.0f}", "files -> device batch; target: at least 10k")
        ratio = Row(ratio.step, ratio.what, f"{gpu_rate / cpu_rate:.1f}x", ratio.note)
    rows += [
        gpu_row,
        Row("pipeline", "CPU per core: HostPipeline, 1 worker", f"{cpu_rate:.0f}", "Pillow, exact"),
        ratio,
    ]
    if cp is not None:
        rows.append(bench.classify(ImageTransform(cfg, spec)))
    else:
        rows.append(Row("classify", "end to end", "-", "needs a GPU"))

    where = "no GPU: nvImageCodec's CPU backend" if cp is None else gpu_name(cp, args.device)
    title = (
        f"{where}; {len(paths)} images ({source}), batch {args.batch}, "
        f"{cfg.input_size} px {cfg.interpolation}, crop_pct {cfg.crop_pct}"
    )
    print_table(title, rows)
    return 0


def gpu_name(cp: Any, device: int) -> str:
    name = cp.cuda.runtime.getDeviceProperties(device)["name"]
    return str(name.decode() if isinstance(name, bytes) else name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", nargs="+", help="image files or folders (default: synthetic 500x375 JPEGs)")
    parser.add_argument("--count", type=int, default=1024, help="synthetic images to write (without --images; default 1024)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--batch", type=int, default=256, help="images per batch (default 256)")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per row, after a warm-up (default 3)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device (default 0)")
    parser.add_argument("--engine", type=Path, help="a TensorRT .engine (model.json beside it) for the classify row")
    parser.add_argument(
        "--engine-ms",
        type=float,
        default=60.0,
        help="the stand-in engine's milliseconds per batch when there is no real engine "
        "(default 60: batch 256 at about 4.3k img/s, assumed for an FP16 convmixer_768_32 engine)",
    )
    parser.add_argument("--cpu-backend", action="store_true", help="only the rows that need no GPU")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.count < 1 or args.engine_ms <= 0:
        parser.error("--batch, --count and --engine-ms must be positive")

    try:
        if args.cpu_backend:
            nvimgcodec()
        else:
            why = missing("tensorrt")  # the GPU path's own check: extra installed, a CUDA device
            if why is not None:
                print(f"error: no GPU for this benchmark ({why}); --cpu-backend runs the CPU rows", file=sys.stderr)
                return 2
        if args.images:
            paths = [str(p) for p in collect_images(args.images).paths]
            return run(args, paths, "from " + ", ".join(args.images))
        with tempfile.TemporaryDirectory(prefix="gpu_pipeline_") as tmp:
            paths = [str(p) for p in synthetic_jpegs(Path(tmp), args.count, args.seed)]
            return run(args, paths, "synthetic 500x375 JPEGs, quality 90")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
