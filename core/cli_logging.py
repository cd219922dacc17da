"""How the command line's diagnostics look and where they go: `-v` / `-q` mapped to logging
levels for everything under `posescope`, `error: ...` / `warning: ...` lines on stderr (results
go to stdout)."""

from __future__ import annotations

import logging
import sys


class _LevelFormatter(logging.Formatter):
    """`error: ...` / `warning: ...` / plain info, as the rest of the CLI prints."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        if record.levelno <= logging.DEBUG:
            return f"debug: {record.name}: {msg}"
        return msg


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (as logging's own last
    resort handler does), not the stream of the moment it was made, which may be closed by
    then (a test's captured stderr, a redirected one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(verbose: int = 0, quiet: int = 0) -> int:
    """Map -v / -q to a logging level for everything under `posescope` (diagnostics go to
    stderr through logging; results go to stdout). Default INFO (progress and summaries);
    -q warnings only, -qq errors only; -v debug. Returns the level."""
    level = min(max(logging.INFO - 10 * (verbose - quiet), logging.DEBUG), logging.ERROR)
    handler = _StderrHandler()
    handler.setFormatter(_LevelFormatter())
    logger = logging.getLogger("posescope")  # every module's logger is a child of this one
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return level


__all__ = ["configure_logging"]
