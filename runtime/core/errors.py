"""The one exception type for failures a user can act on."""

from __future__ import annotations

import importlib
from types import ModuleType


class UserError(Exception):
    """Bad input, a missing dependency or an artifact that does not fit.

    The command line prints its message on one line and exits non-zero, without a
    traceback, so the message must say what was wrong and what to do.
    """


def require(module: str, hint: str) -> ModuleType:
    """Import an optional heavy dependency, or raise UserError naming how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"{module} is not installed ({exc.msg}); {hint}") from None


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: the file(s) involved and the system's reason.

    `os.replace` fails naming the temporary file and the target; the target is what
    the user asked for, so it is named last ("... -> target")."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
    return f"{' -> '.join(files)}: {reason}" if files else reason
