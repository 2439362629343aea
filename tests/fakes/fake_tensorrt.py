"""A test double for the slice of TensorRT and CUDA this project uses.

It lets CPU tests drive the real control flow of export.engine and the TensorRT runner:
profiles, flags, parser errors, timing caches, sidecars, tensor addressing, batch
splitting and return-value checks. The "engine" it builds runs the source ONNX file
with ONNX Runtime, so numbers that come back are real. Its CUDA (FakeCuda) queues work
per stream and runs it only when waited for, so missing synchronisation shows up as
wrong numbers. The execute step can be swapped (`make_module(..., execute=...)`): the
GPU tests run it as a CuPy kernel on real CUDA streams. It proves nothing about
TensorRT itself; the `trt`-marked tests do that on a machine with TensorRT.
"""

from __future__ import annotations

import ctypes
import enum
import hashlib
import itertools
import json
import threading
import types
from collections.abc import Callable
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
    """CudaApi over numpy arrays, with CUDA's ordering rules.

    Pointers are the numpy arrays' real addresses, so pointer arithmetic and host arrays
    the runner did not allocate work as on a GPU. Work queued on a stream runs only when
    something waits for it (a stream or event synchronisation, or another stream waiting
    on an event), so a runner that reads a result before waiting for it reads stale
    bytes, as it would on a GPU. Async copies must come from page-locked host memory.
    Each allocation belongs to the device current on the calling thread, and every
    operation checks that the thread's current device owns the memory it touches.
    """

    def __init__(self, name: str = "Fake GPU", capability: str = "8.7", devices: int = 1) -> None:
        self.name, self.capability, self.devices = name, capability, devices
        self.memory: dict[int, np.ndarray] = {}  # live allocations (device and pinned host) by pointer
        self.kind: dict[int, tuple[str, int]] = {}  # pointer -> ("device" | "host" | "registered", device)
        self.streams: set[int] = set()
        self.events: dict[int, tuple[int, int] | None] = {}
        self.graphs: dict[int, list[Any]] = {}
        self._queues: dict[int, list[Any]] = {}
        self._done: dict[int, int] = {}
        self._capture: dict[int, list[Any]] = {}
        self._ids = itertools.count(0x10)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._reads: dict[int, tuple[int, int]] = {}  # queued, not yet run: what each op will read
        self.freed_host: list[np.ndarray] = []  # freed pinned memory, poisoned, kept mapped
        self.copies = 0
        self.launches = 0
        self.graph_launches = 0

    # devices
    def device_count(self) -> int:
        return self.devices

    def set_device(self, index: int) -> None:
        assert 0 <= index < self.devices
        self._local.device = index

    @property
    def current(self) -> int:
        return getattr(self._local, "device", 0)

    def device(self, index: int = 0) -> tuple[str, str]:
        return self.name, self.capability

    # memory
    def _alloc(self, nbytes: int, kind: str) -> int:
        arr = np.zeros(max(nbytes, 1), np.uint8)
        ptr = int(arr.ctypes.data)
        with self._lock:
            self.memory[ptr] = arr
            self.kind[ptr] = (kind, self.current)
        return ptr

    def malloc(self, nbytes: int) -> int:
        return self._alloc(nbytes, "device")

    def free(self, ptr: int) -> None:
        kind, device = self.kind[ptr]
        assert kind == "device"
        assert device == self.current, f"memory of device {device} freed with device {self.current} current"
        del self.memory[ptr], self.kind[ptr]

    def malloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        """Like cudaMallocHost: a pointer, and a uint8 view that does NOT own its memory
        (nothing keeps it alive once free_host ran), as the real runtime's view does not."""
        ptr = self._alloc(nbytes, "host")
        return ptr, np.ctypeslib.as_array((ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr))

    def free_host(self, ptr: int) -> None:
        """Freed memory is poisoned (0xFF bytes: NaN as float32) and kept mapped, so a view
        used after release reads garbage on the CPU, where a GPU machine might read anything."""
        assert self.kind[ptr][0] == "host"
        self.memory[ptr].fill(0xFF)
        self.freed_host.append(self.memory.pop(ptr))
        del self.kind[ptr]

    def host_register(self, ptr: int, nbytes: int) -> None:
        self.memory[ptr] = np.frombuffer((ctypes.c_uint8 * nbytes).from_address(ptr), np.uint8)
        self.kind[ptr] = ("registered", self.current)

    def host_unregister(self, ptr: int) -> None:
        assert self.kind[ptr][0] == "registered"
        del self.memory[ptr], self.kind[ptr]

    def view(self, ptr: int, nbytes: int, kinds: tuple[str, ...]) -> np.ndarray:
        """The bytes [ptr, ptr + nbytes) inside one live allocation of one of `kinds`."""
        for base, arr in self.memory.items():
            if base <= ptr and ptr + nbytes <= base + arr.nbytes:
                kind, device = self.kind[base]
                assert kind in kinds, f"{kind} memory where {kinds} was expected"
                assert device == self.current, f"memory of device {device} used with device {self.current} current"
                return arr[ptr - base : ptr - base + nbytes]
        raise AssertionError(f"{nbytes} bytes at {ptr:#x} are not inside one live allocation")

    # streams and events: work runs lazily, in order, when waited for
    def stream_create(self) -> int:
        s = next(self._ids)
        self.streams.add(s)
        self._queues[s], self._done[s] = [], 0
        return s

    def stream_destroy(self, stream: int) -> None:
        self.synchronize(stream)
        self.streams.remove(stream)

    def enqueue(self, stream: int, op: Any) -> None:
        """Queue `op` (a no-argument callable) on `stream`, or record it into a capture."""
        assert stream in self.streams
        with self._lock:
            if stream in self._capture:
                self._capture[stream].append(op)
            else:
                self._queues[stream].append(op)

    def _flush(self, stream: int, upto: int) -> None:
        with self._lock:
            while self._done[stream] < upto:
                op = self._queues[stream][self._done[stream]]
                self._done[stream] += 1
                op()

    def enqueue_read(self, stream: int, ptr: int, nbytes: int, op: Any) -> None:
        """Queue `op`, which reads [ptr, ptr + nbytes), so `reading` can tell it is pending."""
        if stream in self._capture:  # recorded into a graph: it reads when the graph replays
            self.enqueue(stream, op)
            return
        key = next(self._ids)

        def run() -> None:
            self._reads.pop(key, None)
            op()

        with self._lock:
            self._reads[key] = (ptr, nbytes)
        self.enqueue(stream, run)

    def reading(self, ptr: int, nbytes: int) -> bool:
        """Whether work queued and not yet run will read any byte of [ptr, ptr + nbytes)."""
        with self._lock:
            return any(p < ptr + nbytes and ptr < p + n for p, n in self._reads.values())

    def synchronize(self, stream: int) -> None:
        assert stream in self.streams
        self._flush(stream, len(self._queues[stream]))

    def event_create(self) -> int:
        e = next(self._ids)
        self.events[e] = None
        return e

    def event_destroy(self, event: int) -> None:
        del self.events[event]

    def event_record(self, event: int, stream: int) -> None:
        assert stream not in self._capture
        self.events[event] = (stream, len(self._queues[stream]))

    def event_synchronize(self, event: int) -> None:
        mark = self.events[event]
        if mark is not None:
            self._flush(*mark)

    def stream_wait_event(self, stream: int, event: int) -> None:
        mark = self.events[event]
        if mark is not None:
            self.enqueue(stream, lambda: self._flush(*mark))

    # copies
    def _copy(self, dst: int, dst_kinds: tuple[str, ...], src: int, src_kinds: tuple[str, ...], n: int, stream: int) -> None:
        d, s = self.view(dst, n, dst_kinds), self.view(src, n, src_kinds)  # checked when queued, as CUDA does

        def op() -> None:
            d[:] = s
            self.copies += 1

        self.enqueue_read(stream, src, n, op)

    def htod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy(dst, ("device",), src, ("host", "registered"), nbytes, stream)

    def dtoh_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy(dst, ("host", "registered"), src, ("device",), nbytes, stream)

    def dtod_async(self, dst: int, src: int, nbytes: int, stream: int) -> None:
        self._copy(dst, ("device",), src, ("device",), nbytes, stream)

    def memset_async(self, ptr: int, value: int, nbytes: int, stream: int) -> None:
        d = self.view(ptr, nbytes, ("device",))
        self.enqueue(stream, lambda: d.fill(value))

    # graphs: the ops queued between begin and end are kept and replayed
    def begin_capture(self, stream: int) -> None:
        assert stream not in self._capture
        self._capture[stream] = []

    def end_capture(self, stream: int) -> int:
        g = next(self._ids)
        self.graphs[g] = self._capture.pop(stream)
        return g

    def graph_launch(self, graph: int, stream: int) -> None:
        ops = list(self.graphs[graph])

        def replay() -> None:
            self.graph_launches += 1
            for op in ops:
                op()

        self.enqueue(stream, replay)

    def graph_destroy(self, graph: int) -> None:
        del self.graphs[graph]


