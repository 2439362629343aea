"""The runtime's core: what serving an engine needs, and nothing of the command line.

Errors, artifact names, the manifest and its preprocessing config, the runner life cycle
and loader, the backends (TensorRT, TensorRT-RTX, ONNX Runtime), DLPack, engine metadata,
flavours, parity and the exact CPU preprocessing. A Jetson serving an engine imports this
and numpy; Pillow only when an image is preprocessed, each backend's library only when it
activates. The core never imports runtime.app (tests/runtime/test_import_rule.py).
"""
