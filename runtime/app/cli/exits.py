"""The exit codes of every command line in this project (`python -m runtime`, `python -m
export`, `python -m calibration`): the one place they are named. Each entry point's
--help lists them (EPILOG)."""

from __future__ import annotations

import signal

OK = 0
CHECK_FAILED = 1  # the command ran and its check failed (parity past tolerance)
BAD_INPUT = 2  # bad input, or a missing dependency
PARTIAL = 3  # done, but some inputs were skipped; calibration: the --max-drop budget was missed
OS_ERROR = 74  # the operating system refused: read-only, permission, disk full (sysexits EX_IOERR)
INTERRUPTED = 128 + int(signal.SIGINT)  # Ctrl-C: 130, what a shell reports for a SIGINT death
TERMINATED = 128 + int(signal.SIGTERM)  # SIGTERM (a scheduler, `timeout`): 143

EPILOG = f"""exit codes:
  {OK}    done
  {CHECK_FAILED}    the check failed (parity past its tolerance)
  {BAD_INPUT}    bad input, or a missing dependency (one line says which)
  {PARTIAL}    done, but some inputs were skipped (listed); calibration: the --max-drop budget was missed
  {OS_ERROR}   the operating system refused (read-only, permission, disk full)
  {INTERRUPTED}  interrupted (Ctrl-C); no partial artifact is kept
  {TERMINATED}  terminated (SIGTERM); no partial artifact is kept"""
