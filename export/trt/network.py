"""A strongly typed network from an ONNX file: precision comes from the graph."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runtime.core.errors import UserError
from runtime.core.flavours import import_flavour

if TYPE_CHECKING:
    import tensorrt as trt


def strongly_typed_flags(flavour: str) -> int:
    """Network creation flags: STRONGLY_TYPED, or one UserError where the library lacks it.

    Without it TensorRT (before 10.0) builds weakly typed and picks layer precisions itself,
    which would make the FP16/INT8 graphs mean something else: refuse rather than fall back."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(flavour)
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise UserError(
            f"{flavour} {getattr(trt, '__version__', '?')} cannot build strongly typed networks "
            "(NetworkDefinitionCreationFlag.STRONGLY_TYPED is missing); this project needs TensorRT 10.0 or newer"
        )
    return 1 << int(flag)


def network_from_onnx(
    flavour: str, builder: trt.Builder, logger: trt.ILogger, onnx_path: Path
) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """Parse `onnx_path` into a strongly typed network; the parser must outlive the build."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(flavour)
    network = builder.create_network(strongly_typed_flags(flavour))
    if network is None:
        raise UserError(f"{flavour} could not create a network definition")
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        problems = []
        for i in range(parser.num_errors):
            err = parser.get_error(i)
            desc = " ".join(str(err.desc()).split())
            problems.append(f"node {err.node()} {err.node_name()!r} ({err.node_operator()}): {desc}")
        raise UserError(f"{flavour}'s ONNX parser rejected {onnx_path}: " + " | ".join(problems or ["no reason given"]))
    if network.num_outputs == 0:  # stray bytes can parse as an empty model
        raise UserError(f"{onnx_path}: not an ONNX model ({flavour}'s parser found no graph outputs)")
    return network, parser
