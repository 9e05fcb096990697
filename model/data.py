"""CIFAR-10 as uint8 tensors: found in a data folder, converted once and cached; or synthetic.

:func:`load_cifar10` looks in ``data_dir`` for, in this order: a valid cache
``cifar10-uint8.pt``; a ``cifar-10-batches-py`` folder (or ``data_dir`` being one); an
image-folder tree ``train/<class>/*`` + ``test/<class>/*`` (png or jpg, 32x32, sorted class
folders give the labels); one ``*.tar.gz``/``*.tgz`` holding such a tree (read in place, never
extracted) or the batches; and finally torchvision's download. The first conversion writes
the cache beside the data (or under ``$XDG_CACHE_HOME/optuna-search/`` when the folder is
read-only), under a file lock so parallel workers convert once; a cache whose source has
changed since is rebuilt. Missing data is an error, never a silent switch to fake data:
synthetic data comes only from :func:`synthetic_cifar10` or ``load_data(dataset="synthetic")``.

Everything stays on the CPU as uint8 NCHW; the trainer moves, normalises (with
:data:`CIFAR10_MEAN` / :data:`CIFAR10_STD`) and augments on the GPU.

Example:
    >>> train, test = synthetic_cifar10(n_train=100, n_test=20)
    >>> splits = make_splits(train, test, val_size=20, seed=1, source="synthetic (seed 0)")
    >>> len(splits.train), len(splits.val), len(splits.test)
    (80, 20, 20)
    >>> splits.train.images.dtype, tuple(splits.train.images.shape[1:])
    (torch.uint8, (3, 32, 32))
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import socket
import stat
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

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

DATASETS = ("cifar10", "synthetic")
SYNTHETIC_SEED = 0
"""``load_data`` always draws the synthetic set with this seed: the data stay fixed across
trials and its ``seed`` only changes the split, as for CIFAR-10."""

CACHE_NAME = "cifar10-uint8.pt"
CACHE_FORMAT = 1
BATCHES_DIR = "cifar-10-batches-py"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DOWNLOAD_TIMEOUT_S = 15.0
"""Socket timeout while downloading: a closed network should fail in seconds, not hang."""

IMAGE_SIZE = 32
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_SPLITS = ("train", "test")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TARBALL_SUFFIXES = (".tar.gz", ".tgz")
_HOW_TO_PROVIDE = (
    "put a cifar-10-batches-py folder there, or an image-folder tree "
    "train/<class>/ + test/<class>/ (or a .tar.gz of one)"
)


class DataError(Exception):
    """Data that cannot be found, read or split. The message is one line: problem and fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


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


# --------------------------------------------------------------------------- public loaders


def load_data(
    *,
    dataset: str = "cifar10",
    data_dir: str | os.PathLike[str] | None = None,
    val_size: int = 5000,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    download: bool = True,
    progress: bool = True,
    synthetic_size: tuple[int, int] = (5000, 1000),
) -> DataSplits:
    """Load ``dataset`` (``"cifar10"`` from ``data_dir``, or ``"synthetic"``) and split it.

    ``seed`` chooses the split; the synthetic images themselves always use
    :data:`SYNTHETIC_SEED`. See :func:`make_splits` for the other arguments.

    Example:
        >>> splits = load_data(dataset="synthetic", val_size=500, synthetic_size=(2000, 400))
        >>> splits.source, len(splits.train), len(splits.val), len(splits.test)
        ('synthetic (seed 0)', 1500, 500, 400)
    """
    if dataset == "synthetic":
        n_train, n_test = synthetic_size
        train, test = synthetic_cifar10(n_train=n_train, n_test=n_test, seed=SYNTHETIC_SEED)
        source = f"synthetic (seed {SYNTHETIC_SEED})"
    elif dataset == "cifar10":
        if data_dir is None:
            raise DataError(
                "dataset 'cifar10' needs a data directory: pass data_dir (a folder holding "
                "CIFAR-10, or a writable one to download into), or use dataset 'synthetic'"
            )
        train, test, source = load_cifar10(data_dir, download=download, progress=progress)
    else:
        raise DataError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    return make_splits(
        train,
        test,
        val_size=val_size,
        train_subset=train_subset,
        test_subset=test_subset,
        seed=seed,
        source=source,
        num_classes=len(CIFAR10_CLASSES),
    )


