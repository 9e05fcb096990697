"""Where a trial ran: host, device, library versions and the project's commit.

Recorded on every trial that trains, so that a result can be traced and compared.

Example:
    >>> sorted(environment(device="cpu", framework=None))
    ['device', 'git_commit', 'host', 'optuna_version', 'torch_version']
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from pathlib import Path

import optuna

COMMIT_ENV = "OPTUNA_SEARCH_GIT_COMMIT"


@cache
def git_commit() -> str | None:
    """The project's commit: $OPTUNA_SEARCH_GIT_COMMIT (set in container images, which hold
    no .git), else ``git rev-parse`` when running from a checkout."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(*, device: str, framework: str | None) -> dict[str, str | None]:
    """The provenance attrs of a trial: ``device`` as the trainer names it, ``framework`` the
    torch version (None in a dry run)."""
    return {
        "device": device,
        "host": platform.node(),
        "torch_version": framework,
        "optuna_version": optuna.__version__,
        "git_commit": git_commit(),
    }
