"""The roofline benchmark counts the same convolutions as the MAC accounting."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from model.accounting import breakdown, count_macs
from model.architectures import architecture
from model.spec import make_spec

_path = Path(__file__).parents[1] / "benchmarks" / "roofline.py"
_spec = importlib.util.spec_from_file_location("roofline", _path)
roofline = importlib.util.module_from_spec(_spec)
sys.modules["roofline"] = roofline  # dataclasses look their module up
_spec.loader.exec_module(roofline)


@pytest.mark.parametrize(
    "spec",
    [
        architecture("ResNet26-B453"),
        make_spec(blocks=[2, 1, 1], channels=[8, 16, 32], strides=[1, 2, 2], kernels=[3, 5, 3]),
        make_spec(blocks=[1, 1], channels=[8, 8], shortcut_kernels=[1, 3], stem_channels=8),
    ],
    ids=lambda s: s.name,
)
def test_conv_units_hold_every_conv_mac(spec) -> None:
    head = breakdown(spec)[-1].macs
    assert sum(u.macs for u in roofline.conv_units(spec)) == count_macs(spec) - head


def test_fusing_raises_the_ceiling_but_never_past_the_arithmetic() -> None:
    units = list(roofline.conv_units(architecture("ResNet26-B453")))
    totals = [
        sum(roofline.seconds_per_image(units, mode=m, peak_flops=989e12, bandwidth=4.8e12).values())
        for m in ("eager", "fused", "ideal")
    ]
    assert totals[0] > totals[1] > totals[2]
    # Even with nothing to fuse, arithmetic alone cannot be beaten.
    assert totals[2] >= 6 * sum(u.macs for u in units) / 989e12
