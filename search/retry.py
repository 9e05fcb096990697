"""Riding out a database that is briefly gone: retries with backoff for transient errors.

A lost connection (a database restart, a network blip), a busy SQLite file, or a PostgreSQL
at its connection limit ("too many clients") is transient: the call is retried with
exponential backoff for up to :data:`RETRY_SECONDS`. Anything else is raised at once.

Example:
    >>> calls = []
    >>> retrying(lambda: calls.append(1) or len(calls))
    1
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy

_log = logging.getLogger("optuna_search.storage")

T = TypeVar("T")

RETRY_SECONDS = 180.0
"""How long a storage call keeps retrying through a lost connection (a database restart,
a network blip), a locked SQLite file or a full server before it gives up."""


def transient(error: BaseException | None) -> bool:
    """A lost or refused connection, or a busy SQLite file: worth retrying."""
    while error is not None:
        if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
            return True
        if type(error).__module__.startswith("psycopg") and type(error).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return True
        error = error.__cause__ or error.__context__
    return False


def backoff(call: Callable[[], T], *, worth_retrying: Callable[[Exception], bool], what: str) -> T:
    """``call()``, retried with exponential backoff (0.2 s up to 5 s a wait) for up to
    :data:`RETRY_SECONDS` while ``worth_retrying(error)``; other errors are raised at once."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.2
    while True:
        try:
            return call()
        except Exception as e:
            if not worth_retrying(e) or time.monotonic() + delay > deadline:
                raise
            _log.warning(
                "%s failed (%s); retrying in %.1f s",
                what,
                str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def retrying(call: Callable[..., T], *args: Any, what: str = "storage call", **kwargs: Any) -> T:
    """``call(*args, **kwargs)``, retried while the error is :func:`transient`."""
    return backoff(lambda: call(*args, **kwargs), worth_retrying=transient, what=what)
