"""The GPU memory ledger, exercised on the CPU with made-up capacities and real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from search.gpu import MemoryLedger

GIB = 2**30


def test_reservations_add_up_and_are_released(tmp_path: Path) -> None:
    ledger = MemoryLedger("gpu0", capacity=10 * GIB, folder=tmp_path)
    with ledger.reserve(4 * GIB), ledger.reserve(5 * GIB):
        assert ledger.reserved() == 9 * GIB
    assert ledger.reserved() == 0


def test_a_trial_that_does_not_fit_waits_for_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from search.gpu import MemoryLedger
        ledger = MemoryLedger("gpu0", capacity=10 * 2**30, folder={str(tmp_path)!r})
        with ledger.reserve(8 * 2**30):
            print("held", flush=True)
            time.sleep(1.5)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    ledger = MemoryLedger("gpu0", capacity=10 * GIB, folder=tmp_path)
    waits: list[tuple[int, int]] = []
    started = time.monotonic()
    with ledger.reserve(4 * GIB, poll=0.1, on_wait=lambda need, free: waits.append((need, free))):
        waited = time.monotonic() - started
    holder.wait()
    assert waits == [(4 * GIB, 2 * GIB)] and waited > 0.5


def test_a_lone_trial_always_starts(tmp_path: Path) -> None:
    ledger = MemoryLedger("gpu0", capacity=1 * GIB, folder=tmp_path)
    with ledger.reserve(3 * GIB):  # the estimate is over capacity; the engine's OOM guards it
        assert ledger.reserved() == 3 * GIB


def test_reservations_of_dead_processes_are_dropped(tmp_path: Path) -> None:
    dead = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import os
        from search.gpu import MemoryLedger
        ledger = MemoryLedger("gpu0", capacity=10 * 2**30, folder={str(tmp_path)!r})
        with ledger.reserve(9 * 2**30):
            os._exit(9)  # killed while holding its reservation
    """),
        ]
    )
    dead.wait()
    ledger = MemoryLedger("gpu0", capacity=10 * GIB, folder=tmp_path)
    assert ledger.reserved() == 0
    with ledger.reserve(
        9 * GIB,
        poll=0.05,
        on_wait=lambda *a: (_ for _ in ()).throw(AssertionError("waited for a dead process")),
    ):
        pass
