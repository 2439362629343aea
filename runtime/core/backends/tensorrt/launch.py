"""One chunk's launch on a lane's execution context, and the CUDA graph that replays it.

CUDA graphs (`cuda_graph=True`): the first run of each (profile, shape, slot) is
executed normally, then captured; later runs of it replay the graph, which skips
TensorRT's per-launch host work. A lane keeps the MAX_GRAPHS most recently used graphs.
TensorRT-RTX engines refuse --cuda-graph (runner.py): RTX picks its kernels at run time and
documents capture rules (user allocation, isStreamCapturable) this runner does not follow. Capture binds the slot's device buffers, so GPU input
is copied into the slot first instead of being read in place (see schedule.py).
"""

from __future__ import annotations

from ...errors import UserError
from ...manifest import INPUT_NAME, OUTPUT_NAME
from ..cuda import CudaApi
from ..profiles import ProfileRange
from .engine import EngineRun
from .lanes import MAX_GRAPHS, Lane, Slot


def launch(
    run: EngineRun, cuda: CudaApi, lane: Lane, profile: ProfileRange, shape: tuple[int, ...], input_ptr: int, slot: Slot
) -> None:
    """Enqueue the engine on `lane.compute` for input `shape` read from `input_ptr`, logits into `slot`."""
    ctx = lane.context
    if lane.profile != profile.index:
        if not ctx.set_optimization_profile_async(profile.index, lane.compute):
            raise UserError(f"{run.model_file}: TensorRT refused optimization profile {profile.index}")
        lane.profile = profile.index
        lane.shape = None
    if lane.shape != shape:
        if not ctx.set_input_shape(INPUT_NAME, run.dims(list(shape))):
            raise UserError(
                f"input '{INPUT_NAME}' | run shape {shape} | engine profile {profile.index} allows {profile.describe()}"
            )
        lane.shape = shape
    key = (profile.index, shape, slot.index)
    graph = lane.graphs.get(key) if run.cuda_graph else None
    if graph is not None:
        lane.graphs.move_to_end(key)
        cuda.graph_launch(graph, lane.compute)
        return
    for name, ptr in ((INPUT_NAME, input_ptr), (OUTPUT_NAME, slot.d_out)):
        if not ctx.set_tensor_address(name, ptr):
            raise UserError(f"TensorRT refused the device address for '{name}'")
    if not ctx.execute_async_v3(lane.compute):
        raise UserError(f"TensorRT execution failed for input shape {shape}")
    if run.cuda_graph:
        # The run above has applied the new shape; now record the same launch.
        ok = False
        cuda.begin_capture(lane.compute)
        try:
            ok = bool(ctx.execute_async_v3(lane.compute))
        finally:  # also when execute raised: the capture is ended and its graph freed
            captured = cuda.end_capture(lane.compute)
            if not ok:
                cuda.graph_destroy(captured)
        if not ok:
            raise UserError(
                f"{run.model_file}: TensorRT could not be captured into a CUDA graph for shape {shape}; "
                "run without --cuda-graph"
            )
        lane.graphs[key] = captured
        if len(lane.graphs) > MAX_GRAPHS:  # bounded: a run over ever new shapes keeps at most MAX_GRAPHS
            _, oldest = lane.graphs.popitem(last=False)
            cuda.synchronize(lane.compute)  # it may have been launched on this stream and not yet run
            cuda.graph_destroy(oldest)
