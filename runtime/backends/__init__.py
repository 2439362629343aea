"""The runtime's backends, one module each: TensorRT (both flavours), ONNX Runtime, and
what the TensorRT runner needs beside the library (CUDA calls, DLPack, profiles).

Nothing here imports a heavy library at import time; each backend imports its own when
it is activated.
"""
