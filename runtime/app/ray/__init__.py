"""Batch classification on Ray Data: decode in CPU tasks (or on the actors' GPUs), infer in an actor pool.

Every image file must be readable at the same path on every node (a shared or
replicated file system), and so must the model file and its model.json.

Ray is an optional dependency (the `ray` extra): this package is imported only by
`--ray` and by `runtime.ray_classify`, never by `import runtime`; it imports ray itself
only inside the functions that need it. (`import ray` here is absolute: it names the
library, never this package.)

options.py: RayOptions and the CLI flags; stages.py: the Ray Data stages; decoding.py:
where images are decoded (CPU tasks, or each actor's GPU: --decode); paths.py: file names
through Arrow, losslessly; session.py: joining or starting the cluster; sink.py: the
output file; job.py: ray_classify.
"""

from __future__ import annotations

from .job import ray_classify
from .options import RayOptions, RayStats
from .stages import classify_dataset

__all__ = ["RayOptions", "RayStats", "classify_dataset", "ray_classify"]
