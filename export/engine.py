"""ONNX -> TensorRT engine, strongly typed, for TensorRT 10.x and 11.x. Never imports torch.

Precision comes from the graph (model.fp16.onnx, model.int8.onnx with Q/DQ): TensorRT 11
removed BuilderFlag.FP16/INT8 and the INT8 calibrators, and 10.x builds the same graphs
when the network is created strongly typed. So no precision flag is ever set here.

Written against the TensorRT 10.13 Python API (type-checked with tensorrt-stubs) and
NVIDIA's samples; where 11.x differs, the code says so.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.backends.cuda import default_cuda
from runtime.engine_meta import EngineMeta, sidecar_path
from runtime.errors import UserError, require_tensorrt
from runtime.io import atomic_path, sha256_file, write_bytes_atomic, write_json_atomic
from runtime.manifest import INPUT_NAME, load_manifest
from runtime.parity import precision_of

from .profiles import EngineOptions, engine_path_for, validate

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)

TRT_HINT = (
    "install TensorRT: `pip install -e '.[tensorrt]'` on x86-64 Linux with an NVIDIA driver; "
    "on Jetson use JetPack's TensorRT through a venv made with --system-site-packages. "
    "Without a GPU, `make demo` runs the pipeline on ONNX Runtime"
)


def check_prerequisites() -> tuple[str, str, str]:
    """(TensorRT version, GPU name, compute capability), or one UserError naming what is missing."""
    require_tensorrt(TRT_HINT)
    import tensorrt as trt

    try:
        gpu_name, capability = default_cuda().device()
    except UserError as exc:
        raise UserError(f"TensorRT is installed but no usable CUDA device: {exc}") from None
    return str(getattr(trt, "__version__", "unknown")), gpu_name, capability


def _progress_monitor_class() -> type | None:
    """A tqdm-backed IProgressMonitor where this TensorRT has one (10.0+), else None."""
    import tensorrt as trt

    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class TqdmProgressMonitor(trt.IProgressMonitor):
        """Shows TensorRT's top-level build phases; must be thread-safe."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._bars: dict[str, tqdm] = {}
            self._top: set[str] = set()

        def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
            # Bars for top-level phases and their direct children; deeper phases are too brief.
            with self._lock:
                depth = 0 if not parent_phase else (1 if parent_phase in self._top else 2)
                if depth == 0:
                    self._top.add(phase_name)
                if depth <= 1:
                    self._bars[phase_name] = tqdm(total=num_steps, desc=phase_name, leave=depth == 0, position=depth)

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                bar = self._bars.get(phase_name)
                if bar is not None:
                    bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                self._top.discard(phase_name)
                bar = self._bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()

    return TqdmProgressMonitor


def _parse(network: trt.INetworkDefinition, logger: trt.ILogger, onnx_path: Path) -> trt.OnnxParser:
    import tensorrt as trt

    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        lines = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            lines.append(f"  node {err.node()} {err.node_name()!r} ({err.node_operator()}): {err.desc()}")
        raise UserError(f"TensorRT's ONNX parser rejected {onnx_path}:\n" + "\n".join(lines))
    return parser


def _network_flags() -> int:
    import tensorrt as trt

    # Required on 10.x for graph-defined precision. TensorRT 11 networks are always strongly
    # typed; if a release drops the enum member, building without the flag is equivalent.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _configure(builder: trt.Builder, config: trt.IBuilderConfig, options: EngineOptions) -> trt.ITimingCache | None:
    import tensorrt as trt

    if options.workspace_mib:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib * 2**20)
    config.builder_optimization_level = options.opt_level
    for profile in options.profiles:
        p = builder.create_optimization_profile()
        p.set_shape(INPUT_NAME, trt.Dims(list(profile.min)), trt.Dims(list(profile.opt)), trt.Dims(list(profile.max)))
        if config.add_optimization_profile(p) < 0:
            raise UserError(f"TensorRT rejected optimization profile {profile.spec()}")
    cache = None
    if options.timing_cache is not None:
        data = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        cache = config.create_timing_cache(data)
        if cache is None or not config.set_timing_cache(cache, False):
            raise UserError(
                f"{options.timing_cache}: TensorRT could not use this timing cache (another TensorRT version?)"
            )
        log.info("timing cache %s (%s)", options.timing_cache, f"{len(data)} bytes" if data else "new")
    if options.hardware_compatibility == "ampere_plus":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    elif options.hardware_compatibility == "same_compute_capability":
        # Added in TensorRT 10.x after 10.0; older builds lack the member.
        level = getattr(trt.HardwareCompatibilityLevel, "SAME_COMPUTE_CAPABILITY", None)
        if level is None:
            raise UserError("this TensorRT has no same-compute-capability hardware compatibility level")
        config.hardware_compatibility_level = level
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.dla_core is not None:
        if builder.num_DLA_cores == 0:
            raise UserError("--dla-core given but this device has no DLA (DLA exists on Jetson AGX/NX Orin and Xavier)")
        if options.dla_core >= builder.num_DLA_cores:
            raise UserError(f"--dla-core {options.dla_core}: this device has {builder.num_DLA_cores} DLA cores")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    monitor_cls = _progress_monitor_class()
    if monitor_cls is not None:
        config.progress_monitor = monitor_cls()
    return cache


def build_engine(
    onnx_path: Path, options: EngineOptions | None = None, out: Path | None = None
) -> tuple[Path, EngineMeta]:
    """Build `model.<precision>.engine` and its `.engine.json` sidecar beside `onnx_path`."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise UserError(f"{onnx_path}: no such file")
    manifest = load_manifest(onnx_path)
    precision = precision_of(onnx_path.name)
    options = options or default_options(onnx_path)
    validate(options, manifest.patch_size, precision, str(manifest.data.get("arch", {}).get("act", "")))
    trt_version, gpu_name, capability = check_prerequisites()
    import tensorrt as trt

    engine_path = Path(out or engine_path_for(onnx_path))
    logger: trt.ILogger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags())
    parser = _parse(network, logger, onnx_path)
    config = builder.create_builder_config()
    cache = _configure(builder, config, options)

    log.info("building %s (%s, TensorRT %s, %s sm_%s)", engine_path.name, precision, trt_version, gpu_name, capability)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise UserError(f"TensorRT failed to build {engine_path.name}; its log above says why")
    del parser

    meta = EngineMeta(
        library_version=trt_version,
        gpu_name=gpu_name,
        compute_capability=capability,
        precision=precision,
        profiles=[p.to_dict() for p in options.profiles],
        source_onnx=onnx_path.name,
        source_onnx_sha256=sha256_file(onnx_path),
        build_seconds=round(seconds, 2),
        hardware_compatibility=options.hardware_compatibility,
        version_compatible=options.version_compatible,
        dla_core=options.dla_core,
        options=options.to_dict(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(memoryview(serialized))
        write_json_atomic(sidecar_path(engine_path), meta.to_dict())
    if cache is not None and options.timing_cache is not None:
        write_bytes_atomic(options.timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    log.info("built %s in %.1f s", engine_path, seconds)
    return engine_path, meta


def default_options(onnx_path: Path) -> EngineOptions:
    from .profiles import default_profile

    manifest = load_manifest(onnx_path)
    return EngineOptions(profiles=[default_profile(manifest.preprocessing.input_size)])
