"""Analytic parameter count against building the model and summing numel().

Run: python benchmarks/bench_params.py [--arch ResNet26-B453] [--repeats 2000]

Prints the median time per call of each way and their ratio, measured in one run.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from model.accounting import count_params
from model.architectures import architecture
from model.network import build_model
from model.spec import make_spec


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="ResNet26-B453")
    parser.add_argument("--repeats", type=int, default=20000)
    parser.add_argument("--build-repeats", type=int, default=30)
    args = parser.parse_args()
    spec = architecture(args.arch)
    d = spec.to_dict()
    torch.set_num_threads(1)

    n, nb = args.repeats, args.build_repeats
    analytic = median_seconds(lambda: count_params(spec), n)
    # What the search does per trial: validate a freshly sampled spec, then count.
    checked = median_seconds(lambda: count_params(make_spec(**d)), n)  # type: ignore[arg-type]
    built = median_seconds(lambda: sum(p.numel() for p in build_model(spec).parameters()), nb)
    assert count_params(spec) == sum(p.numel() for p in build_model(spec).parameters())
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    print(f"architecture: {args.arch} ({count_params(spec):,} parameters)")
    print(f"analytic count_params:                {analytic * 1e6:10.2f} us (median of {n})")
    print(f"make_spec + count_params (validated): {checked * 1e6:10.2f} us (median of {n})")
    print(f"build_model + sum(numel):             {built * 1e6:10.2f} us (median of {nb})")
    print(f"ratio build / analytic:               {built / analytic:10.0f}x")
    print(f"ratio build / (validate + analytic):  {built / checked:10.0f}x")


if __name__ == "__main__":
    main()
