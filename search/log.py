"""What the service says as it works: one logging format for every line, in every process.

Every line (a trial's progress, a retry through a lost connection, a warning from Optuna) goes
through :mod:`logging` with the date and time, the worker's name and the message::

    2026-11-30 16:58:28 gpu-box/w3/gpu1: trial 12 epoch 4/40: val 0.8125, loss 0.512, 9.8 s

``-v`` adds debug lines (and Optuna's own), ``-q`` keeps warnings and errors only,
``--log-file PATH`` appends the same lines to a file. Each line is written whole, in one
write, so lines of several workers sharing a terminal, a pipe or a file never interleave.
Results (tables, JSON, ``best``) are printed to stdout as they are, not logged.

Example:
    >>> import io
    >>> stream = io.StringIO()
    >>> configure(verbosity=0, stream=stream)
    >>> set_worker("box/w0")
    >>> logging.getLogger("optuna_search.worker").info("trial 3: completed")
    >>> stream.getvalue()[19:]
    ' box/w0: trial 3: completed\\n'
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import TextIO

LOGGER = "optuna_search"
_state = {"worker": f"{os.uname().nodename}/pid{os.getpid()}"}
_write_lock = threading.RLock()  # re-entrant: a signal handler may log mid-line


class _Format(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            message += " (" + "".join(self.formatException(record.exc_info).splitlines()[-1:]) + ")"
        return f"{self.formatTime(record, self.datefmt)} {_state['worker']}: {level}{message}"


class _WholeLines(logging.StreamHandler[TextIO]):
    """A line and its newline in one write, under one lock for the whole process."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except Exception:  # a closed stream: printing is best effort (search.console)
            self.handleError(record)

    def write_line(self, line: str) -> None:
        with _write_lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def configure(
    *, verbosity: int = 0, log_file: str | None = None, stream: TextIO | None = None
) -> None:
    """Set the service's logging up (idempotent): ``verbosity`` 1 for ``-v``, -1 for ``-q``."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    logger.setLevel(level)
    logger.propagate = False
    console = _WholeLines(stream or sys.stdout)
    console.setFormatter(_Format())
    logger.addHandler(console)
    if log_file is not None:
        file = _WholeLines(open(log_file, "a", encoding="utf-8"))  # noqa: SIM115 (kept open)
        file.setFormatter(_Format())
        logger.addHandler(file)
    logging.raiseExceptions = False  # a broken stream never raises out of a log call
    _state["verbosity"] = str(verbosity)
    if "optuna" in sys.modules:
        adopt_optuna()


def adopt_optuna() -> None:
    """Optuna's own lines in the same format and stream, at the chosen verbosity (called
    once Optuna is imported: the instant commands never import it)."""
    import optuna

    verbose = int(_state.get("verbosity", "0")) > 0
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    ours = logging.getLogger(LOGGER).handlers
    optuna_logger = logging.getLogger("optuna")
    for handler in list(optuna_logger.handlers):
        optuna_logger.removeHandler(handler)
    for handler in ours:
        optuna_logger.addHandler(handler)
    optuna_logger.propagate = False


def set_worker(name: str) -> None:
    """The name every following line carries (the worker's, once it is known)."""
    _state["worker"] = name


def relay(line: str) -> None:
    """A line already formatted by another process (a launched worker): to every handler's
    stream as it is, whole."""
    for handler in logging.getLogger(LOGGER).handlers:
        if isinstance(handler, _WholeLines):
            with contextlib.suppress(Exception):  # a closed stream: printing is best effort
                handler.write_line(line)