def load_cifar10(
    data_dir: str | os.PathLike[str], *, download: bool = True, progress: bool = True
) -> tuple[Split, Split, str]:
    """The full CIFAR-10 train (50,000) and test (10,000) sets and a one-line source.

    Reads the cache when it is valid, else converts the first source found (see the module
    docstring) and writes the cache. Raises :class:`DataError` when there is nothing to load.

    Example:
        >>> train, test, source = load_cifar10("data")  # doctest: +SKIP
        >>> len(train), len(test), source  # doctest: +SKIP
        (50000, 10000, 'tarball /x/data/cifar10-jpeg.tar.gz (cache /x/data/cifar10-uint8.pt)')
    """
    root = _existing_dir(data_dir)
    candidates = (root / CACHE_NAME, fallback_cache_path(root))
    hit = _load_valid_cache(root, candidates)
    if hit is not None:
        return hit

    cache = candidates[0] if _dir_writable(root) else candidates[1]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the cache folder {cache.parent} ({exc}): make {root} writable or "
            "set XDG_CACHE_HOME to a writable folder"
        ) from exc
    with FileLock(f"{cache}.lock"):
        # Another worker may have converted (or downloaded) while this one waited.
        hit = _load_valid_cache(root, candidates)
        if hit is not None:
            return hit
        source = _find_source(root)
        if source is None:
            if not download:
                raise DataError(
                    f"no CIFAR-10 data in {root}: let it download (download=True, needs "
                    f"network), {_HOW_TO_PROVIDE}"
                )
            if cache != candidates[0]:
                raise DataError(
                    f"no CIFAR-10 data in {root} and it is read-only, so it cannot be "
                    f"downloaded there: download into a writable folder, {_HOW_TO_PROVIDE}"
                )
            _download(root)
            source = _Source("cifar-10-batches-py", root / BATCHES_DIR)
        fingerprint = _fingerprint(source)  # before reading: a later change must not pass
        raw = _read_source(source, progress=progress)
        _write_cache(cache, raw, fingerprint=fingerprint, source=source.describe())
    return raw.train, raw.test, f"{source.describe()} (cache {cache})"


# Calibrated (CPU, seed 0): the engine's tiny 8/16-channel test net on 800 images reaches
# 0.3-0.4 validation accuracy after one epoch and 0.7-0.8 after three; a 16/32/64 ResNet on
# 5,000 images 0.69, 0.94, 0.96 over three epochs. Chance is 0.1.
_SYNTH_COLOUR = (40.0, 215.0)  # range of each class's mean colour, per channel
_SYNTH_TEXTURE = 60.0  # amplitude of each class's low-frequency pattern around that colour
_SYNTH_SHIFT = 4  # pixels each way: position alone does not give the class away
_SYNTH_BRIGHTNESS = 20.0  # std of a per-image brightness offset
_SYNTH_NOISE = 80.0  # std of per-pixel noise


