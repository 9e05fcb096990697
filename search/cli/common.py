"""What several commands share: the parser class, common flags, and loading a study.

Heavy imports (torch, torchvision) happen only inside the commands that train, so that
``--help``, ``params``, ``validate`` and ``space`` answer at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from model.spec import SPEC_DEFAULTS, ResNetSpec, make_spec
from search.errors import UsageError, as_usage_error
from search.flags import ARCH_FLAGS

if TYPE_CHECKING:
    import optuna

    from search.config import StudyConfig
    from search.storage import BufferedRDBStorage


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def say(line: str) -> None:
    """A note for the user beside the output (stderr)."""
    print(line, file=sys.stderr, flush=True)


def int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers, e.g. 4,5,3"
        ) from None


def pool(text: str) -> int | str:
    if text == "global":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a pool size: give an integer or 'global'"
        ) from None


# --- an architecture ---------------------------------------------------------------------------


def add_arch_args(parser: argparse.ArgumentParser) -> None:
    d = SPEC_DEFAULTS
    group = parser.add_argument_group("architecture (a named one, or the family's parameters)")
    group.add_argument("--arch", metavar="NAME", help="a named architecture, e.g. ResNet26-B453")
    group.add_argument(
        ARCH_FLAGS["blocks"], type=int_list, metavar="B1,B2,..", help="blocks per layer"
    )
    group.add_argument(
        ARCH_FLAGS["channels"], type=int_list, metavar="C1,C2,..", help="width per layer"
    )
    group.add_argument(
        ARCH_FLAGS["strides"],
        type=int_list,
        metavar="S1,..",
        help="default: 1 then 2 for each later layer",
    )
    for key, metavar, text in (
        ("kernels", "F", "conv kernel, one or per layer"),
        ("shortcut_kernels", "K", "shortcut kernel, one or per layer"),
    ):
        group.add_argument(
            ARCH_FLAGS[key], dest=key, type=int_list, default=[d[key]], metavar=metavar, help=text
        )
    group.add_argument(
        ARCH_FLAGS["pool"],
        type=pool,
        default=d["pool"],
        metavar="P|global",
        help=f"default: {d['pool']}",
    )
    for key in ("stem_channels", "num_classes"):
        group.add_argument(
            ARCH_FLAGS[key], type=int, default=d[key], metavar="N", help=f"default: {d[key]}"
        )


def spec_from_args(args: argparse.Namespace) -> ResNetSpec:
    """The architecture of ``--arch`` or of the family flags (a bad one is a usage error)."""
    from model.architectures import UnknownArchitectureError, architecture

    if args.arch is not None:
        if args.blocks is not None or args.channels is not None:
            raise UsageError("give either --arch or --blocks/--channels, not both")
        with as_usage_error(UnknownArchitectureError):
            return architecture(args.arch)
    if args.blocks is None or args.channels is None:
        raise UsageError("give --arch NAME, or both --blocks and --channels")
    return make_spec(**{key: getattr(args, key) for key in ARCH_FLAGS})


# --- a study --------------------------------------------------------------------------------


def add_study_arg(
    parser: argparse.ArgumentParser,
    *,
    required: bool = True,
    help: str = "a config in study_configs/ by name, or a YAML file",
) -> None:
    parser.add_argument("--study", required=required, metavar="NAME|FILE", help=help)


def add_storage_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL (default: $OPTUNA_SEARCH_STORAGE, the config's "
        "storage:, else sqlite:///optuna-search.db)",
    )


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", metavar="cpu|cuda|cuda:N", help="default: cuda if present")


def add_data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="override the config's data_dir")


def quiet_optuna() -> None:
    """Optuna logs each study and trial at INFO; the commands log their own progress, and
    Optuna's warnings join them in the same format (its INFO lines too with ``-v``)."""
    from search.log import adopt_optuna

    adopt_optuna()


def load_config(args: argparse.Namespace, config: StudyConfig | None = None) -> StudyConfig:
    """The --study config (or ``config``), with the command line's overrides applied."""
    from search.config import ConfigError
    from search.config import load_config as load
    from search.prepare import with_overrides

    with as_usage_error(ConfigError):
        config = config or load(args.study)
    return with_overrides(
        config,
        trials=getattr(args, "n_trials", None),
        timeout=getattr(args, "timeout", None),
        data_dir=getattr(args, "data_dir", None),
        warm_start=getattr(args, "warm_start", None),
    )


def config_and_url(args: argparse.Namespace) -> tuple[StudyConfig, str]:
    """The validated config and storage URL (flag, environment, config, default)."""
    from search.prepare import storage_url

    quiet_optuna()
    config = load_config(args)
    return config, storage_url(args.storage, config)


def load_study(
    args: argparse.Namespace,
) -> tuple[StudyConfig, optuna.Study, BufferedRDBStorage]:
    """(config, study, storage) of an existing study, from the storage and its name alone.

    The config is the one stored with the study; a config file given as a path must match it
    (a name finds a file only to take its ``storage:``). A missing study, or a database that
    does not exist, is a usage error, and nothing is created.
    """
    import optuna

    from search.config import ConfigError
    from search.config import load_config as load
    from search.prepare import storage_url, with_overrides
    from search.storage import NoDatabase, StorageError, mask, open_storage, study_exists
    from search.study import StudyMismatch, config_of, verify

    quiet_optuna()
    given_path = Path(args.study).suffix in (".yaml", ".yml") or Path(args.study).exists()
    try:
        file_config: StudyConfig | None = load(args.study)
    except ConfigError as e:
        if given_path or "no such study config" not in str(e):
            raise UsageError(str(e)) from None
        file_config = None
    name = file_config.name if file_config is not None else args.study
    url = storage_url(args.storage, file_config)
    try:
        storage = open_storage(url, create=False)
    except NoDatabase as e:
        reason = str(e).split(": ", 1)[-1]
        raise UsageError(f"no study {name!r} in {mask(url)}: {reason}") from None
    except StorageError as e:
        raise UsageError(str(e)) from None
    if not study_exists(storage, name):
        hint = (
            f"run 'optuna-search run --study {args.study}' first"
            if file_config is not None
            else "'optuna-search studies' lists the studies there"
        )
        raise UsageError(f"no study {name!r} in {mask(url)}: {hint}")
    study = optuna.load_study(study_name=name, storage=storage)
    with as_usage_error(StudyMismatch, ConfigError):
        stored = config_of(study)
        config = stored or file_config
        if config is None:
            raise StudyMismatch(
                f"study {name!r} in {mask(url)} has no config stored with it (it was not "
                "made by optuna-search): give its config file with --study FILE"
            )
        if file_config is not None and (given_path or stored is None):
            verify(study, file_config, adopt=False)
    return with_overrides(config, data_dir=getattr(args, "data_dir", None)), study, storage


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial ``number`` of the study (one that trained), else its best."""
    from search.record import TrialRecord
    from search.results import best_trials

    if number is None:
        best = best_trials(study)
        if not best:
            raise UsageError(f"study {study.study_name} has no completed feasible trial yet")
        return best[0]
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise UsageError(
            f"study {study.study_name} has no trial {number} (trials 0..{len(trials) - 1})"
        )
    r = TrialRecord.of(match[0])
    if r.spec is None:
        raise UsageError(f"trial {number} never trained" + (f" ({r.reason})" if r.reason else ""))
    return match[0]


def default_device() -> str:
    """cuda when a GPU is present, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
