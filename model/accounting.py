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


def _conv_bn(c_in: int, c_out: int, kernel: int, side: int) -> tuple[int, int]:
    """A bias-free conv followed by batch norm (weight and bias): (params, MACs)."""
    weights = c_in * c_out * kernel * kernel
    return weights + 2 * c_out, weights * side * side


def breakdown(spec: ResNetSpec) -> list[PartCost]:
    """Parameters and MACs per part: ``stem``, ``layer1`` .. ``layerN``, ``head``."""
    params, macs = _conv_bn(3, spec.stem_channels, 3, INPUT_SIZE)
    parts = [PartCost("stem", INPUT_SIZE, params, macs)]
    c_in = spec.stem_channels
    for i in range(spec.num_layers):
        c, f, side = spec.channels[i], spec.kernels[i], spec.map_sizes[i]
        # The first block changes stride and width; the other B-1 are identical c -> c blocks.
        p1, m1 = _conv_bn(c_in, c, f, side)
        p2, m2 = _conv_bn(c, c, f, side)
        params, macs = p1 + p2, m1 + m2
        if spec.strides[i] != 1 or c_in != c:
            ps, ms = _conv_bn(c_in, c, spec.shortcut_kernels[i], side)
            params, macs = params + ps, macs + ms
        params += (spec.blocks[i] - 1) * 2 * p2
        macs += (spec.blocks[i] - 1) * 2 * m2
        parts.append(PartCost(f"layer{i + 1}", side, params, macs))
        c_in = c
    features = c_in * spec.pooled_size * spec.pooled_size
    linear = features * spec.num_classes
    parts.append(PartCost("head", spec.pooled_size, linear + spec.num_classes, linear))
    return parts


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
