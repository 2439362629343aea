"""TensorRTOptions: how a TensorRT runner runs its engine, one frozen object made once (by the
command line, or a caller of runtime.load) and passed through unchanged. Its own module, so
the loader and the TensorRT backend both import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class TensorRTOptions:
    """How a TensorRT runner runs its engine; ONNX Runtime takes none of these."""

    # capture each input shape's execution into a CUDA graph
    cuda_graph: bool = field(default=False, metadata={"flag": "--cuda-graph"})
    # run an engine with no .engine.json (trtexec), with a warning
    allow_missing_sidecar: bool = field(default=False, metadata={"flag": "--no-sidecar"})
    # CUDA device index (after CUDA_VISIBLE_DEVICES)
    device: int = field(default=0, metadata={"flag": "--device"})
    # let host code inside the engine run (version-compatible plans carry a lean runtime, plugins
    # may ship with it): only on this explicit opt-in, never because a sidecar, which anyone can
    # edit, says the engine was built version-compatible
    allow_engine_host_code: bool = field(default=False, metadata={"flag": "--allow-engine-host-code"})

    def asked(self) -> list[str]:
        """The options set away from their defaults, as the command line names them."""
        return [f.metadata["flag"] for f in fields(self) if getattr(self, f.name) != f.default]
