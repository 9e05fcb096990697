"""Reading CIFAR-10 from its formats: the pickled batches, image-folder trees, a tarball of
either (read in place, never extracted), or torchvision's download.

:func:`find_source` says what a data folder holds, :func:`fingerprint` identifies it (any
change rebuilds the cache), :func:`read_source` converts it to uint8 splits.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import pickle
import socket
import stat
import sys
import tarfile
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

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

if TYPE_CHECKING:
    from typing import Self

_T = TypeVar("_T")

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
DOWNLOAD_TIMEOUT_S = 15.0
"""Socket timeout while downloading: a closed network should fail in seconds, not hang."""

_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_BATCH = "test_batch"
_SPLITS = ("train", "test")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_TARBALL_SUFFIXES = (".tar.gz", ".tgz")
_MAX_IMAGE_BYTES = 1 << 20
"""A 32x32 image file is a few KB: anything past this is refused unread (it could fill memory)."""
_MAX_BATCH_BYTES = 256 << 20
"""The real batches are 31 MB; this stops a tarball member that claims gigabytes being read."""

# What reading a damaged tarball raises: tarfile's own errors, gzip/bz2's (OSError, EOFError
# when truncated), and the decompressors' (zlib.error escapes tarfile while reading a member).
_TAR_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, OSError, EOFError, zlib.error)
with contextlib.suppress(ImportError):  # Python can be built without lzma
    from lzma import LZMAError

    _TAR_ERRORS += (LZMAError,)
_EOF_HEADER: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]

# All a CIFAR-10 batch pickle may name: numpy's array, scalar and dtype constructors (numpy 1's
# and 2's module names; _frombuffer for protocol 5) and _codecs.encode, which protocol 0-2
# pickles written by Python 3 use for bytes. A pickle can call anything it names, so one from
# an untrusted folder must not name anything else.
_BATCH_GLOBALS = frozenset(
    {
        *((f"numpy{core}.multiarray", "_reconstruct") for core in (".core", "._core")),
        *((f"numpy{core}.multiarray", "scalar") for core in (".core", "._core")),
        *((f"numpy{core}.numeric", "_frombuffer") for core in (".core", "._core")),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


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
    try:
        path = Path(data_dir).expanduser()
        mode = _mode(path)
    except ValueError as exc:  # an embedded NUL byte
        raise DataError(
            f"data directory {os.fspath(data_dir)!r} is not a valid path ({exc}): pass the "
            "folder that holds CIFAR-10"
        ) from exc
    except OSError as exc:  # a symlink loop, or a parent folder this user may not enter
        raise DataError(_os_error_message(exc, path)) from exc
    if mode is None:
        if path.is_symlink():
            raise DataError(
                f"data directory {path} is a symlink to {os.readlink(path)}, which does not "
                "exist: point it at the folder that holds CIFAR-10"
            )
        raise DataError(
            f"data directory {path} does not exist: create it (empty is fine with download=True "
            "and network) or pass the folder that holds CIFAR-10"
        )
    if not stat.S_ISDIR(mode):
        raise DataError(f"data directory {path} is not a directory: pass the folder holding it")
    return path.resolve()


def find_source(root: Path) -> Source | None:
    with _os_errors(root):
        if _is(root / BATCHES_DIR, stat.S_ISDIR):
            return Source("cifar-10-batches-py", root / BATCHES_DIR)
        if any(_is(root / name, stat.S_ISREG) for name in (*_TRAIN_BATCHES, _TEST_BATCH)):
            return Source("cifar-10-batches-py", root)
        if any(_is(root / split, stat.S_ISDIR) for split in _SPLITS):
            return Source("image folders", root)
        tarballs = sorted(
            p for p in root.iterdir() if p.name.endswith(_TARBALL_SUFFIXES) and _is(p, stat.S_ISREG)
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
    with _os_errors(source.path):
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
        # surrogateescape: names with bytes that are not UTF-8 hash as those bytes.
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return f"{source.kind}:{source.path}:{digest.hexdigest()}"


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _mode(path: Path) -> int | None:
    """``st_mode`` of ``path`` (links followed), None if absent (a dangling link is absent).

    Unlike ``Path.is_dir``, this raises on a symlink loop or a folder it may not enter, instead
    of calling the path absent and so blaming a different problem.
    """
    try:
        return path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None


def _is(path: Path, test: Callable[[int], bool]) -> bool:
    mode = _mode(path)
    return mode is not None and test(mode)


@contextlib.contextmanager
def _os_errors(where: Path) -> Iterator[None]:
    """OS errors while reading the data (permissions, symlink loops, I/O) as one-line errors."""
    try:
        yield
    except OSError as exc:
        raise DataError(_os_error_message(exc, where)) from exc


def _os_error_message(exc: OSError, where: object) -> str:
    name = where if exc.filename is None else exc.filename
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        fix = "make it readable by this user (files need r, folders r and x), or copy the data"
    elif exc.errno == errno.ELOOP:
        fix = "it is a symlink loop: point the link at the real file or folder, or remove it"
    else:
        fix = "check the disk, or replace the file with a good copy"
    return f"cannot read {name} ({reason}): {fix}"


def read_source(source: Source, *, progress: bool) -> Raw:
    with _os_errors(source.path):
        if source.kind == "cifar-10-batches-py":
            folder = source.path

            def read(name: str) -> bytes | None:
                path = folder / name
                return _read_capped(path, _MAX_BATCH_BYTES) if _is(path, stat.S_ISREG) else None

            return _from_batches(read, str(folder))
        if source.kind == "image folders":
            files = _scan_image_folders(source.path)
            records = [(split, cls, path, Path(path)) for split, cls, path, _, _ in files]
            return _from_image_tree(records, str(source.path), progress=progress)
        return _from_tarball(source.path, progress=progress)


def _read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes; refused without reading it all when it is larger than ``limit``."""
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise DataError(
            f"{path} is larger than {limit:,} bytes, far more than any CIFAR-10 file: "
            "remove it, or replace it with the right file"
        )
    return data


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
            # The name first: a hidden entry is skipped before it is even stat'ed.
            class_dirs = [(e.name, e.path) for e in entries if e.name[0] != "." and e.is_dir()]
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
    where = "at its start"  # where reading stopped, for the error: the damage is near there
    try:
        with (
            tarfile.open(path, "r:*", tarinfo=_StrictTarInfo) as tar,
            # Not kept even when done: the images' decoding (and its bar) may still fail.
            _bar(
                tar, desc=f"reading {path.name}", unit=" files", progress=progress, keep=False
            ) as members,
        ):
            for member in members:
                where = f"after member {member.name}"
                if not member.isfile():
                    continue
                parts = [p for p in member.name.split("/") if p not in ("", ".")]
                name = f"{path}:{member.name}"
                if len(parts) >= 2 and parts[-2] == BATCHES_DIR and parts[-1] in batch_names:
                    where = f"at member {member.name}"
                    batches[parts[-1]] = _tar_read(tar, member, name, _MAX_BATCH_BYTES)
                elif len(parts) >= 3 and parts[-3] in _SPLITS and _is_image_name(parts[-1]):
                    where = f"at member {member.name}"
                    payload = _tar_read(tar, member, name, _MAX_IMAGE_BYTES)
                    records.append((parts[-3], parts[-2], name, payload))
                where = f"after member {member.name}"
            where = "at its end"
            _read_to_the_end(tar)
    except PermissionError as exc:
        raise DataError(_os_error_message(exc, path)) from exc
    except _TAR_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        if where == "at its start" and isinstance(exc, tarfile.ReadError):
            # tarfile lists what each decompressor said; in short, it is none of them.
            st = _stat(path)
            empty = st is not None and st.st_size == 0
            reason = "empty file" if empty else "not a tar archive, plain or gzip/bz2/xz"
        raise DataError(
            f"{path} is not a readable tarball ({reason}; corrupt {where}?): replace it with a "
            "complete copy, or unpack it there"
        ) from exc
    if batches:
        return _from_batches(batches.get, f"{path}:{BATCHES_DIR}")
    if not records:
        raise DataError(
            f"the tarball {path} holds neither train/<class>/ + test/<class>/ images nor a "
            f"{BATCHES_DIR} folder: {HOW_TO_PROVIDE}"
        )
    return _from_image_tree(records, str(path), progress=progress)


