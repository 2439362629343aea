"""Export steps: PyTorch -> ONNX (+ golden logits), FP16 graph, ONNX -> TensorRT engine.

Submodules are imported by the command that needs them: `export.engine` must run
on a Jetson without torch, so nothing here imports torch at package level.
"""
