"""How a worker stops: SIGINT or SIGTERM, handled so that no trial is left RUNNING.

The first signal interrupts a training run at once (the trial is recorded as interrupted and
re-queued to resume from its checkpoint) or stops the loop before the next trial; a second
exits at once.

Example:
    >>> signals = Signals()
    >>> signals.received is None and not signals.in_training
    True
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the worker. A KeyboardInterrupt, so that Optuna records the
    running trial as failed (never leaving it RUNNING) and re-raises it to stop the loop."""


class Signals:
    """The worker's view of SIGINT/SIGTERM: set by its handler, read by the objective."""

    def __init__(self) -> None:
        self.received: str | None = None
        self.in_training = False

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal has arrived."""
        if self.received:
            raise Interrupted(self.received)


def handle(signals: Signals, log: Callable[[str], None]) -> Callable[[], None]:
    """Install the worker's handlers for SIGINT and SIGTERM; returns what restores the
    previous ones."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signals.received is not None:
            log(f"{name} again: exiting at once")
            os._exit(128 + signum)
        signals.received = name
        log(
            f"{name}: stopping; the running trial is recorded and re-queued ({name} again to "
            "exit at once)"
        )
        if signals.in_training:
            raise Interrupted(name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
