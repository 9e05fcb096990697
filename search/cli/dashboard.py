"""``optuna-search dashboard``: optuna-dashboard on a study's storage, with its artifacts."""

from __future__ import annotations

import argparse
import ipaddress
import socket

from search.cli.common import add_storage_arg, add_study_arg, load_config, quiet_optuna, say
from search.errors import UsageError, as_usage_error
from search.paths import writable_folder

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
    from optuna_dashboard import run_server

    from search.artifacts import artifact_store
    from search.prepare import storage_url
    from search.storage import StorageError, mask, open_plain_storage, study_exists

    quiet_optuna()
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: give a port from 1 to 65535")
    config = load_config(args) if args.study else None
    url = storage_url(args.storage, config)
    folder = writable_folder(
        args.artifact_dir or (config.artifacts if config else "artifacts"), "--artifact-dir"
    )
    _probe(args.host, args.port)
    with as_usage_error(StorageError):
        storage = open_plain_storage(url)
    if config is not None and not study_exists(storage, config.name):
        raise UsageError(
            f"no study {config.name!r} in {mask(url)}: run 'optuna-search run --study "
            f"{args.study}' first, or leave out --study to browse the storage"
        )
    if not _loopback(args.host):
        say(
            f"warning: --host {args.host} exposes the dashboard: optuna-dashboard has no login, "
            "and every visitor can change and delete studies; to reach it from another "
            f"machine, keep the default host and tunnel: ssh -L {args.port}:127.0.0.1:"
            f"{args.port} THIS_HOST"
        )
    print(
        f"optuna-dashboard on http://{args.host}:{args.port}/ (storage {mask(url)}, "
        f"artifacts {folder}); Ctrl-C to stop",
        flush=True,
    )
    run_server(storage, host=args.host, port=args.port, artifact_store=artifact_store(folder))
    return 0


def _probe(host: str, port: int) -> None:
    """A clear error before the server prints a traceback: the address must be free."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            # As the server itself does: a port the last run served on is still free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        raise UsageError(
            f"cannot listen on {host}:{port} ({e.strerror or e}): choose another --port or --host"
        ) from None


def _loopback(host: str) -> bool:
    try:
        return all(
            ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None)
        )
    except (OSError, ValueError):
        return False
