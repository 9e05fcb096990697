"""The architecture family: a validated, immutable description of one ResNet.

A spec generalises the paper's kuangliu-style ResNet: N residual layers, each with
``blocks[i]`` basic blocks of ``channels[i]`` channels, conv kernel ``kernels[i]``,
shortcut kernel ``shortcut_kernels[i]`` and stride ``strides[i]`` (applied by the first
block of the layer), after a 3x3 stem of ``stem_channels`` channels; the head average-pools
the last map with kernel ``pool`` (or globally) and ends in one linear layer.

This module is plain Python: the budget check runs on every sampled configuration, so a
spec is validated and accounted for without importing torch.

Example:
    >>> spec = make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4])
    >>> spec.name
    'ResNet26-B453-S124'
    >>> spec.map_sizes
    (32, 16, 4)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

INPUT_SIZE = 32
"""Side of the (square) input images: CIFAR-10 is 32x32."""

DEFAULT_CHANNELS = (64, 128, 256, 512)
"""kuangliu ResNet18's widths; names omit channels that follow this pattern."""

Pool = int | Literal["global"]

LIMITS: dict[str, int] = {
    "layers": 16,
    "blocks": 512,
    "channels": 16384,
    "kernels": 31,
    "shortcut_kernels": 31,
    "stem_channels": 16384,
    "num_classes": 100_000,
}
"""The largest value of each field: far beyond anything trainable (or within any budget worth
searching), so that a typo of a few zeros is refused at once, named, instead of being counted
or sampled."""


class SpecError(ValueError):
    """An architecture that cannot be built. The message names the field and its value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"invalid architecture: {field}={value!r}: {reason}")


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def default_strides(num_layers: int) -> tuple[int, ...]:
    """kuangliu's strides: 1 for the first layer, 2 after it."""
    return (1,) + (2,) * (num_layers - 1)


