"""Analytic accounting equals the built model, on hundreds of random specs."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from torch import nn

from model.accounting import breakdown, convs, count_macs, count_params
from model.architectures import architecture
from model.network import build_model
from model.spec import ResNetSpec, make_spec
from tests.strategies import valid_specs


def _hooked_macs(net: nn.Module) -> int:
    """MACs of conv and linear layers, measured on a real forward pass of one image."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += out.numel() * module.in_channels // module.groups * k
        else:
            assert isinstance(module, nn.Linear)  # the only other kind hooked below
            total += out.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for h in handles:
        h.remove()
    return total


@settings(max_examples=400, deadline=None)
@given(valid_specs())
def test_analytic_counts_equal_the_built_model(spec: ResNetSpec) -> None:
    net = build_model(spec).eval()
    assert count_params(spec) == sum(p.numel() for p in net.parameters())
    assert sum(p.params for p in breakdown(spec)) == count_params(spec)
    assert count_macs(spec) == _hooked_macs(net)
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, spec.num_classes)


@settings(max_examples=100, deadline=None)
@given(valid_specs())
def test_convs_are_the_built_models_convolutions(spec: ResNetSpec) -> None:
    built = [
        (m.in_channels, m.out_channels, m.kernel_size[0])
        for m in build_model(spec).modules()
        if isinstance(m, nn.Conv2d)
    ]
    assert sorted((c.c_in, c.c_out, c.kernel) for c in convs(spec)) == sorted(built)


def test_breakdown_parts_and_map_sizes() -> None:
    parts = breakdown(architecture("ResNet26-B453"))
    assert [p.name for p in parts] == ["stem", "layer1", "layer2", "layer3", "head"]
    assert [p.map_size for p in parts] == [32, 32, 16, 4, 1]
    # The head of B453: Linear(256, 10).
    assert (parts[-1].params, parts[-1].macs) == (2570, 2560)


def test_linear_layer_grows_with_the_pooled_map() -> None:
    # seed-code-facts.md: B453 with strides [1,2,4] and P=2 is just over budget.
    spec = make_spec(blocks=[4, 5, 3], channels=[64, 128, 256], strides=[1, 2, 4], pool=2)
    assert count_params(spec) == 5_000_266


def test_macs_of_a_hand_counted_network() -> None:
    # stem 32*32*3*4*9, one block 4->8 at stride 2 (16x16): 4*8*9 + 8*8*9, shortcut 4*8, head 8*10.
    spec = make_spec(blocks=[1], channels=[8], strides=[2], stem_channels=4, pool="global")
    expected = 32 * 32 * 3 * 4 * 9 + 16 * 16 * (4 * 8 * 9 + 8 * 8 * 9 + 4 * 8) + 8 * 10
    assert count_macs(spec) == expected


def test_resnet18_macs_match_the_usual_figure() -> None:
    # kuangliu ResNet18 on CIFAR-10 is commonly quoted at 0.56 GMACs.
    assert round(count_macs(architecture("ResNet18")) / 1e9, 2) == 0.56
