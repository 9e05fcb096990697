"""The roofline ceiling on training throughput for one architecture on one GPU.

Each conv unit (conv, batch norm, ReLU) costs at least the larger of its arithmetic time,
6 x MACs / peak (forward and backward are three forward passes of 2 FLOPs per MAC), and its
memory time, the bytes its bf16 activations move / bandwidth. The bytes depend on how much
of the unit's elementwise work is fused, counted in passes over the activation tensors:

- ``eager`` (PyTorch without compilation): the conv reads its input once forward and once for
  its weight gradient and writes the input gradient (3 input-sized passes); over the output,
  the conv's write, BN's statistics pass, BN's apply (read and write), ReLU (read and write),
  ReLU backward (3), BN backward (reduction 2, elementwise 3), and the gradient read by both
  backward convs (2): 16 output-sized passes.
- ``fused``: BN's apply and ReLU as one kernel forward and one backward (11 output passes).
- ``ideal``: statistics in the conv's epilogue, normalise and ReLU in the next conv's
  prologue: the output written once and its gradient read by the two backward convs (3).

Residual additions, the head and optimizer steps are left out, so the ceiling is generous:
a real loop reaching a fraction f of it would reach more than f of any exact bound.

    python benchmarks/roofline.py --arch ResNet26-B453 --measured 42044 --reference 8522
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

from model.accounting import count_macs
from model.architectures import architecture
from model.spec import INPUT_SIZE, ResNetSpec

OUTPUT_PASSES = {"eager": 16, "fused": 11, "ideal": 3}
INPUT_PASSES = 3
BYTES = 2  # bf16 activations


@dataclass(frozen=True, slots=True)
class ConvUnit:
    part: str
    macs: int
    input_elements: int
    output_elements: int


def conv_units(spec: ResNetSpec) -> Iterator[ConvUnit]:
    """Every conv of the network with its MACs and activation sizes, for one image."""
    side, c_in = INPUT_SIZE, spec.stem_channels
    yield ConvUnit("stem", 3 * c_in * 9 * side * side, 3 * side * side, c_in * side * side)
    for i in range(spec.num_layers):
        c, f, out = spec.channels[i], spec.kernels[i], spec.map_sizes[i]
        part, inp, o = f"layer{i + 1}", c_in * side * side, c * out * out
        yield ConvUnit(part, c_in * c * f * f * out * out, inp, o)
        if spec.strides[i] != 1 or c_in != c:
            k = spec.shortcut_kernels[i]
            yield ConvUnit(part, c_in * c * k * k * out * out, inp, o)
        for _ in range(2 * spec.blocks[i] - 1):
            yield ConvUnit(part, c * c * f * f * out * out, o, o)
        side, c_in = out, c


def seconds_per_image(
    units: list[ConvUnit], *, mode: str, peak_flops: float, bandwidth: float
) -> dict[str, float]:
    """Lower bound of each part's training time per image, in seconds."""
    parts: dict[str, float] = {}
    for u in units:
        moved = BYTES * (INPUT_PASSES * u.input_elements + OUTPUT_PASSES[mode] * u.output_elements)
        t = max(6 * u.macs / peak_flops, moved / bandwidth)
        parts[u.part] = parts.get(u.part, 0.0) + t
    return parts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="ResNet26-B453")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 (H100/H200)")
    p.add_argument("--bandwidth-tbs", type=float, default=4.8, help="HBM (H200 4.8, H100 3.35)")
    p.add_argument("--measured", type=float, help="the engine's measured images/s")
    p.add_argument("--reference", type=float, help="the reference loop's measured images/s")
    p.add_argument("--target-ratio", type=float, default=10.0)
    args = p.parse_args()

    spec = architecture(args.arch)
    units = list(conv_units(spec))
    peak, bw = args.peak_tflops * 1e12, args.bandwidth_tbs * 1e12
    ridge = peak / bw
    print(
        f"{args.arch}: {count_macs(spec) / 1e6:.1f} M MACs per image; "
        f"{args.peak_tflops:g} TFLOP/s, {args.bandwidth_tbs:g} TB/s, ridge {ridge:.0f} FLOP/byte"
    )
    for mode in OUTPUT_PASSES:
        parts = seconds_per_image(units, mode=mode, peak_flops=peak, bandwidth=bw)
        total = sum(parts.values())
        ceiling = 1 / total
        mfu = 6 * count_macs(spec) * ceiling / peak
        detail = ", ".join(f"{k} {v / total:.0%}" for k, v in parts.items())
        line = f"  {mode:5}: ceiling {ceiling:,.0f} img/s (MFU {mfu:.0%}); time {detail}"
        if args.measured:
            line += f"; measured = {args.measured / ceiling:.0%} of it"
        if args.reference:
            target = args.target_ratio * args.reference
            line += f"; {args.target_ratio:g}x target = {target / ceiling:.0%} of it"
        print(line)
    for part in dict.fromkeys(u.part for u in units):
        macs = sum(u.macs for u in units if u.part == part)
        moved = sum(
            BYTES * (INPUT_PASSES * u.input_elements + OUTPUT_PASSES["eager"] * u.output_elements)
            for u in units
            if u.part == part
        )
        intensity = 6 * macs / moved
        bound = "memory" if intensity < ridge else "compute"
        print(f"  {part:7} eager intensity {intensity:6.0f} FLOP/byte: {bound}-bound")


if __name__ == "__main__":
    main()