class _StrictTarInfo(tarfile.TarInfo):
    """Makes a missing or damaged header after the first member an error.

    tarfile ends the archive there without a word, so a truncated or damaged tarball would
    load as a smaller data set. Only the end-of-archive marker (a zero block) ends it cleanly.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            if tarfile_.offset == 0 or isinstance(exc, _EOF_HEADER):
                raise  # tarfile's own handling: an error at the start, or the clean end
            # Empty or short: the data ends there. Otherwise the header is damaged.
            cut = type(exc).__name__ in ("EmptyHeaderError", "TruncatedHeaderError")
            what = "ends early" if cut else f"damaged header ({exc})"
            raise tarfile.ReadError(f"{what} at byte {tarfile_.offset}") from None


def _read_to_the_end(tar: tarfile.TarFile) -> None:
    """Read past the end-of-archive marker, so that gzip checks its CRC and length.

    tarfile stops at the marker, which leaves damage that still inflates (and a cut-off
    gzip trailer) unnoticed.
    """
    if tar.fileobj is not None:
        while tar.fileobj.read(1 << 20):
            pass


def _tar_read(tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, limit: int) -> bytes:
    # The header gives the size: refuse a huge member (a gzip bomb?) before reading any of it.
    if member.size > limit:
        raise DataError(
            f"{name} is {member.size:,} bytes, far more than any CIFAR-10 file ({limit:,} at "
            "most): remove it from the tarball"
        )
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
    with (
        _bar(records, desc="decoding CIFAR-10", unit=" img", progress=progress) as bar,
        warnings.catch_warnings(),
    ):
        # PIL warns on opening an image of over 89 Mpixels; such an image is refused below
        # from its header alone (never decoded), and the warning would be a second stderr line.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
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


@contextlib.contextmanager
def _bar(
    items: Iterable[_T], *, desc: str, unit: str, progress: bool, keep: bool = True
) -> Iterator[Iterator[_T]]:
    """``items`` counted on a progress bar on stderr, which is wiped if the work fails: the
    error is then the one line."""
    total = len(items) if isinstance(items, Sized) else None
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not progress, file=sys.stderr, leave=keep)

    # Not tqdm's own iterator: an exception drops it before the with statement's exit runs,
    # and dropping it closes the bar, kept, before it can be told to clear itself.
    def counted() -> Iterator[_T]:
        for item in items:
            yield item
            bar.update()

    try:
        yield counted()
    except BaseException:
        bar.leave = False  # close() then clears the line instead of keeping it
        raise
    finally:
        bar.close()


def _decode_image(payload: bytes | Path, name: str) -> np.ndarray:
    if isinstance(payload, Path):
        try:
            payload = _read_capped(payload, _MAX_IMAGE_BYTES)
        except OSError as exc:  # permissions, I/O: not the image's fault
            raise DataError(_os_error_message(exc, payload)) from exc
    try:
        with Image.open(io.BytesIO(payload)) as img:
            # Opening reads only the header; the size is checked before any pixel is decoded.
            if img.size != (IMAGE_SIZE, IMAGE_SIZE):
                w, h = img.size
                raise DataError(
                    f"{name} is {w}x{h} pixels, not 32x32: CIFAR-10 images must be 32x32 "
                    "(resize or remove it)"
                )
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            return np.asarray(rgb)
    except Image.DecompressionBombError as exc:  # PIL's own header check, in Image.open
        raise DataError(
            f"{name} claims far more than 32x32 pixels ({str(exc).rstrip('.')}), so it was not "
            "decoded: CIFAR-10 images must be 32x32 (resize or remove it)"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # PIL's "cannot identify image file <_io.BytesIO object at 0x...>" says no more than this.
        reason = "no image format PIL knows" if isinstance(exc, UnidentifiedImageError) else exc
        raise DataError(f"{name} is not a readable image ({reason}): replace or remove it") from exc


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


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (see ``_BATCH_GLOBALS``).

    The batches are pickles by design (torchvision reads them with plain ``pickle``), and a
    pickle can run any function it names: this refuses every other name, so a planted file
    is an error, not code run.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which no CIFAR-10 batch does")
        return super().find_class(module, name)


def _unpickle_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # a damaged pickle raises almost anything
        raise DataError(
            f"{name} is not a CIFAR-10 batch ({type(exc).__name__}: {exc}): download or extract "
            "it again"
        ) from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(
            f"{name} holds a {type(batch).__name__}, not a CIFAR-10 batch (a dict with "
            "b'data' and b'labels'): download or extract it again"
        )
    try:
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
    # Checked here, before the cache is written: a bad label would otherwise only fail later,
    # in make_splits, with the cache of the bad data already beside it.
    if labels.size and not 0 <= labels.min() <= labels.max() < len(CIFAR10_CLASSES):
        raise DataError(
            f"{name} has labels from {labels.min()} to {labels.max()}, but CIFAR-10's run from "
            f"0 to {len(CIFAR10_CLASSES) - 1}: download or extract it again"
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
