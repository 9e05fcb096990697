"""How a worker stops: SIGINT or SIGTERM, handled so that no trial is left RUNNING.

The first signal interrupts a training run at once (the trial is recorded as interrupted and
re-queued to resume from its checkpoint) or stops the loop before the next trial. Schedulers
signal every process of a job at once (Slurm's ``scancel``, systemd, ``kill -- -PGID``), so a
worker may get the same stop twice, directly and from its launcher: a repeated SIGTERM is the
same stop, never a reason to abandon the trial. Only a second Ctrl-C (SIGINT after SIGINT)
exits at once, as a person at a terminal means it.

A launched worker also stops when its launcher dies (``kill -9``, a closed terminal): on
Linux the kernel sends it SIGTERM (``PR_SET_PDEATHSIG``), elsewhere a thread notices that its
parent changed.

Example:
    >>> signals = Signals()
    >>> with signals.interruptible():
    ...     with signals.shielded():
    ...         signals.interruptible_now
    False
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

PR_SET_PDEATHSIG = 1
"""prctl(2): the signal this process gets when its parent dies."""
PARENT_POLL_SECONDS = 1.0


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the worker. A KeyboardInterrupt, so that Optuna records the
    running trial as failed (never leaving it RUNNING) and re-raises it to stop the loop."""


class Signals:
    """The worker's view of SIGINT/SIGTERM: set by its handler, read by the objective.

    While training is *interruptible*, the handler raises :class:`Interrupted` at once (an
    epoch on a GPU can take minutes); inside a *shielded* block (a storage write between
    epochs) it only takes note, and the block raises on its way out.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self.interruptible_now = False

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal has arrived."""
        if self.received:
            raise Interrupted(self.received)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Training: a signal interrupts the block at once."""
        self.interruptible_now = True
        try:
            self.check()
            yield
        finally:
            self.interruptible_now = False

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Within interruptible training, a block a signal must not cut in half."""
        was = self.interruptible_now
        self.interruptible_now = False
        try:
            yield
        finally:
            self.interruptible_now = was
        if was:
            self.check()


def handle(signals: Signals, log: Callable[[str], None]) -> Callable[[], None]:
    """Install the worker's handlers for SIGINT and SIGTERM; returns what restores the
    previous ones."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signals.received is not None:
            if signum == signal.SIGINT and signals.received == "SIGINT":
                log("SIGINT again: exiting at once")
                os._exit(128 + signum)
            log(f"{name}: already stopping ({signals.received})")
            return
        signals.received = name
        log(
            f"{name}: stopping; the running trial is recorded and re-queued"
            + (" (Ctrl-C again to exit at once)" if signum == signal.SIGINT else "")
        )
        if signals.interruptible_now:
            raise Interrupted(name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def stop_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` (its launcher) dies, as if it were stopped."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:
        # Also on Linux: the parent may have died before prctl, and some runtimes reset it.
        while os.getppid() == parent:
            threading.Event().wait(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
