"""The error every command turns into one line on stderr and exit status 2.

Raised for bad input found after parsing (a config, a flag's value, a storage URL, a data
folder) by the CLI and by the modules it calls, so that none of them imports the CLI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class UsageError(Exception):
    """Bad user input found after parsing; printed as one line, exit status 2."""


@contextlib.contextmanager
def as_usage_error(*kinds: type[Exception]) -> Iterator[None]:
    """Exceptions of ``kinds`` raised in the block are bad input: re-raised as
    :class:`UsageError` with their message (already one line naming the fix)."""
    try:
        yield
    except kinds as e:
        raise UsageError(str(e)) from None
