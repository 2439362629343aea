"""The Ray cluster a run joins (or starts), reached within a bounded time."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator

from ...core.errors import UserError, require
from .options import RAY_HINT

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
OBJECT_STORE_SHARE = 0.3  # Ray's own default: 30% of the machine's memory
MIN_OBJECT_STORE = 128 << 20  # bytes; Ray refuses less than 75 MiB
START_HINT = (
    "start one yourself, sized to this machine (`ray start --head --object-store-memory BYTES`), "
    "and pass --ray-address auto"
)


def object_store_bytes() -> int | None:
    """The object store for a local cluster: Ray's default (None) unless an address-space
    limit (`ulimit -v`) leaves less room. Every Ray process maps the whole store, and the
    limit holds for each, so the store gets a quarter of it, leaving the rest to Python,
    numpy and the model."""
    try:
        import resource

        limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if limit == resource.RLIM_INFINITY or limit <= 0:
        return None
    from ...core.memory import physical_memory

    ram = physical_memory()
    size = max(MIN_OBJECT_STORE, limit // 4)
    return min(size, int(ram * OBJECT_STORE_SHARE)) if ram else size


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with one line, when a cluster address does not answer, or answers but
    not as Ray does (gRPC): ray.init itself retries for many minutes before giving up."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--ray-address {address}: cannot reach {host}:{port} within {timeout:g} s ({reason}); "
            "is `ray start --head` running there?"
        ) from None
    with sock:
        answer = _http2_greeting(sock, timeout)
    if answer is not None:
        raise UserError(
            f"--ray-address {address}: {host}:{port} answers, but not as a Ray cluster ({answer}); "
            "give the address `ray start --head` printed"
        )


# Ray's head (GCS) and its Ray Client server speak gRPC, that is HTTP/2: to a client's
# connection preface, an HTTP/2 server answers with a SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
_FRAME_HEADER = 9  # bytes: length (3), type (1), flags (1), stream (4)
_SETTINGS = 4


def _http2_greeting(sock: socket.socket, timeout: float) -> str | None:
    """None when the server at `sock` greets like an HTTP/2 (gRPC) server, else what it did."""
    deadline = time.monotonic() + timeout
    header = b""
    try:
        sock.sendall(_HTTP2_PREFACE)
        while len(header) < _FRAME_HEADER:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data = sock.recv(_FRAME_HEADER - len(header))
            if not data:
                return "it closed the connection" if not header else "it sent a few bytes and closed the connection"
            header += data
    except TimeoutError:
        return f"it said nothing gRPC-like within {timeout:g} s"
    except OSError as exc:
        return f"the connection failed: {exc.strerror or type(exc).__name__}"
    if header[3] != _SETTINGS:
        first = header.split(b"\r\n", 1)[0].decode("ascii", "replace")
        return f"it answered {first!r}, not gRPC"
    return None


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[float]:
    """Join the cluster at `address`, or start a local one; yields the start-up seconds.

    A Ray session that is already up (the caller's own job) is used as it is and left
    running; one started here is shut down at the end."""
    ray = require("ray", RAY_HINT)
    if ray.is_initialized():
        yield 0.0
        return
    if address:
        check_reachable(address)
    start = time.perf_counter()
    # A new local cluster turns Ray's token authentication on, and says so in a WARNING on
    # every run; it stays on, and the line goes (Ray's docs say how to change the mode).
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    store = None if address else object_store_bytes()
    try:
        with _held_stderr():
            ray.init(address=address, logging_level=logging.WARNING, object_store_memory=store)
    except Exception as exc:  # Ray raises bare Exception when its processes fail to start
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if address:
            raise UserError(f"cannot join the Ray cluster at {address}: {first}") from None
        sized = f" with a {store / (1 << 30):.1f} GiB object store" if store else ""
        raise UserError(f"cannot start a local Ray cluster{sized}: {first}; {START_HINT}") from None
    startup = time.perf_counter() - start
    log.info("Ray is up in %.1f s: %s", startup, ray.cluster_resources())
    try:
        yield startup
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _held_stderr() -> Iterator[None]:
    """Hold what is written to file descriptor 2 and pass it on only if the block succeeds.

    Ray's C++ core logs a line per retry there while it tries to join an address that
    answers but is not a Ray cluster, and its processes log theirs when they fail to start
    (under a memory limit, say); a failed start or join should end in one line, ours."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode(errors="replace")
            if ok:
                sys.stderr.write(text)
            elif text:
                log.debug("Ray's output while joining:\n%s", text)
