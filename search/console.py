"""Printing that never fails the work: a closed or broken stdout is not an error.

What the commands print goes to a terminal, a file or a pipe, and a pipe may close under
them (``run ... | head -1``, a launcher that died, a closed terminal). Every record is
written to the storage before it is printed, and printing is best effort: once a stream is
broken, what is written to it is dropped (and the stream's descriptor is pointed at
``/dev/null``, so that Python's own flush at exit does not complain either).

Example:
    >>> import io
    >>> class Closed(io.StringIO):
    ...     def write(self, text): raise BrokenPipeError(32, "Broken pipe")
    >>> stream = BestEffort(Closed())
    >>> stream.write("lost\\n"), stream.broken
    (5, True)
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO


class BestEffort:
    """A text stream whose writes and flushes never raise for a closed or broken reader."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except (OSError, ValueError):  # EPIPE, a closed file: the reader is gone
                self._break()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._break()

    def _break(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard() -> None:
    """Make this process's stdout and stderr best effort (idempotent)."""
    if not isinstance(sys.stdout, BestEffort):
        sys.stdout = BestEffort(sys.stdout)
    if not isinstance(sys.stderr, BestEffort):
        sys.stderr = BestEffort(sys.stderr)
