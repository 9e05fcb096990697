"""``optuna-search studies``: the studies in a storage, with their counts and best values."""

from __future__ import annotations

import argparse
import json

from search.cli.common import add_storage_arg, quiet_optuna, say
from search.errors import as_usage_error

HELP = DESCRIPTION = "list the studies in a storage: config, objectives, counts, best value"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_storage_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON object")


def take_action(args: argparse.Namespace) -> int:
    from search.prepare import storage_url
    from search.storage import StorageError, mask, open_storage
    from search.studies import summaries

    quiet_optuna()
    url = storage_url(args.storage)
    with as_usage_error(StorageError):
        storage = open_storage(url, create=False)  # listing creates nothing
    found = summaries(storage)
    if args.json:
        print(json.dumps({"storage": mask(url), "studies": [s.as_json() for s in found]}))
        return 0
    if not found:
        say(f"no study in {mask(url)} yet")
        return 0
    print(f"{len(found)} {'study' if len(found) == 1 else 'studies'} in {mask(url)}:")
    header = f"{'study':<24} {'config':<22} {'objectives':<24} {'trained':>7} {'rejected':>8} "
    print(header + f"{'running':>7} {'best':>8}  last activity")
    for s in found:
        best = (
            f"{s.best_value[0]:.4f}"
            if s.best_value
            else (f"{s.pareto_size} front" if s.pareto_size else "-")
        )
        when = f"{s.last_activity:%Y-%m-%d %H:%M}" if s.last_activity else "-"
        objectives = ", ".join(s.objectives) or ", ".join(s.directions)
        print(
            f"{s.name:<24} {s.config or '(not optuna-search)':<22} {objectives:<24} "
            f"{s.trained:>7} {s.rejected:>8} {s.running:>7} {best:>8}  {when}"
        )
    return 0
