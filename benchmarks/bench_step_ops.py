"""Operator calls per training step: augmenting each batch against augmenting the epoch once.

On a GPU a small batch is bound by how many kernels each step launches, not by arithmetic.
This counts the top-level PyTorch operator calls (each one launches at least one kernel on
CUDA) of a training step when the data is augmented per step (crop, flip, normalise, cutout
on each batch) and when ``augment_epoch`` prepares the whole epoch and a step slices its
batch, the engine's way. Both loops train the same model on the same data in one run; the
per-epoch preparation is charged to its steps. Counting runs on the CPU as on a GPU.

    python benchmarks/bench_step_ops.py --batch-sizes 32,512 --steps 16
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from model.architectures import architecture
from model.augment import Normalizer, augment, augment_epoch, cutout
from model.data import CIFAR10_MEAN, CIFAR10_STD
from model.network import build_model
from model.spec import ResNetSpec

Feed = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def _narrow(spec: ResNetSpec, width: int) -> ResNetSpec:
    """The architecture's topology with every width divided by ``width``, to count quickly."""
    return replace(
        spec,
        channels=tuple(max(1, c // width) for c in spec.channels),
        stem_channels=max(1, spec.stem_channels // width),
    )


def per_step_feed(
    *, images: torch.Tensor, labels: torch.Tensor, batch: int, norm: Normalizer, cutout_size: int
) -> Feed:
    """Step i's batch augmented when it is asked for: the loop before ``augment_epoch``."""
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(images), generator=g)

    def feed(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = order[i * batch : (i + 1) * batch]
        x = norm(augment(images[idx], generator=g))
        return cutout(x, size=cutout_size, generator=g), labels[idx]

    return feed


def per_epoch_feed(
    *, images: torch.Tensor, labels: torch.Tensor, batch: int, norm: Normalizer, cutout_size: int
) -> Feed:
    """The engine's way: the epoch augmented up front, step i's batch a slice of it."""
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(images), generator=g)
    xs, ys = augment_epoch(
        images, labels, order=order, normalizer=norm, generator=g, cutout_size=cutout_size
    )
    return lambda i: (xs[i * batch : (i + 1) * batch], ys[i * batch : (i + 1) * batch])


def count_ops_per_step(net: nn.Module, make_feed: Callable[[], Feed], steps: int) -> float:
    """Top-level operator calls of ``steps`` SGD steps (the feed built inside), per step."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        feed = make_feed()
        for i in range(steps):
            x, y = feed(i)
            loss = criterion(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    top = [e for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
    return len(top) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="ResNet26-B453")
    p.add_argument("--width", type=int, default=32, help="divide every width by this")
    p.add_argument("--batch-sizes", default="32,512")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--cutout", type=int, default=8)
    args = p.parse_args()

    torch.manual_seed(0)
    spec = _narrow(architecture(args.arch), args.width)
    norm = Normalizer(CIFAR10_MEAN, CIFAR10_STD)
    print(f"{spec.name} (the {args.arch} topology at 1/{args.width} width), cutout {args.cutout}")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        n = batch * args.steps
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,))

        feeds = dict(images=images, labels=labels, batch=batch, norm=norm, cutout_size=args.cutout)
        net = build_model(spec)
        old = count_ops_per_step(net, partial(per_step_feed, **feeds), args.steps)
        new = count_ops_per_step(net, partial(per_epoch_feed, **feeds), args.steps)
        print(
            f"batch {batch}: {old:.1f} operator calls per step augmenting each batch, "
            f"{new:.1f} augmenting the epoch once: {1 - new / old:.0%} fewer",
            flush=True,
        )


if __name__ == "__main__":
    main()