class FakeGpuTensor:
    """What a CuPy array looks like to the runner: float32 DLPack on one FakeCuda device,
    written by its producer on the producer's own stream (`fill`, which runs only when
    waited for). `__dlpack__(stream=s)` honours the DLPack contract: `s` waits for the
    producer's work, so a consumer that passes the stream it reads on sees the data, and
    one that passes another stream (or none) reads stale bytes."""

    def __init__(self, cuda: FakeCuda, shape: tuple[int, ...], device: int = 0) -> None:
        self.cuda, self.device, self.shape = cuda, device, shape
        self.nbytes = int(np.prod(shape)) * 4
        cuda.set_device(device)
        self.ptr = cuda.malloc(self.nbytes)
        self.producer = cuda.stream_create()
        self.array = cuda.memory[self.ptr][: self.nbytes].view(np.float32).reshape(shape)
        self.handed: list[Any] = []  # the stream argument of each __dlpack__ call

    def fill(self, values: np.ndarray) -> None:
        data = np.array(values, np.float32)
        self.cuda.enqueue(self.producer, lambda: self.array.__setitem__(slice(None), data))

    def __dlpack__(self, stream: Any = None) -> Any:
        self.handed.append(stream)
        if stream is not None and stream != -1:  # -1: the consumer asks for no synchronisation
            event = self.cuda.event_create()
            self.cuda.event_record(event, self.producer)
            self.cuda.stream_wait_event(stream, event)
            self.cuda.event_destroy(event)
        return self.array.__dlpack__()  # its pointer, shape and dtype; the device is said below

    def __dlpack_device__(self) -> tuple[int, int]:
        return 2, self.device  # kDLCUDA

    def close(self) -> None:
        self.cuda.set_device(self.device)
        self.cuda.stream_destroy(self.producer)
        self.cuda.free(self.ptr)


