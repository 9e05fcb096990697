"""Several workers on one host: one process per GPU slot (or per CPU worker), one study.

``optuna-search run --gpus 0,1,2,3 [--trials-per-gpu K]`` starts K ``optuna-search worker``
processes per listed GPU, each seeing only its GPU (``CUDA_VISIBLE_DEVICES``); ``--workers K``
starts K workers on one device (the CPU, for tests and small runs). The launcher:
- relays every line a worker logs, whole (each carries the worker's name, e.g.
  ``gpu-box/w2/gpu1``), to its own console and ``--log-file``;
- forwards Ctrl-C / SIGTERM to every worker once (they record their running trial and
  stop); a second signal kills them at once;
- exits non-zero if a worker failed for a reason other than a trial's own error (trial
  errors are recorded on the trial and the worker goes on, exiting 0).

Workers run in their own process group, so a Ctrl-C in the terminal reaches only the
launcher, which forwards it exactly once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search import log

if TYPE_CHECKING:
    from search.config import StudyConfig

_log = logging.getLogger("optuna_search.launcher")


@dataclass(frozen=True)
class Slot:
    """One worker process to start."""

    name: str
    device: str
    visible_gpu: str | None = None
    """The value of CUDA_VISIBLE_DEVICES for this worker (None: inherit)."""


def gpu_slots(gpus: Sequence[int], per_gpu: int) -> list[Slot]:
    """K slots per GPU, each seeing only its GPU as ``cuda:0``."""
    return [
        Slot(f"w{i * per_gpu + k} gpu{gpu}", "cuda:0", str(gpu))
        for i, gpu in enumerate(gpus)
        for k in range(per_gpu)
    ]


def device_slots(device: str, count: int) -> list[Slot]:
    return [Slot(f"w{i} {device}", device) for i in range(count)]


def worker_argv(
    *,
    study: str,
    config: StudyConfig,
    heartbeat_interval: int,
    grace_period: int,
    data_dir: str | None,
    compile: bool,
    trials_per_gpu: int,
    dry_run: float | None,
    verbosity: int = 0,
) -> list[str]:
    """The ``worker`` flags that run the same study the same way as the launcher was asked
    to (the config's overrides included); each slot adds its device and index."""
    out = ["--study", study, "--heartbeat-interval", str(heartbeat_interval)]
    out += ["--grace-period", str(grace_period)]
    if config.trials is not None:
        out += ["--n-trials", str(config.trials)]
    if config.timeout is not None:
        out += ["--timeout", str(config.timeout)]
    if data_dir:
        out += ["--data-dir", data_dir]
    if compile:
        out.append("--compile")
    if trials_per_gpu > 1:
        out += ["--trials-per-gpu", str(trials_per_gpu)]
    if dry_run is not None:
        out += ["--dry-run", str(dry_run)]
    if verbosity:  # the launcher keeps --log-file: it writes the lines it relays
        out.append("-q" if verbosity < 0 else "-" + "v" * verbosity)
    return out


def launch(
    slots: Sequence[Slot],
    worker_args: Sequence[str],
    *,
    relay: Callable[[str], None] = log.relay,
) -> int:
    """Start one ``optuna-search worker`` per slot, relay their lines (each already carries
    its worker's name and time) whole, and wait for them all.

    Returns 0 when every worker ended normally, 128 + signal when stopped by a signal, and 1
    when a worker failed on its own.
    """
    procs: list[subprocess.Popen[str]] = []
    readers = []
    for index, slot in enumerate(slots):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if slot.visible_gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.visible_gpu
        cmd = [sys.executable, "-m", "search.cli", "worker", *worker_args,
               "--device", slot.device, "--worker-index", str(index), "--launched"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, start_new_session=True)  # fmt: skip
        procs.append(proc)
        reader = threading.Thread(target=_relay, args=(proc, relay), daemon=True)
        reader.start()
        readers.append(reader)

    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        first = len(received) == 1
        _log.info(
            f"{signal.Signals(signum).name}: "
            + ("stopping the workers (again to kill them)" if first else "killing the workers")
        )
        for proc in procs:
            if proc.poll() is None:
                with _ignore_gone():
                    proc.send_signal(signal.SIGTERM if first else signal.SIGKILL)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [proc.wait() for proc in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for reader in readers:
        reader.join(timeout=5)
    if received:
        return 128 + received[0]
    failed = [(slot.name, code) for slot, code in zip(slots, codes, strict=True) if code != 0]
    for name, code in failed:
        _log.error(f"worker {name} failed (exit status {code}); see its lines above")
    return 1 if failed else 0


def _relay(proc: subprocess.Popen[str], relay: Callable[[str], None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        relay(line.rstrip("\n"))


class _ignore_gone:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        return isinstance(value, ProcessLookupError)
