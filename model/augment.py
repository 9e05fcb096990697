"""Batched data augmentation on the device: no per-sample Python, no PIL, no workers.

Each function takes a whole batch and draws its randomness from an explicit generator on the
batch's device, so a run is repeatable and resumable (the generator's state is checkpointed)
and the GPU never waits for the host.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    >>> random_crop(x, padding=4, generator=g).shape
    torch.Size([8, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_crop(images: torch.Tensor, *, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and crop back to the input size at a random offset per image.

    The same as torchvision's ``RandomCrop(32, padding=4)``, for a whole batch at once.
    """
    if padding == 0:
        return images
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dev = images.device
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
    batch = torch.arange(n, device=dev)[:, None, None, None]
    channel = torch.arange(c, device=dev)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def cutout(images: torch.Tensor, *, size: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square (clipped at the border) at a random centre per image.

    Applied after normalisation, so the square holds the mean colour (DeVries & Taylor, 2017).
    """
    if size == 0:
        return images
    n, _, h, w = images.shape
    dev = images.device
    cy = torch.randint(0, h, (n, 1, 1), generator=generator, device=dev)
    cx = torch.randint(0, w, (n, 1, 1), generator=generator, device=dev)
    y = torch.arange(h, device=dev)[None, :, None]
    x = torch.arange(w, device=dev)[None, None, :]
    lo, hi = size // 2, size - size // 2
    inside = (y >= cy - lo) & (y < cy + hi) & (x >= cx - lo) & (x < cx + hi)
    return images * (~inside)[:, None].to(images.dtype)


class Normalizer:
    """uint8 [0, 255] images to normalised floats, in the dtype and memory format the model runs in.

    The per-channel scale and shift live on the device, made once, so a training step copies
    nothing from the host.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        channels_last: bool = False,
    ) -> None:
        m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
        s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
        self.scale = (1.0 / (255.0 * s)).to(device)
        self.shift = (-m / s).to(device)
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(self.shift, images.float(), self.scale).to(self.dtype)
        return out.contiguous(memory_format=self.memory_format)


def augment(
    images: torch.Tensor,
    *,
    generator: torch.Generator,
    crop_padding: int = 4,
    flip: bool = True,
) -> torch.Tensor:
    """The paper's augmentation, batched: random crop with zero padding, then a random flip."""
    images = random_crop(images, padding=crop_padding, generator=generator)
    return random_flip(images, generator=generator) if flip else images


def augment_epoch(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    order: torch.Tensor,
    normalizer: Normalizer,
    generator: torch.Generator,
    crop_padding: int = 4,
    flip: bool = True,
    cutout_size: int = 0,
    chunk: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of training inputs at once: ``images[order]`` augmented and normalised.

    As in airbench, the whole epoch is prepared before its first step, so a step only slices
    its batch out of the result: a few dozen kernel launches per epoch instead of per step,
    which is what bounds small batches on a GPU. Working ``chunk`` images at a time bounds the
    temporaries (padding, float copies) to a few hundred MB for any data set size.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
        >>> y = torch.arange(10)
        >>> norm = Normalizer((0.5,) * 3, (0.25,) * 3)
        >>> xs, ys = augment_epoch(x, y, order=torch.randperm(10), normalizer=norm, generator=g)
        >>> xs.shape, xs.dtype, sorted(ys.tolist()) == list(range(10))
        (torch.Size([10, 3, 32, 32]), torch.float32, True)
    """
    out = torch.empty(
        (len(order), *images.shape[1:]),
        dtype=normalizer.dtype,
        device=images.device,
        memory_format=normalizer.memory_format,
    )
    for start in range(0, len(order), chunk):
        idx = order[start : start + chunk]
        x = augment(images[idx], generator=generator, crop_padding=crop_padding, flip=flip)
        x = normalizer(x)
        if cutout_size:
            x = cutout(x, size=cutout_size, generator=generator)
        out[start : start + len(idx)] = x
    return out, labels[order]
