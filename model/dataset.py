"""What a data set is here: uint8 image splits, CIFAR-10's constants, and the data error.

Shared by the loaders (``model.data``) and the readers of CIFAR-10's formats
(``model.sources``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
"""Per-channel mean used by the paper (and kuangliu) to normalise inputs scaled to [0, 1]."""
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
"""The paper's per-channel "std" (kuangliu's widely copied values, not the exact pixel std)."""

BATCHES_DIR = "cifar-10-batches-py"

IMAGE_SIZE = 32
HOW_TO_PROVIDE = (
    "put a cifar-10-batches-py folder there, or an image-folder tree "
    "train/<class>/ + test/<class>/ (or a .tar.gz of one)"
)


class DataError(Exception):
    """Data that cannot be found, read or split. The message is one line: problem and fix."""

    def __init__(self, message: str) -> None:
        text = " ".join(message.splitlines())
        # Paths with bytes that are not UTF-8 arrive as lone surrogates, which no UTF-8 stream
        # or log can write: show those bytes as \xNN so the message always prints.
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # surrogates that are not escaped bytes
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(text)


@dataclass(frozen=True, eq=False)
class Split:
    """Images (uint8, ``[N, 3, 32, 32]``) and their labels (int64, ``[N]``)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        shape = tuple(self.images.shape)
        if self.images.dtype != torch.uint8 or shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"images must be uint8 [N, 3, 32, 32], got {self.images.dtype} {list(shape)}: "
                "convert them to uint8 NCHW"
            )
        if self.labels.dtype != torch.int64 or tuple(self.labels.shape) != shape[:1]:
            raise DataError(
                f"labels must be int64 [{shape[0]}] to match the images, got "
                f"{self.labels.dtype} {list(self.labels.shape)}: pass one int64 label per image"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Split:
        """Both tensors on ``device``; copies to an accelerator do not block the host."""
        device = torch.device(device)
        # A non-blocking copy *to the CPU* may be read before it lands, so only go async away
        # from it (it only overlaps for pinned memory, and is harmless otherwise).
        non_blocking = device.type != "cpu"
        return Split(
            self.images.to(device, non_blocking=non_blocking),
            self.labels.to(device, non_blocking=non_blocking),
        )


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train, validation (possibly empty) and test splits, with where they came from."""

    train: Split
    val: Split
    test: Split
    source: str
    num_classes: int
