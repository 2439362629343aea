"""A test double for the slice of TensorRT and CUDA this project uses.

It lets CPU tests drive the real control flow of export.engine and the TensorRT runner:
profiles, flags, parser errors, timing caches, sidecars, tensor addressing, batch
splitting and return-value checks. The "engine" it builds runs the source ONNX file
with ONNX Runtime, so numbers that come back are real. It proves nothing about
TensorRT itself; the `trt`-marked tests do that on a machine with TensorRT.
"""

from __future__ import annotations

import enum
import itertools
import json
import types
from pathlib import Path
from typing import Any

import numpy as np

INPUT, OUTPUT = "images", "logits"


class _Enum:
    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _enum(*names: str) -> Any:
    return types.SimpleNamespace(**{n: _Enum(n, i) for i, n in enumerate(names)})


class FakeCuda:
    """CudaApi over numpy arrays; pointers are dictionary keys."""

    def __init__(self, name: str = "Fake GPU", capability: str = "8.7") -> None:
        self.name, self.capability = name, capability
        self.memory: dict[int, np.ndarray] = {}
        self._next = itertools.count(0x1000, 0x1000)
        self.streams: set[int] = set()
        self.copies = 0

    def device(self) -> tuple[str, str]:
        return self.name, self.capability

    def malloc(self, nbytes: int) -> int:
        ptr = next(self._next)
        self.memory[ptr] = np.zeros(nbytes, np.uint8)
        return ptr

    def free(self, ptr: int) -> None:
        del self.memory[ptr]

    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        ptr = self.malloc(nbytes)
        return ptr, self.memory[ptr]

    def free_host(self, ptr: int) -> None:
        self.free(ptr)

    def stream_create(self) -> int:
        s = next(self._next)
        self.streams.add(s)
        return s

    def stream_destroy(self, stream: int) -> None:
        self.streams.remove(stream)

    def synchronize(self, stream: int) -> None:
        assert stream in self.streams

    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self.memory[dst][:nbytes] = self.memory[src][:nbytes]
        self.copies += 1

    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self.memory[dst][:nbytes] = self.memory[src][:nbytes]
        self.copies += 1