@dataclass(frozen=True, slots=True)
class ResNetSpec:
    """One architecture of the family; construction validates it (raises :class:`SpecError`).

    Use :func:`make_spec` to broadcast single kernel sizes and get default strides.
    """

    blocks: tuple[int, ...]
    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    shortcut_kernels: tuple[int, ...]
    strides: tuple[int, ...]
    pool: Pool = 4
    stem_channels: int = 64
    num_classes: int = 10
    map_sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Side of each layer's output map, derived from the strides."""

    def __post_init__(self) -> None:
        n = len(self.blocks)
        if n == 0:
            raise SpecError("blocks", list(self.blocks), "at least one residual layer is needed")
        if n > LIMITS["layers"]:
            raise SpecError("blocks", n, f"{n} layers: at most {LIMITS['layers']} are supported")
        for name in ("blocks", "channels", "kernels", "shortcut_kernels", "strides"):
            values = getattr(self, name)
            if len(values) != n:
                raise SpecError(
                    name, list(values), f"has {len(values)} entries but there are {n} layers"
                )
            for i, v in enumerate(values):
                if not _is_positive_int(v):
                    raise SpecError(f"{name}[{i}]", v, "must be a positive integer")
                if name in LIMITS and v > LIMITS[name]:  # strides: the map's size limits them
                    raise SpecError(f"{name}[{i}]", v, f"must be at most {LIMITS[name]:,}")
        for name in ("kernels", "shortcut_kernels"):
            for i, v in enumerate(getattr(self, name)):
                if v % 2 == 0:
                    raise SpecError(
                        f"{name}[{i}]",
                        v,
                        "kernel sizes must be odd so 'same' padding keeps the map",
                    )
        for name in ("stem_channels", "num_classes"):
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise SpecError(name, value, "must be a positive integer")
            if value > LIMITS[name]:
                raise SpecError(name, value, f"must be at most {LIMITS[name]:,}")

        sizes = []
        side = INPUT_SIZE
        for i, s in enumerate(self.strides):
            if s > side:
                raise SpecError(f"strides[{i}]", s, f"would shrink the {side}x{side} map below 1x1")
            side = -(-side // s)  # odd kernels with padding k//2 give ceil(side / stride)
            sizes.append(side)
        object.__setattr__(self, "map_sizes", tuple(sizes))

        if self.pool != "global":
            if not _is_positive_int(self.pool):
                raise SpecError("pool", self.pool, "must be a positive integer or 'global'")
            if self.pool > side:
                raise SpecError(
                    "pool", self.pool, f"is larger than the last feature map ({side}x{side})"
                )

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    @property
    def depth(self) -> int:
        """Weighted layers as the paper counts them: stem, two convs per block, the linear layer."""
        return 2 * sum(self.blocks) + 2

    @property
    def pooled_size(self) -> int:
        """Side of the map the linear layer sees: floor(H_N / P), or 1 for global pooling."""
        return 1 if self.pool == "global" else self.map_sizes[-1] // self.pool

    @property
    def name(self) -> str:
        """A readable name that determines the spec, e.g. ``ResNet26-B453-S124``.

        Blocks always appear; channels, kernels, shortcut kernels, strides, pool, stem and
        class count appear only where they differ from kuangliu's ResNet18 defaults.
        """
        parts = [f"ResNet{self.depth}", "B" + _join(self.blocks)]
        if self.channels != DEFAULT_CHANNELS[: self.num_layers] or self.num_layers > 4:
            parts.append("C" + ".".join(map(str, self.channels)))
        if any(k != 3 for k in self.kernels):
            parts.append("F" + _join(self.kernels))
        if any(k != 1 for k in self.shortcut_kernels):
            parts.append("K" + _join(self.shortcut_kernels))
        if self.strides != default_strides(self.num_layers):
            parts.append("S" + _join(self.strides))
        if self.pool != 4:
            parts.append("Pglobal" if self.pool == "global" else f"P{self.pool}")
        if self.stem_channels != 64:
            parts.append(f"stem{self.stem_channels}")
        if self.num_classes != 10:
            parts.append(f"cls{self.num_classes}")
        return "-".join(parts)

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able form; ``make_spec(**spec.to_dict())`` rebuilds the spec."""
        return {
            "blocks": list(self.blocks),
            "channels": list(self.channels),
            "kernels": list(self.kernels),
            "shortcut_kernels": list(self.shortcut_kernels),
            "strides": list(self.strides),
            "pool": self.pool,
            "stem_channels": self.stem_channels,
            "num_classes": self.num_classes,
        }


def _join(values: Sequence[int]) -> str:
    # "453" reads well for single digits; "14.13" keeps multi-digit values apart.
    return "".join(map(str, values)) if all(v < 10 for v in values) else ".".join(map(str, values))


def _per_layer(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    values = tuple(value)
    if len(values) == 1:
        return values * n
    return values


def make_spec(
    *,
    blocks: Sequence[int],
    channels: Sequence[int],
    kernels: int | Sequence[int] = 3,
    shortcut_kernels: int | Sequence[int] = 1,
    strides: Sequence[int] | None = None,
    pool: Pool = 4,
    stem_channels: int = 64,
    num_classes: int = 10,
) -> ResNetSpec:
    """Build a validated spec; a single kernel size applies to every layer.

    Strides default to 1 for the first layer and 2 after it.

    Example:
        >>> make_spec(blocks=[1, 1], channels=[16, 32], kernels=5, pool="global").name
        'ResNet6-B11-C16.32-F55-Pglobal'
    """
    n = len(blocks)
    return ResNetSpec(
        blocks=tuple(blocks),
        channels=tuple(channels),
        kernels=_per_layer(kernels, n),
        shortcut_kernels=_per_layer(shortcut_kernels, n),
        strides=default_strides(n) if strides is None else tuple(strides),
        pool=pool,
        stem_channels=stem_channels,
        num_classes=num_classes,
    )


SPEC_DEFAULTS: dict[str, object] = {
    name: p.default
    for name, p in inspect.signature(make_spec).parameters.items()
    if p.default is not inspect.Parameter.empty and p.default is not None
}
"""The defaults of every architecture field that has one (kernels, shortcut kernels, pool,
stem channels, classes), read off :func:`make_spec`: the one place they are written."""


def spec_from_dict(data: dict[str, object]) -> ResNetSpec:
    """Inverse of :meth:`ResNetSpec.to_dict` (also accepts the shorter forms of make_spec)."""
    return make_spec(**data)  # type: ignore[arg-type]
