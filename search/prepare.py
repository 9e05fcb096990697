"""Run preparation: everything that can fail on bad input, checked before a study is created
or a trial runs (the config and its overrides, the storage URL, the device, the data).

``run`` and ``worker`` call :func:`prepare`; a worker joining from a host without the config
file takes the config stored with the study (:func:`stored_study_config`).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from search.config import ConfigError, StudyConfig, WarmStartSource, find_config, parse_timeout
from search.cpu_time import check_cpu_time
from search.errors import UsageError, as_usage_error
from search.paths import writable_folder
from search.storage import StorageError, as_url, open_storage, parse_url, study_exists, url_source
from search.study import config_of
from search.warm_start import check_sources

if TYPE_CHECKING:
    from model.data import DataSplits
    from search.storage import BufferedRDBStorage


@dataclass(frozen=True)
class RunPlan:
    """What a run needs, all checked: the config, the storage URL, the device, the data
    (None in a dry run, which trains nothing)."""

    config: StudyConfig
    url: str
    device: str
    data: DataSplits | None


def with_overrides(
    config: StudyConfig,
    *,
    trials: int | None = None,
    timeout: str | None = None,
    data_dir: str | None = None,
    warm_start: str | None = None,
) -> StudyConfig:
    """The config with the command line's overrides applied (each checked); ``warm_start``
    (``NAME[,NAME2]``, studies of the same storage) adds to the config's sources."""
    if warm_start is not None:
        config = _with_warm_start(config, warm_start)
    if trials is not None:
        if trials <= 0:
            raise UsageError(f"--n-trials must be positive, got {trials}")
        config = dataclasses.replace(config, trials=trials)
    if timeout is not None:
        try:
            config = dataclasses.replace(config, timeout=parse_timeout(timeout, config.path))
        except ConfigError:
            raise UsageError(
                f"--timeout {timeout!r} is not a duration of up to a year: give seconds or "
                "e.g. 90m, 12h"
            ) from None
    if data_dir is not None:
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, data_dir=data_dir)
        )
    return config


def _with_warm_start(config: StudyConfig, names: str) -> StudyConfig:
    studies = [n.strip() for n in names.split(",")]
    if not all(studies):
        raise UsageError(f"--warm-start {names!r}: give study names, e.g. --warm-start a,b")
    if config.name in studies:
        raise UsageError(f"--warm-start {config.name}: that is this study itself")
    added = [WarmStartSource(s) for s in studies]
    sources = config.warm_start + tuple(s for s in added if s not in config.warm_start)
    # In the raw config too: the study stores it, and its note shows it.
    raw = {**config.raw, "warm_start": [s.as_raw() for s in sources]}
    return dataclasses.replace(config, warm_start=sources, raw=raw)


def storage_url(flag: str | None, config: StudyConfig | None = None) -> str:
    """The storage URL (flag, environment, config, default), its syntax and driver checked."""
    with as_usage_error(StorageError):
        given, source = url_source(flag, config.storage if config else None)
        url = as_url(given)
        try:
            parse_url(url)
        except StorageError as e:
            if source == "--storage":
                raise
            raise StorageError(f"{e} (the URL comes from {source})") from None
    return url


def open_checked(url: str, *, create: bool = True) -> BufferedRDBStorage:
    """The storage at ``url``; one line naming the problem when it cannot be opened. With
    ``create=False`` (reading a study) nothing is created."""
    with as_usage_error(StorageError):
        return open_storage(url, create=create)


def check_heartbeat(interval: int, grace_period: int) -> None:
    if interval < 1 or grace_period <= interval:
        raise UsageError(
            "--heartbeat-interval must be at least 1 and --grace-period longer than it"
        )


def prepare(
    config: StudyConfig,
    url: str,
    *,
    device: str | None,
    dry_run: float | None,
    say: Callable[[str], None],
    check_cpu: bool = True,
) -> RunPlan:
    """Check the device and load the data (nothing of it in a dry run). ``device`` None
    means cuda when there is a GPU; ``check_cpu`` applies the CPU-time policy (a launched
    worker skips it: the launcher checked it once for all)."""
    writable_folder(config.checkpoints, "the config's checkpoints:")
    writable_folder(config.artifacts, "the config's artifacts:")
    check_sources(config, url)  # before the study is created: a bad source creates nothing
    if dry_run is not None:
        if not 0 <= dry_run <= MAX_DRY_RUN:  # also NaN and inf
            raise UsageError(
                f"--dry-run must be from 0 to {MAX_DRY_RUN:g} seconds a trial, got {dry_run}"
            )
        if device is not None:
            check_device_name(device)
        return RunPlan(config, url, "cpu", None)  # nothing trains: no device is used
    import torch  # the first step that needs it

    from model.engine import DeviceError, resolve_device

    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with as_usage_error(DeviceError):
        resolve_device(chosen)
    # The CPU policy may refuse first; its note is printed after the data loaded, so that a
    # data error is the only line a bad data folder prints.
    note = check_cpu_time(config, chosen, explicit=device is not None) if check_cpu else None
    data = load_run_data(config)
    if note is not None:
        say(note)
    return RunPlan(config, url, chosen, data)


MAX_DRY_RUN = 86400.0
"""A dry-run trial sleeps at most a day (a stand-in for training, not a timer)."""


def check_device_name(device: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``, checked without torch (a dry run never imports it)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise UsageError(f"unknown device {device!r}; use cpu, cuda or cuda:N")


def load_run_data(config: StudyConfig) -> DataSplits:
    """The data splits the config asks for; a data problem is a usage error."""
    from model.data import DataError, load_data

    with as_usage_error(DataError):  # the config's data fields are load_data's arguments
        return load_data(**dataclasses.asdict(config.data), progress=sys.stderr.isatty())


def stored_study_config(study: str, storage_flag: str | None) -> tuple[StudyConfig, str] | None:
    """On a host without the study's config file: the config stored with the study (a worker
    joining from another host needs only the storage URL and the study name). None when a
    config file is found, or the storage holds no such study."""
    try:
        find_config(study)
        return None
    except ConfigError:
        pass
    url = storage_url(storage_flag)
    storage = open_checked(url, create=False)
    if not study_exists(storage, study):
        return None  # the usual "no such study config" error follows
    with as_usage_error(ConfigError):
        config = config_of(optuna.load_study(study_name=study, storage=storage))
    if config is None:
        return None  # not made by optuna-search: the usual "no such study config" error follows
    return config, url
