"""The ``optuna-search`` command line: one module per command, its parser beside its handler.

Each command module has ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)`` and
``take_action(args) -> int`` (as Optuna's own CLI pairs them); the work itself lives in the
modules named after it (``search.prepare``, ``search.retrain``, ``search.report``, ...).
Bad input raises :class:`search.errors.UsageError`: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from model.spec import SpecError
from search.cli.common import Parser
from search.console import guard
from search.errors import UsageError

COMMANDS = (
    "params",
    "train",
    "validate",
    "space",
    "run",
    "worker",
    "best",
    "export",
    "retrain",
    "report",
    "dashboard",
)
"""The commands, in the order ``--help`` lists them; each is the module of its name."""

__all__ = ["COMMANDS", "UsageError", "build_parser", "main", "run"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="optuna-search",
        description="Hyperparameter and architecture search for small ResNets on CIFAR-10.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"search.cli.{name}")
        p = commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(p)
        p.set_defaults(handler=module.take_action)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    guard()  # a closed stdout (| head, a dead launcher) never fails a trial
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (UsageError, SpecError) as e:
        print(f"optuna-search {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"optuna-search {args.command}: interrupted", file=sys.stderr)
        return 130


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    sys.exit(main(argv))
