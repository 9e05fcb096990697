"""Trial artifacts: the files a finished trial leaves, shown by optuna-dashboard.

Every trial that trained uploads its learning curve (JSON); a completed trial also uploads
its final weights with the spec that rebuilds them (``model.checkpoint.load_model``). The
store is a folder (the config's ``artifacts:``, default ``./artifacts``) that all workers
share: a shared file system across hosts, a volume in docker compose.

Example:
    >>> import tempfile, optuna
    >>> store = artifact_store(tempfile.mkdtemp())
    >>> study = optuna.create_study()
    >>> trial = study.ask()
    >>> upload_curve(store, trial, {"val_accuracy": [0.5, 0.7]})
    >>> [a.filename for a in optuna.artifacts.get_all_artifact_meta(trial)]
    ['learning_curve.json']
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

if TYPE_CHECKING:
    from torch import nn


def artifact_store(folder: str | os.PathLike[str]) -> FileSystemArtifactStore:
    """The file-system store in ``folder`` (created if missing)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def _upload(
    store: FileSystemArtifactStore,
    trial: optuna.Trial,
    name: str,
    write: Callable[[Path], object],
    mimetype: str,
) -> None:
    # The store keeps the file under a fresh id; the name is what the dashboard shows.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        write(path)
        upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=trial, mimetype=mimetype
        )


def upload_curve(
    store: FileSystemArtifactStore, trial: optuna.Trial, curve: dict[str, Any]
) -> None:
    """The trial's per-epoch figures as ``learning_curve.json``."""
    _upload(
        store,
        trial,
        "learning_curve.json",
        lambda p: p.write_text(json.dumps(curve, indent=1)),
        "application/json",
    )


def upload_weights(
    store: FileSystemArtifactStore,
    trial: optuna.Trial,
    model: nn.Module,
    spec: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    """The final weights and the spec that rebuilds them, as ``model.pt``."""
    from model.checkpoint import save_model

    _upload(
        store,
        trial,
        "model.pt",
        lambda p: save_model(p, model, spec=spec, metadata=metadata),
        "application/octet-stream",
    )
