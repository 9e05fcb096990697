"""Where the commands write: every output path is checked before the work starts.

A report, an export, a saved model, a checkpoint or an artifact folder that cannot be written
is bad input: one line naming the path and the fix, before anything trains or is written (a
model saved to an impossible path used to fail only after training). Missing folders on the
way are created when the work writes, not when it is checked.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> writable_file(f"{folder}/new/report.html", "-o").name
    'report.html'
"""

from __future__ import annotations

import os
from pathlib import Path

from search.errors import UsageError


def _existing_ancestor(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(".")


def writable_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a file this process can create or replace (its folders may be missing);
    raises :class:`UsageError` naming ``what`` (the flag or key) otherwise."""
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise UsageError(f"{what} {str(path)!r}: give a file name")
    if p.is_dir():
        raise UsageError(f"{what} {p}: is a folder: give a file name inside it")
    if p.exists() and not os.access(p, os.W_OK):
        raise UsageError(f"{what} {p}: the file is not writable")
    _check_folder(p.parent, what, p)
    return p


def writable_folder(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a folder this process can create (or write into)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {p}: is a file, not a folder: give a folder")
    _check_folder(p, what, p)
    return p


def _writable(folder: Path) -> bool:
    """Whether files can be made in ``folder``: permissions (root passes them all), a
    read-only mount, and the kernel's own file systems, where nothing can be created."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    if str(folder.resolve()).startswith(("/proc", "/sys")):
        return False
    try:
        return not os.statvfs(folder).f_flag & os.ST_RDONLY
    except OSError:
        return False


def _check_folder(folder: Path, what: str, target: Path) -> None:
    existing = folder if folder.exists() else _existing_ancestor(folder)
    if not existing.is_dir():
        raise UsageError(f"{what} {target}: {existing} is a file, not a folder")
    if not _writable(existing):
        raise UsageError(f"{what} {target}: cannot write in {existing}: give a writable path")
