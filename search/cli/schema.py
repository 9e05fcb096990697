"""``optuna-search schema``: the JSON Schema of study configs, for editors (no torch)."""

from __future__ import annotations

import argparse

from search.paths import writable_file

HELP = DESCRIPTION = "print the JSON Schema of study configs (editors complete and check keys)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write it here instead (the shipped one: study_configs/schema.json)",
    )


def take_action(args: argparse.Namespace) -> int:
    from search.schema import study_schema, to_json

    if args.output is not None:
        writable_file(args.output, "-o").parent.mkdir(parents=True, exist_ok=True)
    text = to_json(study_schema())
    if args.output is None:
        print(text, end="")
        return 0
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.output}")
    return 0