def synthetic_cifar10(
    *, n_train: int = 5000, n_test: int = 1000, num_classes: int = 10, seed: int = 0
) -> tuple[Split, Split]:
    """A learnable stand-in for CIFAR-10, deterministic in ``seed``, for tests and smoke runs.

    Each class is a fixed random colour with a low-frequency pattern on it; an image is its
    class pattern, shifted by a few pixels and brightened or darkened, plus strong pixel
    noise. A small CNN learns it in a couple of epochs but is far from perfect after one.
    Train and test come from the same distribution with independent draws; labels are
    balanced and shuffled.

    Example:
        >>> train, test = synthetic_cifar10(n_train=50, n_test=10, seed=3)
        >>> train.images.shape, test.labels.dtype
        (torch.Size([50, 3, 32, 32]), torch.int64)
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("num_classes", num_classes)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DataError(f"{name}={value!r} must be a positive integer")
    rng = np.random.default_rng([seed, 0])
    colours = rng.uniform(_SYNTH_COLOUR[0], _SYNTH_COLOUR[1], (num_classes, 3, 1, 1))
    coarse = colours + rng.uniform(-_SYNTH_TEXTURE, _SYNTH_TEXTURE, (num_classes, 3, 4, 4))
    # Bicubic upsampling of a 4x4 grid gives smooth blobs: structure a convolution can find.
    patterns = F.interpolate(
        torch.from_numpy(coarse).float(), size=IMAGE_SIZE, mode="bicubic", align_corners=False
    ).numpy()
    train = _draw_synthetic(patterns, n_train, np.random.default_rng([seed, 1]))
    test = _draw_synthetic(patterns, n_test, np.random.default_rng([seed, 2]))
    return train, test


def _draw_synthetic(patterns: np.ndarray, n: int, rng: np.random.Generator) -> Split:
    labels = rng.permutation(np.arange(n) % len(patterns))
    images = np.empty((n, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    chunk = 4096  # bounds the float32 scratch memory for large sets
    for start in range(0, n, chunk):
        part = labels[start : start + chunk]
        shifts = rng.integers(-_SYNTH_SHIFT, _SYNTH_SHIFT + 1, (len(part), 2))
        # A circular shift per image, as one gather: row r of the result is row r - dy.
        rows = (np.arange(IMAGE_SIZE) - shifts[:, :1]) % IMAGE_SIZE
        cols = (np.arange(IMAGE_SIZE) - shifts[:, 1:]) % IMAGE_SIZE
        channels = np.arange(3)[None, :, None, None]
        base = patterns[
            part[:, None, None, None], channels, rows[:, None, :, None], cols[:, None, None, :]
        ]
        base += rng.normal(0.0, _SYNTH_BRIGHTNESS, (len(part), 1, 1, 1)).astype(np.float32)
        base += rng.standard_normal(base.shape, dtype=np.float32) * _SYNTH_NOISE
        images[start : start + len(part)] = np.clip(np.rint(base), 0, 255)
    return Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))


def make_splits(
    train: Split,
    test: Split,
    *,
    val_size: int = 5000,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    source: str = "",
    num_classes: int = 10,
) -> DataSplits:
    """Split ``train`` into train and validation by a seeded permutation; optionally subset.

    The first ``val_size`` images of the permutation form the validation split (0 gives an
    empty one), the rest the training split, of which ``train_subset`` keeps the first N;
    ``test_subset`` keeps the first N of a seeded permutation of ``test``. Same seed, same
    split.

    Example:
        >>> train, test = synthetic_cifar10(n_train=100, n_test=20)
        >>> s = make_splits(train, test, val_size=0, train_subset=30, test_subset=5)
        >>> len(s.train), len(s.val), len(s.test)
        (30, 0, 5)
    """
    n = len(train)
    if not _is_int(val_size) or not 0 <= val_size < n:
        raise DataError(
            f"val_size={val_size!r} does not fit the {n} training images: use 0 <= val_size "
            f"< {n} (0 for no validation split)"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_subset is not None:
        _check_subset("train_subset", train_subset, len(train_idx), "after the validation split")
        train_idx = train_idx[:train_subset]
    test_split = test
    if test_subset is not None:
        _check_subset("test_subset", test_subset, len(test), "in the test set")
        test_order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
        test_split = _take(test, test_order[:test_subset])
    for name, split in (("train", train), ("test", test)):
        if len(split) and not 0 <= int(split.labels.min()) <= int(split.labels.max()) < num_classes:
            raise DataError(
                f"{name} labels run from {int(split.labels.min())} to "
                f"{int(split.labels.max())} but num_classes={num_classes}: pass the right "
                "num_classes or fix the labels"
            )
    return DataSplits(
        train=_take(train, train_idx),
        val=_take(train, val_idx),
        test=test_split,
        source=source,
        num_classes=num_classes,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_subset(name: str, value: int, available: int, where: str) -> None:
    if not _is_int(value) or not 0 < value <= available:
        raise DataError(
            f"{name}={value!r} is out of range: {available} images are available {where}, "
            f"use 1..{available} (or None for all)"
        )


def _take(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index].contiguous(), split.labels[index].contiguous())


# --------------------------------------------------------------------------- cache


def fallback_cache_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the cache goes when ``data_dir`` is read-only: one file per resolved data folder.

    Example:
        >>> fallback_cache_path("/srv/cifar").name  # doctest: +ELLIPSIS
        'cifar10-uint8-....pt'
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore a relative XDG_CACHE_HOME.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
    return base / "optuna-search" / f"cifar10-uint8-{digest}.pt"


def _dir_writable(path: Path) -> bool:
    """Whether the cache may be written into ``path``: some write bit set, and a file can be made.

    The creation is tried because a read-only mount does not show in the mode bits; the bits
    are read because root ignores them: a folder without any write bit (``chmod a-w``, like
    a shared read-only data folder) is taken as a wish to keep it untouched, even by root.
    Tests replace this function to simulate other cases.
    """
    if not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    try:
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _load_valid_cache(root: Path, candidates: Sequence[Path]) -> tuple[Split, Split, str] | None:
    source = _find_source(root)
    # Without any source left (e.g. it was deleted after conversion) the cache is all there is.
    fingerprint = _fingerprint(source) if source is not None else None
    for path in candidates:
        hit = _read_cache(path, fingerprint)
        if hit is not None:
            return hit
    return None


def _read_cache(path: Path, fingerprint: str | None) -> tuple[Split, Split, str] | None:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file is rebuilt, not fatal
        warnings.warn(f"ignoring unreadable CIFAR-10 cache {path}: {exc}", stacklevel=3)
        return None
    if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT:
        return None
    if fingerprint is not None and blob.get("fingerprint") != fingerprint:
        return None  # the source changed since this cache was written
    try:
        train = Split(blob["train_images"], blob["train_labels"])
        test = Split(blob["test_images"], blob["test_labels"])
    except (KeyError, AttributeError, DataError):
        return None
    return train, test, f"{blob.get('source', 'CIFAR-10')} (cache {path})"


def _write_cache(path: Path, raw: _Raw, *, fingerprint: str, source: str) -> None:
    blob = {
        "format": CACHE_FORMAT,
        "train_images": raw.train.images,
        "train_labels": raw.train.labels,
        "test_images": raw.test.images,
        "test_labels": raw.test.labels,
        "classes": list(raw.classes),
        "fingerprint": fingerprint,
        "source": source,
    }
    tmp = None
    try:
        # Written beside the target and renamed over it: readers never see half a file.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the cache from other users
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        warnings.warn(f"could not write the CIFAR-10 cache {path}: {exc}", stacklevel=3)


# --------------------------------------------------------------------------- sources


class _Raw(NamedTuple):
    train: Split
    test: Split
    classes: tuple[str, ...]


@dataclass(frozen=True)
class _Source:
    kind: str  # "cifar-10-batches-py", "image folders" or "tarball"
    path: Path

    def describe(self) -> str:
        return f"{self.kind} {self.path}"


def _existing_dir(data_dir: str | os.PathLike[str]) -> Path:
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DataError(
            f"data directory {path} does not exist: create it (empty is fine with download=True "
            "and network) or pass the folder that holds CIFAR-10"
        )
    if not path.is_dir():
        raise DataError(f"data directory {path} is not a directory: pass the folder holding it")
    return path.resolve()


def _find_source(root: Path) -> _Source | None:
    if (root / BATCHES_DIR).is_dir():
        return _Source("cifar-10-batches-py", root / BATCHES_DIR)
    if any((root / name).is_file() for name in (*_TRAIN_BATCHES, _TEST_BATCH)):
        return _Source("cifar-10-batches-py", root)
    if any((root / split).is_dir() for split in _SPLITS):
        return _Source("image folders", root)
    tarballs = sorted(
        p for p in root.iterdir() if p.name.endswith(_TARBALL_SUFFIXES) and p.is_file()
    )
    if len(tarballs) > 1:
        names = ", ".join(p.name for p in tarballs)
        raise DataError(
            f"several tarballs in {root} ({names}): keep only the one holding CIFAR-10, or "
            "unpack it there"
        )
    return _Source("tarball", tarballs[0]) if tarballs else None


def _fingerprint(source: _Source) -> str:
    """Kind, path and the size and mtime of every file read: any change rebuilds the cache."""
    if source.kind == "image folders":
        files = [
            (path, size, mtime) for _, _, path, size, mtime in _scan_image_folders(source.path)
        ]
    else:
        paths = [source.path]
        if source.kind == "cifar-10-batches-py":
            paths = [source.path / name for name in (*_TRAIN_BATCHES, _TEST_BATCH)]
        files = [(str(p), st.st_size, st.st_mtime_ns) for p in paths if (st := _stat(p))]
    digest = hashlib.sha256()
    for path, size, mtime_ns in files:
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode())
    return f"{source.kind}:{source.path}:{digest.hexdigest()}"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _read_source(source: _Source, *, progress: bool) -> _Raw:
    if source.kind == "cifar-10-batches-py":
        folder = source.path

        def read(name: str) -> bytes | None:
            path = folder / name
            return path.read_bytes() if path.is_file() else None

        return _from_batches(read, str(folder))
    if source.kind == "image folders":
        files = _scan_image_folders(source.path)
        records = [(split, cls, path, Path(path)) for split, cls, path, _, _ in files]
        return _from_image_tree(records, str(source.path), progress=progress)
    return _from_tarball(source.path, progress=progress)


def _scan_image_folders(root: Path) -> list[tuple[str, str, str, int, int]]:
    """(split, class, path, size, mtime_ns) of every image in the tree, sorted."""
    # Lean on purpose: this fingerprints 60,000 files on every load (0.3 s; pathlib took 1.2 s).
    found = []
    for split in _SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise DataError(
                f"{split_dir} is missing: an image-folder tree needs both train/<class>/ and "
                f"test/<class>/ under {root}"
            )
        with os.scandir(split_dir) as entries:
            class_dirs = [(e.name, e.path) for e in entries if e.is_dir() and e.name[0] != "."]
        for cls, class_path in class_dirs:
            with os.scandir(class_path) as entries:
                for entry in entries:
                    if _is_image_name(entry.name) and entry.is_file():
                        st = entry.stat()
                        found.append((split, cls, entry.path, st.st_size, st.st_mtime_ns))
    found.sort()
    return found


def _is_image_name(name: str) -> bool:
    # Hidden files include macOS "._x.jpg" resource forks, which are not images.
    return name.lower().endswith(_IMAGE_SUFFIXES) and not name.startswith(".")


def _from_tarball(path: Path, *, progress: bool) -> _Raw:
    records: list[tuple[str, str, str, bytes | Path]] = []
    batches: dict[str, bytes] = {}
    batch_names = {*_TRAIN_BATCHES, _TEST_BATCH}
    try:
        with tarfile.open(path, "r:*") as tar:
            members = tqdm(
                tar,
                desc=f"reading {path.name}",
                unit=" files",
                disable=not progress,
                file=sys.stderr,
            )
            for member in members:
                if not member.isfile():
                    continue
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                if len(parts) >= 2 and parts[-2] == BATCHES_DIR and parts[-1] in batch_names:
                    batches[parts[-1]] = _tar_read(tar, member)
                elif len(parts) >= 3 and parts[-3] in _SPLITS and _is_image_name(parts[-1]):
                    name = f"{path}:{member.name}"
                    records.append((parts[-3], parts[-2], name, _tar_read(tar, member)))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(
            f"cannot read the tarball {path} ({exc}): replace it with a complete copy"
        ) from exc
    if batches:
        return _from_batches(batches.get, f"{path}:{BATCHES_DIR}")
    if not records:
        raise DataError(
            f"the tarball {path} holds neither train/<class>/ + test/<class>/ images nor a "
            f"{BATCHES_DIR} folder: {_HOW_TO_PROVIDE}"
        )
    return _from_image_tree(records, str(path), progress=progress)


def _tar_read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    file = tar.extractfile(member)
    assert file is not None  # regular members always have data
    return file.read()


def _from_image_tree(
    records: list[tuple[str, str, str, bytes | Path]], where: str, *, progress: bool
) -> _Raw:
    """Decode (split, class, name, payload) records; sorted class names give the labels."""
    classes = {s: sorted({cls for split, cls, _, _ in records if split == s}) for s in _SPLITS}
    for split in _SPLITS:
        if not classes[split]:
            raise DataError(
                f"no images under {where} {split}/<class>/: an image-folder tree needs png or "
                "jpg files in train/<class>/ and test/<class>/"
            )
    if classes["train"] != classes["test"]:
        raise DataError(
            f"train/ and test/ in {where} have different class folders "
            f"({_short(classes['train'])} vs {_short(classes['test'])}): give both the same ones"
        )
    names = tuple(classes["train"])
    if len(names) != len(CIFAR10_CLASSES):
        raise DataError(
            f"{where} has {len(names)} class folders ({_short(names)}): CIFAR-10 needs "
            f"{len(CIFAR10_CLASSES)}, one per class (sorted names give the labels)"
        )
    label_of = {name: i for i, name in enumerate(names)}
    records = sorted(records, key=lambda r: (_SPLITS.index(r[0]), r[1], r[2]))
    pixels = np.empty((len(records), IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    # Serial on purpose: on 60,000 CIFAR JPEGs (2 cores) a thread pool made PIL decoding 2x
    # slower (4.1 s -> 8.5 s): a 32x32 decode is mostly Python-side work that holds the GIL.
    bar = tqdm(
        records, desc="decoding CIFAR-10", unit=" img", disable=not progress, file=sys.stderr
    )
    for i, (_, _, name, payload) in enumerate(bar):
        pixels[i] = _decode_image(payload, name)
    labels = np.array([label_of[cls] for _, cls, _, _ in records], np.int64)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    n_train = sum(1 for r in records if r[0] == "train")
    return _Raw(
        Split(images[:n_train].clone(), torch.from_numpy(labels[:n_train].copy())),
        Split(images[n_train:].clone(), torch.from_numpy(labels[n_train:].copy())),
        names,
    )


def _decode_image(payload: bytes | Path, name: str) -> np.ndarray:
    try:
        if isinstance(payload, Path):
            with open(payload, "rb") as file:
                payload = file.read()
        with Image.open(io.BytesIO(payload)) as img:
            if img.size != (IMAGE_SIZE, IMAGE_SIZE):
                w, h = img.size
                raise DataError(
                    f"{name} is {w}x{h} pixels, not 32x32: CIFAR-10 images must be 32x32 "
                    "(resize or remove it)"
                )
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            return np.asarray(rgb)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name} is not a readable image ({exc}): replace or remove it") from exc


def _from_batches(read: Callable[[str], bytes | None], where: str) -> _Raw:
    arrays = {}
    for name in (*_TRAIN_BATCHES, _TEST_BATCH):
        data = read(name)
        if data is None:
            raise DataError(
                f"{where}/{name} is missing: a {BATCHES_DIR} folder needs data_batch_1..5 and "
                "test_batch (download or extract it again)"
            )
        arrays[name] = _unpickle_batch(data, f"{where}/{name}")
    train_images = np.concatenate([arrays[n][0] for n in _TRAIN_BATCHES])
    train_labels = np.concatenate([arrays[n][1] for n in _TRAIN_BATCHES])
    test_images, test_labels = arrays[_TEST_BATCH]
    return _Raw(
        Split(torch.from_numpy(train_images), torch.from_numpy(train_labels)),
        Split(torch.from_numpy(np.ascontiguousarray(test_images)), torch.from_numpy(test_labels)),
        CIFAR10_CLASSES,
    )


def _unpickle_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        # The batches are pickles by design (as torchvision reads them): only point this at
        # data you trust.
        batch = pickle.loads(data, encoding="bytes")
        images = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:
        raise DataError(
            f"{name} is not a CIFAR-10 batch ({type(exc).__name__}: {exc}): download or extract "
            "it again"
        ) from exc
    size = 3 * IMAGE_SIZE * IMAGE_SIZE
    if images.ndim != 2 or images.shape[1] != size or labels.shape != images.shape[:1]:
        raise DataError(
            f"{name} holds data of shape {list(images.shape)} with {labels.size} labels, not "
            f"[N, {size}] with N labels: download or extract it again"
        )
    return images.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE), labels


def _download(root: Path) -> None:
    # Imported here: only a download needs torchvision.
    from torchvision.datasets.utils import download_and_extract_archive

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_and_extract_archive(CIFAR10_URL, str(root), md5=CIFAR10_MD5)
    except Exception as exc:
        raise DataError(
            f"no CIFAR-10 data in {root} and downloading it failed ({type(exc).__name__}: "
            f"{exc}): retry with network access, or {_HOW_TO_PROVIDE}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
    if not (root / BATCHES_DIR).is_dir():
        raise DataError(
            f"the download into {root} did not produce {BATCHES_DIR}/: delete the partial "
            f"files and retry, or {_HOW_TO_PROVIDE}"
        )


def _short(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
