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

from model.accounting import Conv, convs, count_macs
from model.architectures import architecture

OUTPUT_PASSES = {"eager": 16, "fused": 11, "ideal": 3}
INPUT_PASSES = 3
BYTES = 2  # bf16 activations


def bytes_moved(conv: Conv, *, mode: str) -> int:
    """The bf16 activation bytes one conv unit moves per image, forward and backward."""
    inputs, outputs = conv.c_in * conv.in_side**2, conv.c_out * conv.out_side**2
    return BYTES * (INPUT_PASSES * inputs + OUTPUT_PASSES[mode] * outputs)


def seconds_per_image(
    units: list[Conv], *, mode: str, peak_flops: float, bandwidth: float
) -> dict[str, float]:
    """Lower bound of each part's training time per image, in seconds."""
    parts: dict[str, float] = {}
    for u in units:
        t = max(6 * u.macs / peak_flops, bytes_moved(u, mode=mode) / bandwidth)
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
    units = list(convs(spec))
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
        moved = sum(bytes_moved(u, mode="eager") for u in units if u.part == part)
        intensity = 6 * macs / moved
        bound = "memory" if intensity < ridge else "compute"
        print(f"  {part:7} eager intensity {intensity:6.0f} FLOP/byte: {bound}-bound")


if __name__ == "__main__":
    main()