Execute = Callable[[Any, tuple[int, ...], dict[str, int], int], None]


def make_module(
    cuda: Any,
    version: str = "10.13.0.35",
    dla_cores: int = 0,
    flavour: str = "tensorrt",
    execute: Execute | None = None,
) -> types.ModuleType:
    """A fresh fake `tensorrt` (or `tensorrt_rtx`) module bound to `cuda`; `module.calls`
    records what was done. `execute(engine, shape, addresses, stream)` queues one run of
    the engine; by default it runs the ONNX file with ONNX Runtime on FakeCuda memory."""
    trt = types.ModuleType("tensorrt_rtx" if flavour == "tensorrt-rtx" else "tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    calls: dict[str, Any] = {
        "flags": [],
        "profiles": [],
        "builder_flags": [],
        "cleared_flags": [],
        "timing_cache_in": None,  # the bytes create_timing_cache was given last
        "timing_cache_reads": [],  # ... and each time
    }
    trt.calls = calls  # type: ignore[attr-defined]
    trt.fail_build = False  # type: ignore[attr-defined]
    trt.during_build = None  # type: ignore[attr-defined]  # called while an engine builds (another build's turn)
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
    trt.DataType = _enum("FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8")  # type: ignore[attr-defined]
    trt.deserialised = 0  # type: ignore[attr-defined]
    if flavour == "tensorrt-rtx":
        trt.EngineValidity = _enum("VALID", "SUBOPTIMAL", "INVALID")  # type: ignore[attr-defined]
        trt.EngineInvalidityDiagnostics = types.SimpleNamespace(  # type: ignore[attr-defined]
            __members__={n: 1 << i for i, n in enumerate(("VERSION_MISMATCH", "UNSUPPORTED_CC", "OLD_CUDA_DRIVER"))}
        )
        trt.validity = ("VALID", 0)  # type: ignore[attr-defined]  # what get_engine_validity answers

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.onnx: str | None = None
            self.num_outputs = 0

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
            self.network.num_outputs = len(model.graph.output)
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
        """Timings by key, tagged with the library version that measured them, as TensorRT's
        cache is: `combine` adds the other cache's entries and refuses another version's
        unless told to ignore the mismatch; `serialize` and `create_timing_cache` round-trip."""

        MAGIC = b"timing-cache:"

        def __init__(self, entries: dict[str, float], version: str = version) -> None:
            self.entries, self.version = dict(entries), version

        @classmethod
        def parse(cls, data: bytes) -> TimingCache | None:
            if not data:
                return cls({})
            if not data.startswith(cls.MAGIC):
                return None
            blob = json.loads(data[len(cls.MAGIC) :])
            return cls(blob["entries"], blob["version"])

        def serialize(self) -> bytes:
            return self.MAGIC + json.dumps({"version": self.version, "entries": self.entries}, sort_keys=True).encode()

        def combine(self, other: TimingCache, ignore_mismatch: bool) -> bool:
            if other.version != self.version and not ignore_mismatch:
                return False
            for key, seconds in other.entries.items():
                self.entries.setdefault(key, seconds)
            return True

    class Config:
        def __init__(self) -> None:
            self.builder_optimization_level = 3
            self.hardware_compatibility_level = trt.HardwareCompatibilityLevel.NONE
            self.default_device_type = trt.DeviceType.GPU
            self.DLA_core = -1
            self.progress_monitor: Any = None
            self.pools: dict[str, int] = {}
            self.cache: TimingCache | None = None
            self.profiles: list[list[list[int]]] = []
            self.profiling_verbosity = trt.ProfilingVerbosity.LAYER_NAMES_ONLY
            self.flags = {"TF32"}  # TensorRT's default: TF32 allowed

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            self.pools[pool.name] = size

        def add_optimization_profile(self, profile: Profile) -> int:
            self.profiles.append(profile.shapes[INPUT])
            calls["profiles"].append(profile.shapes[INPUT])
            return len(calls["profiles"]) - 1

        def create_timing_cache(self, data: bytes) -> TimingCache | None:
            calls["timing_cache_in"] = bytes(data)
            calls["timing_cache_reads"].append(bytes(data))
            return TimingCache.parse(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            if cache.version != version and not ignore_mismatch:
                return False
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
            if trt.during_build is not None:  # type: ignore[attr-defined]
                trt.during_build()  # type: ignore[attr-defined]
            if config.cache is not None:  # what this build measured: a timing per graph and profile
                for shapes in config.profiles:
                    config.cache.entries.setdefault(f"{Path(str(network.onnx)).name} {shapes}", 1.0)
            detailed = config.profiling_verbosity is trt.ProfilingVerbosity.DETAILED  # type: ignore[attr-defined]
            return json.dumps({"onnx": network.onnx, "profiles": calls["profiles"], "detailed": detailed}).encode()

    def run_with_onnxruntime(engine: Engine, shape: tuple[int, ...], addresses: dict[str, int], stream: int) -> None:
        dtype = np.dtype(engine.input_dtype)
        x = cuda.view(addresses[INPUT], int(np.prod(shape)) * dtype.itemsize, ("device",))
        out = cuda.view(addresses[OUTPUT], shape[0] * engine.classes * 4, ("device",))

        def op() -> None:
            (y,) = engine.session.run([OUTPUT], {INPUT: x.view(dtype).reshape(shape).copy()})
            out[:] = np.ascontiguousarray(y, np.float32).reshape(-1).view(np.uint8)

        cuda.enqueue_read(stream, addresses[INPUT], x.nbytes, op)

    run = execute or run_with_onnxruntime

    class Context:
        def __init__(self, engine: Engine) -> None:
            self.engine, self.shape, self.addresses, self.profile = engine, None, {}, 0

        def set_optimization_profile_async(self, index: int, stream: int) -> bool:
            self.profile = index
            return True

        def set_input_shape(self, name: str, dims: Dims) -> bool:
            assert isinstance(dims, Dims), "shapes take trt.Dims"
            lo, _, hi = self.engine.profiles[self.profile]
            if not all(a <= d <= b for a, d, b in zip(lo, dims, hi, strict=True)):
                return False
            self.shape = tuple(dims)
            return True

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream: int) -> bool:
            if trt.fail_execute or self.shape is None:  # type: ignore[attr-defined]
                return False
            # Shape and addresses are read now, as TensorRT reads them at enqueue time.
            run(self.engine, self.shape, dict(self.addresses), stream)
            cuda.launches = getattr(cuda, "launches", 0) + 1
            return True

    class Engine:
        def __init__(self, blob: dict[str, Any]) -> None:
            self.onnx, self.detailed = blob.get("onnx"), bool(blob.get("detailed"))
            self.profiles = blob["profiles"]
            if "onnx" in blob:
                import onnxruntime as ort

                self.session = ort.InferenceSession(blob["onnx"], providers=["CPUExecutionProvider"])
                self.classes = int(self.session.get_outputs()[0].shape[-1])
                uint8 = self.session.get_inputs()[0].type == "tensor(uint8)"
                self.input_dtype = "uint8" if uint8 else "float32"
            else:  # an engine with no graph behind it: the execute step computes the logits
                self.classes, self.input_dtype = int(blob["classes"]), str(blob.get("input_dtype", "float32"))
            self.num_io_tensors = 2
            self.num_optimization_profiles = len(self.profiles)
            self.contexts = 0

        def get_tensor_name(self, i: int) -> str:
            return [INPUT, OUTPUT][i]

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if name == INPUT else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name: str) -> Any:
            return trt.DataType.UINT8 if name == INPUT and self.input_dtype == "uint8" else trt.DataType.FLOAT

        def get_tensor_profile_shape(self, name: str, index: int) -> list[Dims]:
            return [Dims(s) for s in self.profiles[index]]

        def get_tensor_shape(self, name: str) -> Dims:
            if name == OUTPUT:
                return Dims([-1, self.classes])
            return Dims([-1, -1, -1, 3] if self.input_dtype == "uint8" else [-1, 3, -1, -1])

        def create_execution_context(self) -> Context:
            self.contexts += 1
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
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            try:
                blob = json.loads(bytes(data))
            except ValueError:
                return None
            if blob.get("host_code") and not self.engine_host_code_allowed:
                return None  # TensorRT logs: engine has host code, not allowed
            trt.deserialised += 1  # type: ignore[attr-defined]
            return Engine(blob)

        if flavour == "tensorrt-rtx":

            def get_engine_validity(self, data: bytes) -> tuple[Any, int]:
                name, flags = trt.validity  # type: ignore[attr-defined]
                return getattr(trt.EngineValidity, name), flags  # type: ignore[attr-defined]

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime  # type: ignore[attr-defined]
    return trt


