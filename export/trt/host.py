"""What this machine can do with a TensorRT flavour: build here, run here, with which GPU."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.core.backends import cuda as cuda_backend
from runtime.core.errors import UserError
from runtime.core.flavours import FLAVOURS, RTX_COMPUTE_CAPABILITIES, TENSORRT, TENSORRT_RTX, import_flavour


@dataclass(frozen=True)
class BuildHost:
    flavour: str
    library_version: str
    gpu_name: str | None  # None: no usable CUDA device (TensorRT-RTX builds ahead of time)
    compute_capability: str | None

    @property
    def built_with_gpu(self) -> bool:
        return self.gpu_name is not None


def probe_gpu() -> tuple[tuple[str, str] | None, str]:
    """((GPU name, compute capability) or None, why not). Looked up through the module so
    a test can swap in its CUDA double."""
    try:
        return cuda_backend.default_cuda().device(), ""
    except UserError as exc:
        return None, str(exc)


def build_host(flavour: str) -> BuildHost:
    """The flavour's library and this machine's GPU, or one UserError saying what is missing.

    TensorRT needs a CUDA device to build; TensorRT-RTX builds without one."""
    module = import_flavour(flavour)
    version = str(getattr(module, "__version__", "unknown"))
    gpu, why = probe_gpu()
    if gpu is None:
        if flavour == TENSORRT:
            raise UserError(
                f"TensorRT is installed but no usable CUDA device: {why}; without a GPU, build with "
                "--flavour tensorrt-rtx (pip install -e '.[rtx]')"
            )
        return BuildHost(flavour, version, None, None)
    return BuildHost(flavour, version, gpu[0], gpu[1])


@dataclass(frozen=True)
class FlavourStatus:
    flavour: str
    can_build: bool
    can_run: bool
    detail: str

    def line(self) -> str:
        verdict = f"build {'yes' if self.can_build else 'no'}, run {'yes' if self.can_run else 'no'}"
        return f"{self.flavour:<13} {verdict}: {self.detail}"


def flavour_status(flavour: str) -> FlavourStatus:
    """Whether this machine can build, and run, engines of `flavour`, and why."""
    try:
        module = import_flavour(flavour)
    except UserError as exc:
        return FlavourStatus(flavour, False, False, str(exc))
    version = str(getattr(module, "__version__", "unknown"))
    gpu, why = probe_gpu()
    if why == cuda_backend.NO_GPU:  # no driver: one plain sentence, no advice that cannot help
        why = "this machine has none"
    if flavour == TENSORRT_RTX:
        if gpu is None:
            return FlavourStatus(
                flavour, True, False, f"{version}; builds ahead of time without a GPU; running needs an RTX GPU ({why})"
            )
        name, cc = gpu
        runs = cc in RTX_COMPUTE_CAPABILITIES
        where = (
            ""
            if runs
            else f"; its engines do not run on compute capability {cc} (targets {', '.join(RTX_COMPUTE_CAPABILITIES)})"
        )
        return FlavourStatus(flavour, True, runs, f"{version}, {name} (compute capability {cc}){where}")
    if gpu is None:
        return FlavourStatus(flavour, False, False, f"{version}; needs a CUDA GPU to build and run ({why})")
    return FlavourStatus(flavour, True, True, f"{version}, {gpu[0]} (compute capability {gpu[1]})")


def all_statuses() -> list[FlavourStatus]:
    return [flavour_status(f) for f in FLAVOURS]
