"""The roofline benchmark's bound: bytes per conv unit, and the order of its ceilings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from model.accounting import Conv, convs
from model.architectures import architecture

_path = Path(__file__).parents[1] / "benchmarks" / "roofline.py"
_spec = importlib.util.spec_from_file_location("roofline", _path)
assert _spec is not None and _spec.loader is not None, _path
roofline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(roofline)


def test_a_unit_moves_its_input_three_times_and_its_output_per_fusion() -> None:
    unit = Conv("layer1", c_in=64, c_out=128, kernel=3, in_side=32, out_side=16)
    inputs, outputs = 64 * 32 * 32, 128 * 16 * 16
    assert roofline.bytes_moved(unit, mode="eager") == 2 * (3 * inputs + 16 * outputs)
    assert roofline.bytes_moved(unit, mode="ideal") == 2 * (3 * inputs + 3 * outputs)


def test_fusing_raises_the_ceiling_but_never_past_the_arithmetic() -> None:
    units = list(convs(architecture("ResNet26-B453")))
    totals = [
        sum(roofline.seconds_per_image(units, mode=m, peak_flops=989e12, bandwidth=4.8e12).values())
        for m in ("eager", "fused", "ideal")
    ]
    assert totals[0] > totals[1] > totals[2]
    # Even with nothing to fuse, arithmetic alone cannot be beaten.
    assert totals[2] >= 6 * sum(u.macs for u in units) / 989e12
