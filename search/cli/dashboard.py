"""``optuna-search dashboard``: optuna-dashboard on a study's storage, with its artifacts."""

from __future__ import annotations

import argparse

from search.cli.common import add_storage_arg, add_study_arg, load_config, quiet_optuna
from search.errors import UsageError, as_usage_error

HELP = "optuna-dashboard on the study's storage, with its artifacts"
DESCRIPTION = "Start optuna-dashboard on the storage (and artifact folder) of a study."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(
        p, required=False, help="take the storage and artifact folder from this study config"
    )
    add_storage_arg(p)
    p.add_argument(
        "--artifact-dir", metavar="DIR", help="default: the config's artifacts:, else ./artifacts"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="default 127.0.0.1 (0.0.0.0 exposes it to the network)"
    )
    p.add_argument("--port", type=int, default=8080)


def take_action(args: argparse.Namespace) -> int:
    import socket

    from optuna_dashboard import run_server

    from search.artifacts import artifact_store
    from search.prepare import storage_url
    from search.storage import StorageError, mask, open_plain_storage

    quiet_optuna()
    config = load_config(args) if args.study else None
    url = storage_url(args.storage, config)
    folder = args.artifact_dir or (config.artifacts if config else "artifacts")
    with socket.socket() as probe:  # a clear error before the server prints a traceback
        try:
            probe.bind((args.host, args.port))
        except OSError as e:
            raise UsageError(
                f"cannot listen on {args.host}:{args.port} ({e.strerror}): "
                "choose another --port or --host"
            ) from None
    with as_usage_error(StorageError):
        storage = open_plain_storage(url)
    print(
        f"optuna-dashboard on http://{args.host}:{args.port}/ (storage {mask(url)}, "
        f"artifacts {folder}); Ctrl-C to stop",
        flush=True,
    )
    run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store(folder))
    return 0
