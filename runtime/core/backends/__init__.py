"""The runtime's backends: TensorRT (both flavours, a sub-package), ONNX Runtime, and
what the TensorRT runner needs beside the library (CUDA calls, profiles). Reading DLPack
tensors is shared with the Runner base class, so it lives below, in runtime.core.dlpack.

Nothing here imports a heavy library at import time; each backend imports its own when
it is activated.
"""
