"""ONNX -> TensorRT / TensorRT-RTX engine, in small steps (Polygraphy's loaders, composed).

- `host`:     what this machine can do with a flavour (library version, GPU or none)
- `log`:      the one process-wide TensorRT logger, routed to the build that is running
- `network`:  a strongly typed network from an ONNX file
- `config`:   a builder config from EngineOptions (each option's call, from export.engine_options)
- `timing_cache`: read under a file lock; after the build, merged with the file and written back
- `progress`: a tqdm progress monitor for the build phases
- `save`:     engine, then sidecar, then layer report (that order, atomically)

`export.engine.build_engine` composes them. Nothing here imports torch. Each step imports
its flavour's module at call time; for mypy, `tensorrt` (the stubs) stands for both, since
tensorrt_rtx has the same API. The few RTX-only calls go through `Any` and say so.
"""
