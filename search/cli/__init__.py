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
from typing import Any, NoReturn

from model.spec import SpecError
from search.cli.common import Parser
from search.console import guard
from search.errors import UsageError

COMMANDS = (
    "params",
    "train",
    "validate",
    "schema",
    "space",
    "run",
    "worker",
    "best",
    "export",
    "retrain",
    "report",
    "dashboard",
    "studies",
)
"""The commands, in the order ``--help`` lists them; each is the module of its name."""

__all__ = ["COMMANDS", "UsageError", "build_parser", "main", "run"]


def add_logging_args(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v, -q and --log-file, as Optuna's CLI has them: before the command or after it."""
    default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    g = parser.add_argument_group("output")
    g.add_argument(
        "-v", "--verbose", action="count", help="debug lines too (and Optuna's)", **default
    )
    g.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only", **default)
    g.add_argument(
        "--log-file", metavar="PATH", help="also append every line to this file", **default
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="optuna-search",
        description="Hyperparameter and architecture search for small ResNets on CIFAR-10.",
    )
    add_logging_args(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"search.cli.{name}")
        p = commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(p)
        add_logging_args(p, top=False)
        p.set_defaults(handler=module.take_action)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    from search import log
    from search.paths import writable_file

    verbosity = -1 if args.quiet else (args.verbose or 0)
    if args.log_file is not None:
        writable_file(args.log_file, "--log-file").parent.mkdir(parents=True, exist_ok=True)
    log.configure(verbosity=verbosity, log_file=args.log_file)


def main(argv: Sequence[str] | None = None) -> int:
    guard()  # a closed stdout (| head, a dead launcher) never fails a trial
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        _configure_logging(args)
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
