"""The PyTorch ResNet built from a :class:`~model.spec.ResNetSpec`.

The structure follows the paper's code (kuangliu's ResNet18 generalised): a 3x3 stem conv,
residual layers of basic blocks, average pooling with kernel P (or global), one linear
layer. Unlike the paper's code, conv kernel F and shortcut kernel K really vary; both use
"same" padding (k // 2), which is why kernel sizes must be odd.

Example:
    >>> import torch
    >>> from model.spec import make_spec
    >>> net = build_model(make_spec(blocks=[1, 1], channels=[8, 16]))
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.spec import ResNetSpec


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """conv(F, stride) -> BN -> ReLU -> conv(F) -> BN, plus the shortcut, then ReLU.

    The shortcut is a K x K conv + BN where the stride or the width changes, else identity.
    """

    def __init__(self, c_in: int, c_out: int, *, kernel: int, shortcut_kernel: int, stride: int):
        super().__init__()
        self.conv1 = _conv_bn(c_in, c_out, kernel, stride)
        self.conv2 = _conv_bn(c_out, c_out, kernel, 1)
        self.shortcut: nn.Module = (
            _conv_bn(c_in, c_out, shortcut_kernel, stride)
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x))
        return F.relu(self.conv2(out) + self.shortcut(x))


class ResNet(nn.Module):
    """The network of one spec; ``spec`` is kept on the module for checkpoints and reports."""

    def __init__(self, spec: ResNetSpec):
        super().__init__()
        self.spec = spec
        self.stem = nn.Sequential(*_conv_bn(3, spec.stem_channels, 3, 1), nn.ReLU())
        layers = []
        c_in = spec.stem_channels
        for i, (c, b) in enumerate(zip(spec.channels, spec.blocks, strict=True)):
            blocks = [
                BasicBlock(
                    c_in if j == 0 else c,
                    c,
                    kernel=spec.kernels[i],
                    shortcut_kernel=spec.shortcut_kernels[i],
                    stride=spec.strides[i] if j == 0 else 1,
                )
                for j in range(b)
            ]
            layers.append(nn.Sequential(*blocks))
            c_in = c
        self.layers = nn.Sequential(*layers)
        side = spec.pooled_size
        self.linear = nn.Linear(c_in * side * side, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.stem(x))
        if self.spec.pool == "global":
            out = F.adaptive_avg_pool2d(out, 1)
        else:
            out = F.avg_pool2d(out, self.spec.pool)
        return self.linear(out.flatten(1))


def build_model(spec: ResNetSpec) -> ResNet:
    """Build the (randomly initialised) network of ``spec``."""
    return ResNet(spec)
