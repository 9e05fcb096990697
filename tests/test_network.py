"""The built network: structure of blocks, shortcuts and head."""

from __future__ import annotations

import torch
from torch import nn

from model.network import BasicBlock, build_model
from model.spec import make_spec


def test_kernels_really_vary() -> None:
    net = build_model(
        make_spec(blocks=[1, 1], channels=[4, 8], kernels=[5, 7], shortcut_kernels=[1, 3])
    )
    convs = [m for m in net.layers.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size[0] for c in convs] == [5, 5, 1, 7, 7, 3]  # stem 64 -> 4 needs a shortcut
    assert all(c.padding[0] == c.kernel_size[0] // 2 for c in convs)


def test_identity_shortcut_only_where_shape_is_kept() -> None:
    same = BasicBlock(8, 8, kernel=3, shortcut_kernel=1, stride=1)
    wider = BasicBlock(8, 16, kernel=3, shortcut_kernel=1, stride=1)
    strided = BasicBlock(8, 8, kernel=3, shortcut_kernel=1, stride=2)
    assert isinstance(same.shortcut, nn.Identity)
    assert not isinstance(wider.shortcut, nn.Identity)
    assert not isinstance(strided.shortcut, nn.Identity)
    assert strided(torch.zeros(1, 8, 9, 9)).shape == (1, 8, 5, 5)


def test_head_sees_the_pooled_map() -> None:
    spec = make_spec(blocks=[1, 1], channels=[4, 6], strides=[1, 2], pool=4)
    net = build_model(spec)
    assert net.linear.in_features == 6 * 4 * 4
    assert net(torch.zeros(3, 3, 32, 32)).shape == (3, 10)


def test_global_pool() -> None:
    net = build_model(make_spec(blocks=[1], channels=[5], pool="global", num_classes=3))
    assert net.linear.in_features == 5
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 3)
