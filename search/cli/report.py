"""``optuna-search report``: a self-contained HTML report of a study (plotly), or PNGs."""

from __future__ import annotations

import argparse

from search.cli.common import add_storage_arg, add_study_arg, load_study
from search.errors import UsageError
from search.paths import writable_file, writable_folder

HELP = DESCRIPTION = "a self-contained HTML report of a study (plotly), or PNGs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_study_arg(p)
    add_storage_arg(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="the HTML file (--format png: a folder for one PNG per figure)",
    )
    p.add_argument("--format", default="html", metavar="html|png")
    p.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="trials in the table and learning curves (default 10)",
    )


def take_action(args: argparse.Namespace) -> int:
    from search.report import write_report

    if args.format not in ("html", "png"):
        raise UsageError(f"--format {args.format!r}: use html or png")
    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    check = writable_file if args.format == "html" else writable_folder
    check(args.output, "-o")
    config, study, _ = load_study(args)
    for path in write_report(study, config, args.output, fmt=args.format, top=args.top):
        print(f"wrote {path}")
    return 0
