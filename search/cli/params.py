"""``optuna-search params``: exact parameter count and MACs of one architecture (no torch)."""

from __future__ import annotations

import argparse
import json

from search.budget import DEFAULT_MAX_PARAMS, Budget
from search.cli.common import add_arch_args, spec_from_args
from search.errors import UsageError

HELP = "parameter and MAC accounting of one architecture (instant, no torch)"
DESCRIPTION = "Exact parameter count and MACs of one architecture, without building it."


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_arch_args(p)
    p.add_argument(
        "--max-params",
        type=int,
        default=DEFAULT_MAX_PARAMS,
        metavar="N",
        help=f"budget to check against (default: {DEFAULT_MAX_PARAMS:,})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--paper", action="store_true", help="print the paper's parameter tables beside our counts"
    )


def take_action(args: argparse.Namespace) -> int:
    from model.accounting import breakdown
    from model.architectures import paper_name

    if args.paper:
        print(paper_table())
        return 0
    if args.max_params <= 0:
        raise UsageError(f"--max-params must be positive, got {args.max_params}")
    spec = spec_from_args(args)
    parts = breakdown(spec)
    params = sum(p.params for p in parts)
    macs = sum(p.macs for p in parts)
    within = Budget(args.max_params).fits(params, macs)
    name = paper_name(spec) or spec.name
    if args.json:
        out = {
            "name": name,
            "family_name": spec.name,
            "params": params,
            "macs": macs,
            "max_params": args.max_params,
            "within_budget": within,
            "spec": spec.to_dict(),
            "map_sizes": list(spec.map_sizes),
            "parts": [
                {"name": p.name, "map_size": p.map_size, "params": p.params, "macs": p.macs}
                for p in parts
            ],
        }
        print(json.dumps(out))
        return 0
    print(f"{name}" + (f"  ({spec.name})" if name != spec.name else ""))
    print(f"  {'part':<8} {'map':>7} {'params':>12} {'MACs':>14}")
    for p in parts:
        side = f"{p.map_size}x{p.map_size}"
        print(f"  {p.name:<8} {side:>7} {p.params:>12,} {p.macs:>14,}")
    print(f"  {'total':<8} {'':>7} {params:>12,} {macs:>14,}")
    print(
        f"  blocks {list(spec.blocks)}  channels {list(spec.channels)}  kernels "
        f"{list(spec.kernels)}  shortcut {list(spec.shortcut_kernels)}  strides "
        f"{list(spec.strides)}  pool {spec.pool}"
    )
    margin = args.max_params - params
    verdict = (
        f"within the {args.max_params:,} budget ({margin:,} to spare)"
        if within
        else f"OVER the {args.max_params:,} budget by {-margin:,}"
    )
    print(f"  {params:,} parameters, {macs / 1e6:,.1f} M MACs per 32x32 image: {verdict}")
    return 0


def paper_table() -> str:
    """The paper's parameter tables, each printed count beside ours."""
    from model.accounting import count_params
    from model.architectures import PAPER_TABLES, architecture

    header = (
        f"{'table':<8} {'paper name':<18} {'printed B':<10} {'printed C':<14} "
        f"{'printed':>11} {'ours':>11}  {'match':<5} our architecture"
    )
    lines = [header, "-" * len(header)]
    notes = []
    for row in PAPER_TABLES:
        spec = architecture(row.architecture)
        ours = count_params(spec)
        printed = f"{row.printed_params:,}" if row.printed_params is not None else "-"
        match = (
            "-" if row.printed_params is None else ("yes" if ours == row.printed_params else "NO")
        )
        mark = ""
        if row.note:
            notes.append(row.note)
            mark = f" [{len(notes)}]"
        lines.append(
            f"{row.table:<8} {row.printed_name:<18} {row.printed_blocks:<10} "
            f"{row.printed_channels:<14} {printed:>11} {ours:>11,}  {match:<5} "
            f"{row.architecture} = {spec.name}{mark}"
        )
    lines.append("")
    lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
    lines.append(
        "Strides are the code's (the text never gives them): 4 layers [1,2,2,2], "
        "3 layers [1,2,4], 2 layers [2,4]."
    )
    return "\n".join(lines)