def install(
    monkeypatch: Any, cuda: FakeCuda | None = None, flavour: str = "tensorrt", **kwargs: Any
) -> tuple[types.ModuleType, FakeCuda]:
    """Put a fake `tensorrt` (or `tensorrt_rtx`) in sys.modules and make the fake CUDA the default."""
    import sys

    import runtime.core.backends.cuda as cb

    cuda = cuda or FakeCuda()
    trt = make_module(cuda, flavour=flavour, **kwargs)
    monkeypatch.setitem(sys.modules, trt.__name__, trt)
    monkeypatch.setattr(cb, "default_cuda", lambda: cuda)
    for mod in ("runtime.core.backends.tensorrt.runner",):
        if mod in sys.modules:
            monkeypatch.setattr(sys.modules[mod], "default_cuda", lambda: cuda, raising=False)
    return trt, cuda


def write_engine(
    path: Path, profiles: list[list[list[int]]], onnx: Path | None = None, sidecar: bool = True, **blob_and_meta: Any
) -> Path:
    """A hand-made engine file for the fake runtime, and its sidecar.

    The blob runs `onnx` with ONNX Runtime, or (without it) names `classes` and
    `input_dtype` for a custom execute step. Keys of EngineMeta go to the sidecar; the
    rest (`host_code`, `classes`) and `input_dtype` (both) to the blob."""
    from runtime.core.engine_meta import EngineMeta
    from runtime.core.io import sha256_file

    meta_keys = set(EngineMeta.__dataclass_fields__)
    blob_keys = {"host_code", "classes", "input_dtype"}
    blob: dict[str, Any] = {"profiles": profiles, **{k: v for k, v in blob_and_meta.items() if k in blob_keys}}
    if onnx is not None:
        blob["onnx"] = str(onnx)
    data = json.dumps(blob).encode()
    path.write_bytes(data)
    if sidecar:
        meta = {
            "library_version": "10.13.0.35",
            "gpu_name": "Fake GPU",
            "compute_capability": "8.7",
            "precision": "fp32",
            "profiles": [dict(zip(("min", "opt", "max"), p, strict=True)) for p in profiles],
            "source_onnx": onnx.name if onnx else "model.onnx",
            "source_onnx_sha256": sha256_file(onnx) if onnx else "",
            "build_seconds": 0.0,
            "input_dtype": blob.get("input_dtype", "float32"),
            "engine_sha256": hashlib.sha256(data).hexdigest(),
            "engine_size": len(data),
        }
        meta.update({k: v for k, v in blob_and_meta.items() if k in meta_keys})
        path.with_name(path.name + ".json").write_text(json.dumps(EngineMeta(**meta).to_dict()))
    return path


def copy_model_dir(src: Path, dst: Path, names: tuple[str, ...] = ("model.onnx", "model.json", "golden.npz")) -> Path:
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    return dst
