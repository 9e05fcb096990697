"""The CPU-time policy: say, before the first trial, what training on the CPU will cost.

A search sized for a GPU takes hours an epoch on a CPU. Without a GPU, ``run`` measures this
machine's training rate and the space's typical cost, prints the expected time per epoch,
and refuses (unless ``--device cpu`` was given explicitly) when a typical trial would take
more than a minute an epoch.
"""

from __future__ import annotations

import statistics

from search.budget import survey
from search.config import StudyConfig
from search.errors import UsageError

REFUSE_ABOVE_SECONDS = 60.0
"""Expected seconds per epoch above which the CPU is refused unless asked for explicitly."""


def training_images(config: StudyConfig) -> int:
    """The images a trial of ``config`` trains on per epoch."""
    d = config.data
    if d.train_subset:
        return d.train_subset
    return (d.synthetic_size[0] if d.dataset == "synthetic" else 50_000) - d.val_size


def check_cpu_time(config: StudyConfig, device: str, *, explicit: bool) -> str | None:
    """The note to print before training on the CPU (None on a GPU); raises
    :class:`UsageError` when the CPU would be too slow and was not asked for."""
    from model.estimate import epoch_seconds, measure_training_rate

    if device != "cpu":
        return None
    s = survey(config.space, n=300, budget=config.budget)
    if not s.feasible_macs:
        return None
    rate = measure_training_rate("cpu")
    images = training_images(config)
    typical = epoch_seconds(macs=int(statistics.median(s.feasible_macs)), images=images, rate=rate)
    largest = epoch_seconds(macs=max(s.feasible_macs), images=images, rate=rate)
    note = (
        f"no GPU in use: training on the CPU ({rate / 1e9:.0f} GMAC/s measured here); "
        f"expect about {duration(typical)} per epoch for a typical configuration of this "
        f"space and {duration(largest)} for the largest ({images:,} images)"
    )
    if typical > REFUSE_ABOVE_SECONDS and not explicit:
        raise UsageError(note + "; run on a GPU, or pass --device cpu to train on the CPU anyway")
    return note


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
