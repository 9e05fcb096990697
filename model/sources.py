"""Reading CIFAR-10 from its formats: the pickled batches, image-folder trees, a tarball of
either (read in place, never extracted), or torchvision's download.

:func:`find_source` says what a data folder holds, :func:`fingerprint` identifies it (any
change rebuilds the cache), :func:`read_source` converts it to uint8 splits.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import sys
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from model.dataset import (
    BATCHES_DIR,
    CIFAR10_CLASSES,
    HOW_TO_PROVIDE,
    IMAGE_SIZE,
    DataError,
    Split,
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DOWNLOAD_TIMEOUT_S = 15.0
"""Socket timeout while downloading: a closed network should fail in seconds, not hang."""

_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_SPLITS = ("train", "test")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TARBALL_SUFFIXES = (".tar.gz", ".tgz")


class Raw(NamedTuple):
    train: Split
    test: Split
    classes: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    kind: str  # "cifar-10-batches-py", "image folders" or "tarball"
    path: Path

    def describe(self) -> str:
        return f"{self.kind} {self.path}"


def existing_dir(data_dir: str | os.PathLike[str]) -> Path:
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DataError(
            f"data directory {path} does not exist: create it (empty is fine with download=True "
            "and network) or pass the folder that holds CIFAR-10"
        )
    if not path.is_dir():
        raise DataError(f"data directory {path} is not a directory: pass the folder holding it")
    return path.resolve()


def find_source(root: Path) -> Source | None:
    if (root / BATCHES_DIR).is_dir():
        return Source("cifar-10-batches-py", root / BATCHES_DIR)
    if any((root / name).is_file() for name in (*_TRAIN_BATCHES, _TEST_BATCH)):
        return Source("cifar-10-batches-py", root)
    if any((root / split).is_dir() for split in _SPLITS):
        return Source("image folders", root)
    tarballs = sorted(
        p for p in root.iterdir() if p.name.endswith(_TARBALL_SUFFIXES) and p.is_file()
    )
    if len(tarballs) > 1:
        names = ", ".join(p.name for p in tarballs)
        raise DataError(
            f"several tarballs in {root} ({names}): keep only the one holding CIFAR-10, or "
            "unpack it there"
        )
    return Source("tarball", tarballs[0]) if tarballs else None


def fingerprint(source: Source) -> str:
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


def read_source(source: Source, *, progress: bool) -> Raw:
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


def _from_tarball(path: Path, *, progress: bool) -> Raw:
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
            f"{BATCHES_DIR} folder: {HOW_TO_PROVIDE}"
        )
    return _from_image_tree(records, str(path), progress=progress)


def _tar_read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    file = tar.extractfile(member)
    assert file is not None  # regular members always have data
    return file.read()


def _from_image_tree(
    records: Sequence[tuple[str, str, str, bytes | Path]], where: str, *, progress: bool
) -> Raw:
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
    return Raw(
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


def _from_batches(read: Callable[[str], bytes | None], where: str) -> Raw:
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
    return Raw(
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


def download(root: Path) -> None:
    # Imported here: only a download needs torchvision.
    from torchvision.datasets.utils import download_and_extract_archive

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        download_and_extract_archive(CIFAR10_URL, str(root), md5=CIFAR10_MD5)
    except Exception as exc:
        raise DataError(
            f"no CIFAR-10 data in {root} and downloading it failed ({type(exc).__name__}: "
            f"{exc}): retry with network access, or {HOW_TO_PROVIDE}"
        ) from exc
    finally:
        socket.setdefaulttimeout(previous)
    if not (root / BATCHES_DIR).is_dir():
        raise DataError(
            f"the download into {root} did not produce {BATCHES_DIR}/: delete the partial "
            f"files and retry, or {HOW_TO_PROVIDE}"
        )


def _short(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
