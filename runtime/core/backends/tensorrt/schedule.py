"""Double buffering: the schedule of a request's chunks through the two slots of one lane.

A batch is cut into chunks the chosen profile can run (ProfileSet: larger batches split,
a short last chunk padded). Chunk i+1 is staged into the other slot and copied to the
GPU while chunk i executes; its logits come back on the third stream while chunk i+1
runs. Events order the streams; the host waits only for a slot it is about to reuse.
`infer_batches` carries the same schedule across successive batches.

`release_inputs` waits until the caller's memory has been read: for a copied chunk that
is its copy (`ev_in`), but a GPU chunk read in place is read by the engine itself, so
its guard is the event recorded on the compute stream after the launch (`ev_exec`).
"""

from __future__ import annotations

import numpy as np

from ...dlpack import DeviceArray
from ..cuda import CudaApi
from ..profiles import ProfileSet
from .engine import FLOAT32_BYTES, EngineRun
from .lanes import InferRequest, Lane, Slot, Task
from .launch import launch


class Schedule:
    """Chunks through the two slots of one lane; see the module docstring."""

    def __init__(self, run: EngineRun, cuda: CudaApi, lane: Lane) -> None:
        self.run, self.lane, self.cuda = run, lane, cuda
        self._guards: list[int] = []  # events after which the last batch's memory is read

    def submit(self, batch: InferRequest) -> None:
        shape = tuple(int(d) for d in batch.source.shape)
        profile = self.run.profiles.choose(shape)  # names the caller's shape, not a chunk's
        chunks = ProfileSet.chunks(shape[0], profile)
        batch.pending = len(chunks)
        self._guards = []
        for chunk in chunks:
            slot = self.lane.slots[self.lane.next_slot]
            self.lane.next_slot ^= 1
            if slot.task is not None:
                self._finish_slot(slot)
            self._enqueue(Task(batch, chunk, profile), slot)

    def release_inputs(self) -> None:
        """Return once the last submitted batch's memory is no longer read (refillable)."""
        # An event re-recorded for a later chunk of this batch guards that chunk; the
        # earlier one's read is over, as its slot was finished before it was reused.
        for event in dict.fromkeys(self._guards):
            self.cuda.event_synchronize(event)

    def finish(self, batch: InferRequest) -> None:
        for slot in self._in_flight_order():
            if batch.pending == 0:
                break
            if slot.task is not None and slot.task.batch is batch:
                self._finish_slot(slot)
        if batch.pending:
            raise RuntimeError("internal: a batch's chunks were lost in the schedule")
        if isinstance(batch.source, DeviceArray):
            batch.source.release()

    def _in_flight_order(self) -> list[Slot]:
        # The slot that was filled first is the one the next submit would reuse.
        nxt = self.lane.next_slot
        return [self.lane.slots[nxt], self.lane.slots[nxt ^ 1]]

    def _finish_slot(self, slot: Slot) -> None:
        task = slot.task
        assert task is not None
        self.cuda.event_synchronize(slot.ev_out)
        n, classes = task.chunk.size, self.run.num_classes
        logits = slot.h_out[: n * classes * FLOAT32_BYTES].view(np.float32).reshape(n, classes)
        task.batch.out[task.chunk.start : task.chunk.stop] = logits
        task.batch.pending -= 1
        slot.task = None

    def _enqueue(self, task: Task, slot: Slot) -> None:
        run, cuda, lane = self.run, self.cuda, self.lane
        chunk, source = task.chunk, task.batch.source
        run_shape = (chunk.run, *tuple(int(d) for d in source.shape[1:]))
        per_image = int(np.prod(run_shape[1:])) * run.in_itemsize
        real, total = chunk.size * per_image, chunk.run * per_image
        slot.task = task
        in_place = False
        if isinstance(source, DeviceArray):
            src = source.ptr + chunk.start * per_image
            if not run.cuda_graph and not chunk.padded:
                input_ptr, in_place = src, True  # read in place: no copy at all
            else:
                cuda.dtod_async(slot.d_in, src, real, lane.h2d)
                if chunk.padded:
                    cuda.memset_async(slot.d_in + real, 0, total - real, lane.h2d)
                input_ptr = slot.d_in
        else:
            part = source[chunk.start : chunk.stop]
            if task.batch.pinned and not chunk.padded:
                cuda.htod_async(slot.d_in, int(part.ctypes.data), real, lane.h2d)
            else:
                staged = slot.h_in[:total].view(source.dtype).reshape(run_shape)
                np.copyto(staged[: chunk.size], part)
                if chunk.padded:
                    staged[chunk.size :] = 0  # padding images: their logits are dropped
                cuda.htod_async(slot.d_in, slot.h_in_ptr, total, lane.h2d)
            input_ptr = slot.d_in
        cuda.event_record(slot.ev_in, lane.h2d)
        cuda.stream_wait_event(lane.compute, slot.ev_in)
        launch(run, cuda, lane, task.profile, run_shape, input_ptr, slot)
        cuda.event_record(slot.ev_exec, lane.compute)
        self._guards.append(slot.ev_exec if in_place else slot.ev_in)
        cuda.stream_wait_event(lane.d2h, slot.ev_exec)
        cuda.dtoh_async(slot.h_out_ptr, slot.d_out, chunk.size * run.num_classes * FLOAT32_BYTES, lane.d2h)
        cuda.event_record(slot.ev_out, lane.d2h)
