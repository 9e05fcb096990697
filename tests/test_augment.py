"""Batched augmentation keeps shapes, dtypes, labels' order, and does what it says."""

from __future__ import annotations

import torch

from model.augment import (
    Normalizer,
    augment,
    augment_epoch,
    cutout,
    random_crop,
    random_flip,
)


def _images(n: int = 16) -> torch.Tensor:
    return torch.randint(
        1, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )


def test_crop_is_a_shifted_window_of_the_zero_padded_image() -> None:
    x = _images()
    out = random_crop(x, padding=4, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(len(x)):
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(out[i], w) for w in windows)
    # Over a batch, offsets vary (not every image is the centre crop).
    assert not torch.equal(out, x)


def test_flip_mirrors_about_half_of_the_images() -> None:
    x = _images(200)
    out = random_flip(x, generator=torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140


def test_cutout_zeroes_one_square_per_image() -> None:
    x = torch.ones(64, 3, 32, 32)
    out = cutout(x, size=8, generator=torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros <= 64).all() and (zeros >= 16).all()  # clipped at the border: at least 4x4
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)  # the same square in every channel


def test_augmentation_is_repeatable_from_the_generator_state() -> None:
    x = _images()
    a = augment(x, generator=torch.Generator().manual_seed(7))
    b = augment(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_normalizer_matches_the_formula() -> None:
    x = _images(4)
    norm = Normalizer((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    mean = torch.tensor([0.5, 0.4, 0.3])[None, :, None, None]
    std = torch.tensor([0.2, 0.25, 0.3])[None, :, None, None]
    torch.testing.assert_close(norm(x), (x.float() / 255 - mean) / std)
    cl = Normalizer((0.5,) * 3, (0.2,) * 3, dtype=torch.bfloat16, channels_last=True)(x)
    assert cl.dtype == torch.bfloat16 and cl.is_contiguous(memory_format=torch.channels_last)


def test_an_epoch_is_the_shuffled_set_each_image_cropped_and_flipped_in_chunks() -> None:
    x, y = _images(10), torch.arange(10)
    order = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    identity = Normalizer((0.0,) * 3, (1 / 255,) * 3)  # normalising leaves the pixel values
    out, labels = augment_epoch(
        x, y, order=order, normalizer=identity, generator=torch.Generator().manual_seed(0), chunk=3
    )
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.equal(labels, y[order])
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4)).float()
    for i, source in enumerate(order.tolist()):
        windows = [
            padded[source, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)
        ]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)


def test_an_epoch_comes_in_the_models_dtype_and_layout_with_cutout() -> None:
    x, y = _images(8), torch.arange(8)
    norm = Normalizer((0.5,) * 3, (0.25,) * 3, dtype=torch.bfloat16, channels_last=True)
    out, _ = augment_epoch(
        x,
        y,
        order=torch.arange(8),
        normalizer=norm,
        generator=torch.Generator().manual_seed(0),
        cutout_size=8,
    )
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    batch = out[2:6]  # what a training step takes: a view, still channels_last
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert ((out[:, 0] == 0).sum(dim=(1, 2)) >= 16).all()  # every image has its square