def make_module(cuda: FakeCuda, version: str = "10.13.0.35", dla_cores: int = 0) -> types.ModuleType:
    """A fresh fake `tensorrt` module bound to `cuda`; `module.calls` records what was done."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    calls: dict[str, Any] = {
        "flags": [],
        "profiles": [],
        "builder_flags": [],
        "cleared_flags": [],
        "timing_cache_in": None,
    }
    trt.calls = calls  # type: ignore[attr-defined]
    trt.fail_build = False  # type: ignore[attr-defined]
    trt.fail_execute = False  # type: ignore[attr-defined]

    class Dims(list):  # type: ignore[type-arg]
        pass

    class _Severity(enum.IntEnum):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    class ILogger:
        Severity = _Severity

        def __init__(self) -> None:
            pass

        def log(self, severity: _Severity, msg: str) -> None:
            pass

    class Logger(ILogger):
        WARNING, ERROR, INFO = _Severity.WARNING, _Severity.ERROR, _Severity.INFO

        def __init__(self, severity: int = 2) -> None:
            self.severity = severity

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    trt.Dims, trt.Logger, trt.ILogger, trt.IProgressMonitor = Dims, Logger, ILogger, IProgressMonitor  # type: ignore[attr-defined]
    trt.ProfilingVerbosity = _enum("LAYER_NAMES_ONLY", "NONE", "DETAILED")  # type: ignore[attr-defined]
    trt.LayerInformationFormat = _enum("ONELINE", "JSON")  # type: ignore[attr-defined]
    trt.NetworkDefinitionCreationFlag = _enum("EXPLICIT_BATCH", "STRONGLY_TYPED")  # type: ignore[attr-defined]
    trt.MemoryPoolType = _enum("WORKSPACE")  # type: ignore[attr-defined]
    trt.BuilderFlag = _enum("FP16", "INT8", "GPU_FALLBACK", "VERSION_COMPATIBLE", "TF32")  # type: ignore[attr-defined]
    trt.DeviceType = _enum("GPU", "DLA")  # type: ignore[attr-defined]
    trt.HardwareCompatibilityLevel = _enum("NONE", "AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY")  # type: ignore[attr-defined]
    trt.TensorIOMode = _enum("NONE", "INPUT", "OUTPUT")  # type: ignore[attr-defined]
    trt.DataType = _enum("FLOAT", "HALF")  # type: ignore[attr-defined]

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.onnx: str | None = None

    class ParserError:
        def __init__(self, index: int, name: str, op: str) -> None:
            self._i, self._name, self._op = index, name, op

        def node(self) -> int:
            return self._i

        def node_name(self) -> str:
            return self._name

        def node_operator(self) -> str:
            return self._op

        def desc(self) -> str:
            return f"No importer registered for op: {self._op}"

    class OnnxParser:
        SUPPORTED = {
            "Conv",
            "Div",
            "Erf",
            "Add",
            "Mul",
            "BatchNormalization",
            "ReduceMean",
            "Reshape",
            "Gemm",
            "Relu",
            "Cast",
            "QuantizeLinear",
            "DequantizeLinear",
            "Constant",
            "Flatten",
        }

        def __init__(self, network: Network, logger: Logger) -> None:
            self.network, self.errors = network, []

        def parse_from_file(self, path: str) -> bool:
            import onnx

            model = onnx.load(path)
            self.errors = [
                ParserError(i, n.name, n.op_type)
                for i, n in enumerate(model.graph.node)
                if n.op_type not in self.SUPPORTED
            ]
            self.network.onnx = path
            return not self.errors

        @property
        def num_errors(self) -> int:
            return len(self.errors)

        def get_error(self, i: int) -> ParserError:
            return self.errors[i]

    class Profile:
        def __init__(self) -> None:
            self.shapes: dict[str, list[list[int]]] = {}

        def set_shape(self, name: str, lo: Dims, opt: Dims, hi: Dims) -> None:
            assert isinstance(lo, Dims) and isinstance(hi, Dims), "profiles take trt.Dims"
            self.shapes[name] = [list(lo), list(opt), list(hi)]

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = bytes(data)

        def serialize(self) -> bytes:
            return b"timing-cache:" + str(len(calls["profiles"])).encode()

    class Config:
        def __init__(self) -> None:
            self.builder_optimization_level = 3
            self.hardware_compatibility_level = trt.HardwareCompatibilityLevel.NONE
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.progress_monitor: Any = None
            self.pools: dict[str, int] = {}
            self.cache: TimingCache | None = None
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
            self.flags = {"TF32"}  # TensorRT's default: TF32 allowed

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pools[pool.name] = size

        def add_optimization_profile(self, profile: Profile) -> int:
            calls["profiles"].append(profile.shapes[INPUT])
            return len(calls["profiles"]) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache:
            calls["timing_cache_in"] = bytes(data)
            return TimingCache(data)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            self.cache = cache
            return True

        def get_timing_cache(self) -> TimingCache:
            assert self.cache is not None
            return self.cache

        def set_flag(self, flag: Any) -> None:
            calls["builder_flags"].append(flag.name)
            self.flags.add(flag.name)

        def clear_flag(self, flag: Any) -> None:
            calls["cleared_flags"].append(flag.name)
            self.flags.discard(flag.name)

        def get_flag(self, flag: Any) -> bool:
            return flag.name in self.flags

    class Builder:
        def __init__(self, logger: Logger) -> None:
            self.num_DLA_cores = dla_cores

        def create_network(self, flags: int) -> Network:
            calls["flags"].append(flags)
            return Network(flags)

        def create_builder_config(self) -> Config:
            calls["config"] = Config()
            return calls["config"]

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
            if trt.fail_build:  # type: ignore[attr-defined]
                return None
            detailed = config.profiling_verbosity is trt.ProfilingVerbosity.DETAILED  # type: ignore[attr-defined]
            return json.dumps({"onnx": network.onnx, "profiles": calls["profiles"], "detailed": detailed}).encode()

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine, self.shape, self.addresses, self.profile = engine, None, {}, 0

        def set_optimization_profile_async(self, index: int, stream: int) -> bool:
            self.profile = index
            return True

        def set_input_shape(self, name: str, dims: Dims) -> bool:
            lo, _, hi = self.engine.profiles[self.profile]
            if not all(a <= d <= b for a, d, b in zip(lo, dims, hi, strict=True)):
                return False
            self.shape = tuple(dims)
            return True

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = ptr
            return ptr in cuda.memory

        def execute_async_v3(self, stream: int) -> bool:
            if trt.fail_execute or self.shape is None:  # type: ignore[attr-defined]
                return False
            n = int(np.prod(self.shape))
            x = cuda.memory[self.addresses[INPUT]][: n * 4].view(np.float32).reshape(self.shape)
            (y,) = self.engine.session.run([OUTPUT], {INPUT: x.copy()})
            out = cuda.memory[self.addresses[OUTPUT]]
            out[: y.nbytes] = np.ascontiguousarray(y, np.float32).reshape(-1).view(np.uint8)
            return True

    class Engine:
        def __init__(self, blob: dict[str, Any]) -> None:
            import onnxruntime as ort

            self.session = ort.InferenceSession(blob["onnx"], providers=["CPUExecutionProvider"])
            self.onnx, self.detailed = blob["onnx"], bool(blob.get("detailed"))
            self.profiles = blob["profiles"]
            self.classes = int(self.session.get_outputs()[0].shape[-1])
            self.num_io_tensors = 2
            self.num_optimization_profiles = len(self.profiles)

        def get_tensor_name(self, i: int) -> str:
            return [INPUT, OUTPUT][i]

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if name == INPUT else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.DataType.FLOAT

        def get_tensor_profile_shape(self, name: str, index: int) -> list[Dims]:
            return [Dims(s) for s in self.profiles[index]]

        def get_tensor_shape(self, name: str) -> Dims:
            return Dims([-1, 3, -1, -1] if name == INPUT else [-1, self.classes])

        def create_execution_context(self) -> Context:
            return Context(self)

        def create_engine_inspector(self) -> Inspector:
            return Inspector(self)

    class Inspector:
        """TensorRT's engine inspector JSON, one "layer" per ONNX node: an FP32 engine's shape
        of the real thing (field names as TensorRT 10 writes them), not its fusions."""

        def __init__(self, engine: Engine) -> None:
            self.engine = engine

        def get_engine_information(self, fmt: Any) -> str:
            assert fmt is trt.LayerInformationFormat.JSON  # type: ignore[attr-defined]
            import onnx

            model = onnx.load(self.engine.onnx, load_external_data=False)
            fp32 = "Row major linear FP32 format (kLINEAR)"
            layers: list[Any] = []
            for node in model.graph.node:
                if not self.engine.detailed:
                    layers.append(node.name)
                    continue
                entry: dict[str, Any] = {
                    "Name": node.name,
                    "LayerType": "CaskConvolution" if node.op_type == "Conv" else "PointWiseV2",
                    "ParameterType": "Convolution" if node.op_type == "Conv" else "PointWise",
                    "Inputs": [{"Name": node.input[0], "Format/Datatype": fp32}],
                    "Outputs": [{"Name": node.output[0], "Format/Datatype": fp32}],
                    "Metadata": f"[ONNX Layer: {node.name}]",
                }
                if node.op_type == "Conv":
                    entry["Weights"] = {"Type": "Float", "Count": 1}
                    entry["Bias"] = {"Type": "Float", "Count": 1}
                layers.append(entry)
            return json.dumps({"Layers": layers, "Bindings": [INPUT, OUTPUT]})

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            try:
                return Engine(json.loads(bytes(data)))
            except (ValueError, KeyError):
                return None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime  # type: ignore[attr-defined]
    return trt


def install(monkeypatch: Any, cuda: FakeCuda | None = None, **kwargs: Any) -> tuple[types.ModuleType, FakeCuda]:
    """Put a fake `tensorrt` in sys.modules and make the fake CUDA the default."""
    import sys

    import runtime.cuda_buffers as cb

    cuda = cuda or FakeCuda()
    trt = make_module(cuda, **kwargs)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cb, "default_cuda", lambda: cuda)
    for mod in ("export.engine", "runtime.tensorrt_backend"):
        if mod in sys.modules:
            monkeypatch.setattr(sys.modules[mod], "default_cuda", lambda: cuda, raising=False)
    return trt, cuda


def copy_model_dir(src: Path, dst: Path, names: tuple[str, ...] = ("model.onnx", "model.json", "golden.npz")) -> Path:
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    return dst
