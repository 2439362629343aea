"""A tqdm progress monitor for the builder's phases, where the library has IProgressMonitor."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from runtime.core.flavours import import_flavour

from .interrupt import stop_requested

BAR_DELAY_S = 2.0  # a phase gets a bar only once it has lasted this long


def progress_monitor_class(flavour: str) -> type | None:
    """A tqdm-backed IProgressMonitor where this library has one (TensorRT 10.0+, RTX), else None."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = import_flavour(flavour)
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class TqdmProgressMonitor(trt.IProgressMonitor):
        """Shows the top-level build phases and their direct children; must be thread-safe."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._bars: dict[str, tqdm] = {}
            self._top: set[str] = set()

        def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
            # Deeper phases are too brief for a bar.
            with self._lock:
                depth = 0 if not parent_phase else (1 if parent_phase in self._top else 2)
                if depth == 0:
                    self._top.add(phase_name)
                if depth <= 1:
                    self._bars[phase_name] = tqdm(
                        total=num_steps,
                        desc=phase_name,
                        leave=depth == 0,
                        position=depth,
                        disable=None,  # no bar, and no escape codes, when stderr is not a terminal
                        delay=BAR_DELAY_S,  # none for the many sub-second phases
                    )

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                bar = self._bars.get(phase_name)
                if bar is not None:
                    bar.update(step + 1 - bar.n)
            return not stop_requested()  # False cancels the build: Ctrl-C or SIGTERM arrived

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                self._top.discard(phase_name)
                bar = self._bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()

    return TqdmProgressMonitor
