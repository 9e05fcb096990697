"""Epoch checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds the model, optimizer and EMA weights, the epoch history, the identity of
the run (spec and recipe, so a checkpoint is never resumed into another run), and every RNG
state the run draws from. It is written to a temporary file and renamed, so a process
killed mid-write leaves the previous checkpoint intact.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.pt"
    >>> save_checkpoint(path, {"epoch": 3})
    >>> load_checkpoint(path)["epoch"]
    3
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from model.training import CheckpointMismatch


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved state, or None when there is no checkpoint at ``path`` yet."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a checkpoint, unreadable: torch raises many kinds
        raise CheckpointMismatch(
            f"checkpoint {path} is not readable (torch.load: {type(e).__name__}): remove it "
            "or give another path"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointMismatch(f"checkpoint {path} is not a checkpoint: remove it")
    return state


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """The global torch RNG states (CPU and CUDA) and the run's own data generator."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_model(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    *,
    spec: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save trained weights with the spec that rebuilds them (``model.network.build_model``)."""
    state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
    save_checkpoint(path, {"spec": spec, "state_dict": state, "metadata": metadata or {}})


def load_model(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns it (eval mode) and its metadata."""
    from model.network import build_model
    from model.spec import spec_from_dict

    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(spec_from_dict(saved["spec"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved["metadata"]
