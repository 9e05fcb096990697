"""Sharing one GPU between several workers without running it out of memory.

With ``--trials-per-gpu K`` several worker processes train on the same GPU. Before a trial
trains, its worker reserves the memory the trial will need (estimated from the spec and the
batch size, see ``model.estimate``) in a ledger that all workers of that GPU on this host
share: a folder of reservation files under a file lock. A trial whose reservation does not
fit waits until others finish; a lone trial always starts (if the estimate was wrong, the
engine's out-of-memory error still ends it cleanly). Reservations of processes that died are
dropped.

The ledger is plain Python and file locks, so the tests exercise it on the CPU with made-up
capacities.

Example:
    >>> import tempfile
    >>> ledger = MemoryLedger("gpu0", capacity=10 * 2**30, folder=tempfile.mkdtemp())
    >>> with ledger.reserve(4 * 2**30):
    ...     ledger.reserved() // 2**30
    4
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

if TYPE_CHECKING:
    from model.data import DataSplits
    from model.recipe import TrainConfig
    from model.spec import ResNetSpec

CONTEXT_BYTES = 1 << 30
"""Per-process memory beyond the trial's own: the CUDA context, cuDNN workspaces, the
allocator's slack (measured on an H100: 0.5-0.9 GiB)."""


class MemoryLedger:
    """The reservations on one GPU of this host, shared by every worker process using it.

    Each reservation is a file holding its size, kept under an exclusive ``flock`` by the
    process that made it for as long as it lasts. A file whose lock can be taken belongs to a
    process that died: it is dropped. Locks, unlike process ids, also work between containers
    sharing the folder (the compose workers share ``/work/locks``).
    """

    def __init__(self, gpu: str, *, capacity: int, folder: str | os.PathLike[str] | None = None):
        base = Path(
            folder
            or os.environ.get("OPTUNA_SEARCH_LOCK_DIR")
            or Path(tempfile.gettempdir()) / "optuna-search-gpus"
        )
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in gpu)
        self.folder = base / safe
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.folder / "ledger.lock"))
        self.capacity = capacity

    def _used(self) -> int:
        """Bytes held by live reservations; drops those of dead processes. Under ``lock``."""
        used = 0
        for path in self.folder.glob("*.reservation"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: a live reservation
                used += int(path.read_text() or 0)
            else:
                path.unlink(missing_ok=True)  # its process died without releasing it
            finally:
                os.close(fd)
        return used

    def reserved(self) -> int:
        """Bytes reserved by live processes."""
        with self.lock:
            return self._used()

    @contextlib.contextmanager
    def reserve(
        self,
        nbytes: int,
        *,
        poll: float = 2.0,
        on_wait: Callable[[int, int], None] | None = None,
    ) -> Iterator[None]:
        """Hold ``nbytes`` of the GPU while the block runs; wait while they do not fit."""
        path = self.folder / f"{uuid.uuid4().hex}.reservation"
        waited = False
        while True:
            with self.lock:
                used = self._used()
                if used == 0 or used + nbytes <= self.capacity:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    os.write(fd, str(nbytes).encode())
                    break
            if on_wait is not None and not waited:
                on_wait(nbytes, self.capacity - used)
            waited = True
            time.sleep(poll)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)


def cuda_ledger(*, fraction: float = 0.92) -> MemoryLedger:
    """The ledger of this process's GPU (``cuda:0`` as CUDA_VISIBLE_DEVICES shows it)."""
    import torch

    props = torch.cuda.get_device_properties(0)
    ident = str(getattr(props, "uuid", "")) or os.environ.get("CUDA_VISIBLE_DEVICES", "0")
    return MemoryLedger(f"gpu-{ident}", capacity=int(props.total_memory * fraction))


class TrialMemory:
    """The GPU memory of one worker's trials: estimated, reserved, measured, released.

    On a GPU, each trial's estimate (spec, batch size and the data on the device) is held in
    the shared ledger while it trains (when several workers share the GPU), the peak is
    measured, and the allocator's cache is given back afterwards so that the other workers
    can use what the ledger says is free. On the CPU (or in a dry run) it does nothing and
    never imports torch.
    """

    def __init__(self, device: str, ledger: MemoryLedger | None = None) -> None:
        self.cuda = device.startswith("cuda")
        self.ledger = ledger

    def estimate(self, spec: ResNetSpec, config: TrainConfig, data: DataSplits | None) -> int:
        """Bytes the trial will need on the device (0 off a GPU)."""
        if not self.cuda or data is None:
            return 0
        from model.estimate import data_memory_bytes, training_memory_bytes

        data_bytes = data_memory_bytes(train_images=len(data.train), val_images=len(data.val))
        return training_memory_bytes(spec, batch_size=config.batch_size) + data_bytes

    @contextlib.contextmanager
    def hold(
        self, nbytes: int, *, on_wait: Callable[[int, int], None] | None = None
    ) -> Iterator[None]:
        """Reserve ``nbytes`` (plus the process's context) while the block trains;
        ``on_wait(needed, unreserved)`` is called once if it has to wait."""
        if not self.cuda:
            yield
            return
        import torch

        reservation = (
            self.ledger.reserve(nbytes + CONTEXT_BYTES, on_wait=on_wait)
            if self.ledger is not None
            else contextlib.nullcontext()
        )
        with reservation:
            torch.cuda.reset_peak_memory_stats()
            try:
                yield
            finally:
                torch.cuda.empty_cache()

    def peak_gib(self) -> float | None:
        """The peak memory of the last trial, in GiB (None off a GPU)."""
        if not self.cuda:
            return None
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**30, 2)
