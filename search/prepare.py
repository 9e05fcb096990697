"""Run preparation: everything that can fail on bad input, checked before a study is created
or a trial runs (the config and its overrides, the storage URL, the device, the data).

``run`` and ``worker`` call :func:`prepare`; a worker joining from a host without the config
file takes the config stored with the study (:func:`stored_study_config`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from search.config import ConfigError, StudyConfig, find_config, parse_config, parse_timeout
from search.cpu_time import check_cpu_time
from search.errors import UsageError, as_usage_error
from search.storage import StorageError, open_storage, parse_url, resolve_url
from search.study import stored_config, study_exists

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
) -> StudyConfig:
    """The config with the command line's overrides applied (each checked)."""
    if trials is not None:
        if trials <= 0:
            raise UsageError(f"--n-trials must be positive, got {trials}")
        config = dataclasses.replace(config, trials=trials)
    if timeout is not None:
        try:
            config = dataclasses.replace(config, timeout=parse_timeout(timeout, config.path))
        except ConfigError:
            raise UsageError(
                f"--timeout {timeout!r} is not a duration: give seconds or e.g. 90m, 12h"
            ) from None
    if data_dir is not None:
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, data_dir=data_dir)
        )
    return config


def storage_url(flag: str | None, config: StudyConfig | None = None) -> str:
    """The storage URL (flag, environment, config, default), its syntax and driver checked."""
    url = resolve_url(flag, config.storage if config else None)
    with as_usage_error(StorageError):
        parse_url(url)
    return url


def open_checked(url: str) -> BufferedRDBStorage:
    """The storage at ``url``; one line naming the problem when it cannot be opened."""
    with as_usage_error(StorageError):
        return open_storage(url)


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
    if dry_run is not None:
        if not dry_run >= 0:
            raise UsageError(f"--dry-run must be at least 0 seconds, got {dry_run}")
        return RunPlan(config, url, "cpu", None)
    import torch  # the first step that needs it

    from model.engine import DeviceError, resolve_device

    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with as_usage_error(DeviceError):
        resolve_device(chosen)
    if check_cpu:
        note = check_cpu_time(config, chosen, explicit=device is not None)
        if note is not None:
            say(note)
    return RunPlan(config, url, chosen, load_run_data(config))


def load_run_data(config: StudyConfig) -> DataSplits:
    """The data splits the config asks for; a data problem is a usage error."""
    from model.data import DataError, load_data

    with as_usage_error(DataError):
        return load_data(**dataclasses.asdict(config.data))  # its fields are load_data's


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
    storage = open_checked(url)
    if not study_exists(storage, study):
        return None  # the usual "no such study config" error follows
    raw = stored_config(optuna.load_study(study_name=study, storage=storage))
    config = parse_config(raw, path=Path(f"{study}.yaml (stored in the study)"))
    return config, url
