"""Exact parameter and MAC counts of a spec, computed without building the model.

The parameter count equals ``sum(p.numel() for p in build_model(spec).parameters())`` for
every valid spec (the tests check this on hundreds of random specs) and takes microseconds,
so the search can check the budget of every sampled configuration before touching a GPU.

MACs are the multiply-accumulates of the convolutions and the linear layer for one 32x32
image, forward pass. Batch norm, ReLU, residual additions and pooling are element-wise and
not counted, as in the usual FLOP tables of ResNet papers.

Example:
    >>> from model.spec import make_spec
    >>> spec = make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4])
    >>> count_params(spec)
    4992586
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from model.spec import INPUT_SIZE, ResNetSpec


@dataclass(frozen=True, slots=True)
class PartCost:
    """Cost of one part of the network: the stem, one residual layer, or the head."""

    name: str
    map_size: int
    """Side of the part's output map (the pooled map for the head)."""
    params: int
    macs: int


@dataclass(frozen=True, slots=True)
class Conv:
    """One bias-free convolution of the network and the batch norm after it."""

    part: str
    c_in: int
    c_out: int
    kernel: int
    in_side: int
    out_side: int

    @property
    def params(self) -> int:
        return self.c_in * self.c_out * self.kernel**2 + 2 * self.c_out  # + BN weight, bias

    @property
    def macs(self) -> int:
        return self.c_in * self.c_out * self.kernel**2 * self.out_side**2


def convs(spec: ResNetSpec) -> Iterator[Conv]:
    """Every convolution in forward order, shortcuts after their block's first conv.

    Example:
        >>> from model.spec import make_spec
        >>> spec = make_spec(blocks=[1], channels=[8])
        >>> [(c.part, c.c_in, c.c_out, c.kernel) for c in convs(spec)]
        [('stem', 3, 64, 3), ('layer1', 64, 8, 3), ('layer1', 64, 8, 1), ('layer1', 8, 8, 3)]
    """
    side, c_in = INPUT_SIZE, spec.stem_channels
    yield Conv("stem", 3, c_in, 3, side, side)
    for i in range(spec.num_layers):
        c, f, out, part = spec.channels[i], spec.kernels[i], spec.map_sizes[i], f"layer{i + 1}"
        yield Conv(part, c_in, c, f, side, out)
        if spec.strides[i] != 1 or c_in != c:
            yield Conv(part, c_in, c, spec.shortcut_kernels[i], side, out)
        for _ in range(2 * spec.blocks[i] - 1):
            yield Conv(part, c, c, f, out, out)
        side, c_in = out, c


def breakdown(spec: ResNetSpec) -> list[PartCost]:
    """Parameters and MACs per part: ``stem``, ``layer1`` .. ``layerN``, ``head``.

    A layer's ``2 * blocks - 1`` identical inner convolutions are counted by multiplication,
    so the cost of counting does not grow with the number of blocks.
    """
    side, c_in = INPUT_SIZE, spec.stem_channels
    stem = Conv("stem", 3, c_in, 3, side, side)
    parts = [PartCost("stem", side, stem.params, stem.macs)]
    for i in range(spec.num_layers):
        c, f, out, part = spec.channels[i], spec.kernels[i], spec.map_sizes[i], f"layer{i + 1}"
        first = Conv(part, c_in, c, f, side, out)
        inner = Conv(part, c, c, f, out, out)
        repeats = 2 * spec.blocks[i] - 1
        params = first.params + repeats * inner.params
        macs = first.macs + repeats * inner.macs
        if spec.strides[i] != 1 or c_in != c:
            shortcut = Conv(part, c_in, c, spec.shortcut_kernels[i], side, out)
            params, macs = params + shortcut.params, macs + shortcut.macs
        parts.append(PartCost(part, out, params, macs))
        side, c_in = out, c
    features = spec.channels[-1] * spec.pooled_size * spec.pooled_size
    linear = features * spec.num_classes
    head = PartCost("head", spec.pooled_size, linear + spec.num_classes, linear)
    return [*parts, head]


def count_params(spec: ResNetSpec) -> int:
    """Exact number of trainable parameters of ``build_model(spec)``."""
    c_in = spec.stem_channels
    total = 27 * c_in + 2 * c_in
    for c, b, f, k, s in zip(
        spec.channels, spec.blocks, spec.kernels, spec.shortcut_kernels, spec.strides, strict=True
    ):
        # The budget check's hot path: the same sums as breakdown(), inlined for speed.
        total += c_in * c * f * f + (2 * b - 1) * c * c * f * f + 4 * b * c
        if s != 1 or c_in != c:
            total += c_in * c * k * k + 2 * c
        c_in = c
    p = spec.pooled_size
    return total + (c_in * p * p + 1) * spec.num_classes


def count_macs(spec: ResNetSpec) -> int:
    """Multiply-accumulates of convolutions and the linear layer for one 32x32 image."""
    return sum(part.macs for part in breakdown(spec))
