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
import os
import stat
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock

if sys.platform != "win32":
    import fcntl

from model import sources
from model.dataset import (
    BATCHES_DIR,
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    HOW_TO_PROVIDE,
    IMAGE_SIZE,
    DataError,
    DataSplits,
    Split,
)

DATASETS = ("cifar10", "synthetic")
SYNTHETIC_SEED = 0
"""``load_data`` always draws the synthetic set with this seed: the data stay fixed across
trials and its ``seed`` only changes the split, as for CIFAR-10."""

CACHE_NAME = "cifar10-uint8.pt"
CACHE_FORMAT = 1

__all__ = [
    "CACHE_NAME",
    "CIFAR10_CLASSES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATASETS",
    "DataError",
    "DataSplits",
    "Split",
    "fallback_cache_path",
    "load_cifar10",
    "load_data",
    "make_splits",
    "synthetic_cifar10",
]

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
    root = sources.existing_dir(data_dir)
    candidates = (root / CACHE_NAME, fallback_cache_path(root))
    source = sources.find_source(root)
    hit = _load_valid_cache(source, candidates)
    if hit is not None:
        return hit

    cache = candidates[0] if _dir_writable(root) else candidates[1]
    if source is None:  # refused before the lock, so that nothing is created for nothing
        _check_downloadable(root, download=download, writable=cache == candidates[0])
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the cache folder {cache.parent} ({exc}): make {root} writable or "
            "set XDG_CACHE_HOME to a writable folder"
        ) from exc
    with _conversion_lock(Path(f"{cache}.lock")):
        # Another worker may have converted (or downloaded) while this one waited.
        source = sources.find_source(root)
        hit = _load_valid_cache(source, candidates)
        if hit is not None:
            return hit
        if source is None:
            _check_downloadable(root, download=download, writable=cache == candidates[0])
            sources.download(root)
            source = sources.Source("cifar-10-batches-py", root / BATCHES_DIR)
        fingerprint = sources.fingerprint(source)  # before reading: a later change must not pass
        raw = sources.read_source(source, progress=progress)
        _write_cache(cache, raw, fingerprint=fingerprint, source=source.describe())
    return raw.train, raw.test, f"{source.describe()} (cache {cache})"


def _check_downloadable(root: Path, *, download: bool, writable: bool) -> None:
    """Raise unless CIFAR-10, found nowhere in ``root``, may be downloaded there."""
    if not download:
        raise DataError(
            f"no CIFAR-10 data in {root}: let it download (download=True, needs "
            f"network), {HOW_TO_PROVIDE}"
        )
    if not writable:
        raise DataError(
            f"no CIFAR-10 data in {root} and it is read-only, so it cannot be "
            f"downloaded there: download into a writable folder, {HOW_TO_PROVIDE}"
        )


@contextlib.contextmanager
def _conversion_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` locked while converting, so that parallel workers convert once.

    A failed conversion removes the file, so that a failed load leaves nothing beside the
    data. flock locks an inode, so a worker waiting on the removed file would then hold a lock
    no one else sees; each holder therefore checks, once locked, that ``path`` still names its
    inode, and else starts over on the file there. filelock leaves its file on purpose and not
    every version this project allows makes that check, hence flock here. After a success the
    file stays, as filelock's did: the next conversion (of a changed source) reuses it.
    """
    if sys.platform == "win32":  # no flock; filelock removes its file on release there
        with FileLock(str(path)):
            yield
        return
    fd = _lock_inode(path)
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()  # still locked: no one else is using this inode as their lock
        raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _lock_inode(path: Path) -> int | None:
    """An open descriptor of ``path``, exclusively flocked; None where flock is unsupported."""
    while True:
        try:
            # Read-only is enough for flock and opens a lock file another user created;
            # O_NOFOLLOW: a planted symlink must not make this create a file elsewhere.
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise DataError(
                f"cannot create the lock file {path} ({exc.strerror or exc}): remove it if it "
                f"is not a plain file, or make {path.parent} writable"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            # A file system without flock: go on unlocked. The cache is written atomically,
            # so the worst case is two workers converting at once.
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            return fd
        os.close(fd)  # its holder failed and removed it while this one waited: start over


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
    # surrogateescape: a path with bytes that are not UTF-8 hashes as those bytes.
    resolved = str(Path(data_dir).resolve()).encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(resolved).hexdigest()[:16]
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


def _load_valid_cache(
    source: sources.Source | None, candidates: Sequence[Path]
) -> tuple[Split, Split, str] | None:
    # Without any source left (e.g. it was deleted after conversion) the cache is all there is.
    fingerprint = sources.fingerprint(source) if source is not None else None
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


def _write_cache(path: Path, raw: sources.Raw, *, fingerprint: str, source: str) -> None:
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
