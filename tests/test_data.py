"""Data loading: every source, the cache and its fallback, splits, synthetic data, errors.

Fixtures are tiny data sets built in tmp_path; the real CIFAR-10 is never needed.
"""

from __future__ import annotations

import io
import os
import pickle
import stat
import struct
import tarfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest
import torch
from PIL import Image

from model import data, sources
from model.data import (
    CACHE_NAME,
    CIFAR10_CLASSES,
    DATASETS,
    DataError,
    Split,
    fallback_cache_path,
    load_cifar10,
    load_data,
    make_splits,
    synthetic_cifar10,
)
from model.dataset import BATCHES_DIR

# --------------------------------------------------------------------------- fixture builders


def write_batches(folder: Path, *, per_batch: int = 4, n_test: int = 6) -> tuple[Split, Split]:
    """A cifar-10-batches-py folder of random pickled batches; returns what it holds."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (5 * per_batch, 3, 32, 32), dtype=np.uint8)
    train_labels = rng.integers(0, 10, 5 * per_batch)
    test = rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8)
    test_labels = rng.integers(0, 10, n_test)
    chunks = [(f"data_batch_{b + 1}", slice(b * per_batch, (b + 1) * per_batch)) for b in range(5)]
    for name, part in chunks:
        _dump_batch(folder / name, train[part], train_labels[part])
    _dump_batch(folder / "test_batch", test, test_labels)
    return _split(train, train_labels), _split(test, test_labels)


def _dump_batch(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    # The real batches are Python 2 pickles; read with encoding="bytes" their keys are bytes.
    batch = {b"data": images.reshape(len(images), -1), b"labels": labels.tolist()}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def _split(images: np.ndarray, labels: np.ndarray) -> Split:
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


class Expected:
    """Pixels (NHWC), labels, and which images are lossless, per split, in loader order."""

    def __init__(self) -> None:
        self.pixels: dict[str, list[np.ndarray]] = {"train": [], "test": []}
        self.labels: dict[str, list[int]] = {"train": [], "test": []}
        self.exact: dict[str, list[bool]] = {"train": [], "test": []}

    def check(self, split: Split, name: str) -> None:
        pixels = np.stack(self.pixels[name])
        exact = np.array(self.exact[name])
        assert split.images.dtype == torch.uint8 and split.images.is_contiguous()
        assert split.labels.dtype == torch.int64
        assert split.labels.tolist() == self.labels[name]
        got = split.images.permute(0, 2, 3, 1).numpy()
        assert np.array_equal(got[exact], pixels[exact])  # png: bit for bit
        diff = np.abs(got[~exact].astype(int) - pixels[~exact].astype(int))
        assert diff.mean() < 3  # jpg: lossy, but close on smooth images


def write_tree(root: Path, *, per_class: tuple[int, int] = (3, 2)) -> Expected:
    """train/<class>/ + test/<class>/ with random RGB png, grayscale png and smooth jpg."""
    rng = np.random.default_rng(1)
    expected = Expected()
    ramp = np.linspace(0, 60, 32)
    for split, n in zip(("train", "test"), per_class, strict=True):
        for label, cls in enumerate(CIFAR10_CLASSES):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                if i % 3 == 1:  # jpg: smooth colour so the loss stays small
                    colour = rng.integers(20, 130, 3)  # + ramps stays below 256
                    pixels = (colour + ramp[:, None, None] + ramp[None, :, None]).astype(np.uint8)
                    Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=95)
                elif i % 3 == 2:  # grayscale png: converted to RGB by repeating the channel
                    gray = rng.integers(0, 256, (32, 32), dtype=np.uint8)
                    Image.fromarray(gray).save(folder / f"{i}.png")
                    pixels = np.repeat(gray[:, :, None], 3, axis=2)
                else:
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"{i}.png")
                expected.pixels[split].append(pixels)
                expected.labels[split].append(label)
                expected.exact[split].append(i % 3 != 1)
    (root / "train" / "cat" / "notes.txt").write_text("not an image: ignored")
    return expected


def write_tarball(tree: Path, path: Path, *, prefix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=prefix + split)
    return path


def load(path: Path) -> tuple[Split, Split, str]:
    return load_cifar10(path, download=False, progress=False)


def same(a: Split, b: Split) -> bool:
    return torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


@pytest.fixture
def no_conversion(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if anything is converted: what loads must come from a cache."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr(sources, "read_source", refuse)


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private XDG cache home, so no test writes to the real ~/.cache."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


# --------------------------------------------------------------------------- sources


def test_batches_folder_round_trips_exactly(tmp_path: Path, xdg: Path) -> None:
    root = tmp_path / "data"
    train, test = write_batches(root / "cifar-10-batches-py")
    got_train, got_test, source = load(root)
    assert same(got_train, train) and same(got_test, test)
    assert got_train.images.shape == (20, 3, 32, 32) and got_test.labels.shape == (6,)
    assert (
        source == f"cifar-10-batches-py {root / 'cifar-10-batches-py'} (cache {root / CACHE_NAME})"
    )


def test_data_dir_may_be_the_batches_folder_itself(tmp_path: Path, xdg: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    train, test = write_batches(folder)
    got_train, got_test, _ = load(folder)
    assert same(got_train, train) and same(got_test, test)
    assert (folder / CACHE_NAME).is_file()


def test_missing_batch_is_named(tmp_path: Path, xdg: Path) -> None:
    write_batches(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3 is missing"):
        load(tmp_path)


def test_image_folders_png_exact_jpg_close_sorted_labels(tmp_path: Path, xdg: Path) -> None:
    expected = write_tree(tmp_path)
    train, test, source = load(tmp_path)
    expected.check(train, "train")
    expected.check(test, "test")
    assert len(train) == 30 and len(test) == 20
    assert source == f"image folders {tmp_path} (cache {tmp_path / CACHE_NAME})"


@pytest.mark.parametrize("prefix", ["", "cifar10/"])
def test_tarball_is_read_in_place(tmp_path: Path, xdg: Path, prefix: str) -> None:
    expected = write_tree(tmp_path / "tree")
    tarball = write_tarball(tmp_path / "tree", tmp_path / "data" / "images.tgz", prefix=prefix)
    train, test, source = load(tmp_path / "data")
    expected.check(train, "train")
    expected.check(test, "test")
    assert source.startswith(f"tarball {tarball} (cache ")
    leftovers = {p.name for p in (tmp_path / "data").iterdir()}
    assert leftovers == {"images.tgz", CACHE_NAME, f"{CACHE_NAME}.lock"}  # nothing extracted


def test_tarball_of_python_batches(tmp_path: Path, xdg: Path) -> None:
    train, test = write_batches(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "data").mkdir()
    with tarfile.open(tmp_path / "data" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    got_train, got_test, _ = load(tmp_path / "data")
    assert same(got_train, train) and same(got_test, test)


def test_sources_are_tried_in_order(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path / "tree")
    write_tarball(tmp_path / "tree", tmp_path / "data" / "images.tar.gz")
    write_tree(tmp_path / "data")
    assert load(tmp_path / "data")[2].startswith("image folders ")
    write_batches(tmp_path / "data" / "cifar-10-batches-py")
    assert load(tmp_path / "data")[2].startswith("cifar-10-batches-py ")


@pytest.mark.parametrize("packed", [False, True])
def test_wrong_image_size_names_the_file(tmp_path: Path, xdg: Path, packed: bool) -> None:
    write_tree(tmp_path / "tree")
    Image.new("RGB", (32, 31)).save(tmp_path / "tree" / "test" / "dog" / "0.png")
    root = tmp_path / "tree"
    if packed:
        root = write_tarball(root, tmp_path / "data" / "images.tar.gz").parent
    with pytest.raises(DataError, match=r"test/dog/0\.png is 32x31 pixels, not 32x32"):
        load(root)


def test_unreadable_image_names_the_file(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path)
    (tmp_path / "train" / "frog" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"train/frog/0\.png is not a readable image"):
        load(tmp_path)


def test_tree_needs_matching_train_and_test_classes(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path)
    (tmp_path / "test" / "truck").rename(tmp_path / "test" / "lorry")
    with pytest.raises(DataError, match="different class folders"):
        load(tmp_path)


def test_tree_needs_ten_classes(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path)
    for split in ("train", "test"):
        for path in (tmp_path / split / "truck").iterdir():
            path.unlink()
        (tmp_path / split / "truck").rmdir()
    with pytest.raises(DataError, match="has 9 class folders"):
        load(tmp_path)


def test_tree_needs_both_splits(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path)
    (tmp_path / "test").rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match=r"test is missing"):
        load(tmp_path)


def test_progress_bar_goes_to_stderr(tmp_path: Path, xdg: Path, capsys) -> None:
    write_tree(tmp_path)
    load_cifar10(tmp_path, download=False, progress=True)
    captured = capsys.readouterr()
    assert "decoding CIFAR-10" in captured.err and captured.out == ""


# --------------------------------------------------------------------------- cache


def test_cache_is_written_then_read_without_the_source(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = write_tree(tmp_path / "data")
    first = load(tmp_path / "data")
    cache = tmp_path / "data" / CACHE_NAME
    assert cache.is_file()
    blob = torch.load(cache, weights_only=True)
    assert blob["format"] == data.CACHE_FORMAT and blob["classes"] == list(CIFAR10_CLASSES)

    for split in ("train", "test"):
        (tmp_path / "data" / split).rename(tmp_path / f"moved-{split}")
    monkeypatch.setattr(sources, "read_source", _refuse)
    train, test, source = load(tmp_path / "data")
    assert same(train, first[0]) and same(test, first[1]) and source == first[2]
    expected.check(train, "train")


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("converted again instead of reading the cache")


def test_cache_is_used_while_the_source_is_unchanged(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_batches(tmp_path / "cifar-10-batches-py")
    first = load(tmp_path)
    monkeypatch.setattr(sources, "read_source", _refuse)
    again = load(tmp_path)
    assert same(again[0], first[0]) and again[2] == first[2]


def test_cache_is_rebuilt_when_an_image_changes(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path)
    train, _, _ = load(tmp_path)
    new = np.full((32, 32, 3), 7, np.uint8)
    path = tmp_path / "train" / "airplane" / "0.png"
    Image.fromarray(new).save(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse clocks
    rebuilt, _, _ = load(tmp_path)
    assert not torch.equal(rebuilt.images[0], train.images[0])
    assert (rebuilt.images[0] == 7).all()
    assert torch.equal(rebuilt.images[1:], train.images[1:])


def test_cache_is_rebuilt_when_a_batch_changes(tmp_path: Path, xdg: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_batches(folder)
    _, test, _ = load(tmp_path)
    _dump_batch(folder / "test_batch", np.zeros((2, 3, 32, 32), np.uint8), np.array([3, 4]))
    _, rebuilt, _ = load(tmp_path)
    assert len(test) == 6 and rebuilt.labels.tolist() == [3, 4]


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path: Path, xdg: Path) -> None:
    train, _ = write_batches(tmp_path / "cifar-10-batches-py")
    (tmp_path / CACHE_NAME).write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="unreadable CIFAR-10 cache"):
        got, _, _ = load(tmp_path)
    assert same(got, train)
    assert torch.load(tmp_path / CACHE_NAME, weights_only=True)["format"] == data.CACHE_FORMAT


def test_read_only_data_dir_falls_back_to_xdg_cache(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    train, _ = write_batches(root / "cifar-10-batches-py")
    # A read-only mount, simulated: writable bits, but creating a file would fail.
    monkeypatch.setattr(data, "_dir_writable", lambda path: path != root)
    got, _, source = load(root)
    fallback = fallback_cache_path(root)
    assert fallback.parent == xdg / "optuna-search" and fallback.is_file()
    assert not (root / CACHE_NAME).exists()
    assert source.endswith(f"(cache {fallback})")
    assert same(got, train)

    monkeypatch.setattr(sources, "read_source", _refuse)
    again, _, source_again = load(root)
    assert same(again, train) and source_again == source


def test_chmod_read_only_data_dir_falls_back(tmp_path: Path, xdg: Path) -> None:
    # Without any write bit the folder is left alone, even by root (who could write to it).
    root = tmp_path / "data"
    train, _ = write_batches(root / "cifar-10-batches-py")
    root.chmod(0o555)
    try:
        got, _, source = load(root)
        assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]
    finally:
        root.chmod(0o755)
    assert same(got, train) and source.endswith(f"(cache {fallback_cache_path(root)})")


def test_fallback_cache_names_differ_per_folder(tmp_path: Path, xdg: Path) -> None:
    a, b = fallback_cache_path(tmp_path / "a"), fallback_cache_path(tmp_path / "b")
    assert a != b and a.parent == b.parent == xdg / "optuna-search"


def test_parallel_loads_convert_once(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_batches(tmp_path / "cifar-10-batches-py")
    calls = []
    real = sources.read_source

    def slow_read(source: sources.Source, *, progress: bool) -> sources.Raw:
        calls.append(1)
        time.sleep(0.3)  # keep the others waiting on the lock
        return real(source, progress=progress)

    monkeypatch.setattr(sources, "read_source", slow_read)
    results: list[tuple[Split, Split, str]] = []
    threads = [threading.Thread(target=lambda: results.append(load(tmp_path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 4
    assert all(same(r[0], results[0][0]) for r in results)


# --------------------------------------------------------------------------- errors


def _one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_data_says_where_and_the_three_ways(tmp_path: Path, xdg: Path) -> None:
    with pytest.raises(DataError) as exc:
        load(tmp_path)
    message = _one_line(exc)
    assert str(tmp_path) in message
    for way in ("download", "cifar-10-batches-py", "train/<class>/", ".tar.gz"):
        assert way in message


def test_failed_download_is_fast_and_explains(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refused local port: fails the same way with or without network, and never downloads.
    monkeypatch.setattr(sources, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    import torchvision.datasets.utils  # noqa: F401  (import time is not download time)

    start = time.perf_counter()
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=True, progress=False)
    assert time.perf_counter() - start < 5
    message = _one_line(exc)
    assert str(tmp_path) in message and "downloading it failed" in message
    assert "cifar-10-batches-py" in message and "train/<class>/" in message


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as exc:
        load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in _one_line(exc)


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="is not a directory"):
        load(tmp_path / "file")


def test_several_tarballs_are_ambiguous(tmp_path: Path, xdg: Path) -> None:
    write_tree(tmp_path / "tree")
    write_tarball(tmp_path / "tree", tmp_path / "data" / "a.tar.gz")
    write_tarball(tmp_path / "tree", tmp_path / "data" / "b.tgz")
    with pytest.raises(DataError, match=r"several tarballs .* \(a\.tar\.gz, b\.tgz\)"):
        load(tmp_path / "data")


def test_tarball_without_cifar(tmp_path: Path, xdg: Path) -> None:
    (tmp_path / "other.txt").write_text("x")
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "other.txt", arcname="other.txt")
    with pytest.raises(DataError, match="holds neither"):
        load(tmp_path)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'mnist': use one of cifar10, synthetic"):
        load_data(dataset="mnist")
    assert DATASETS == ("cifar10", "synthetic")


def test_cifar10_needs_a_data_dir() -> None:
    with pytest.raises(DataError, match="needs a data directory"):
        load_data(dataset="cifar10")


def test_data_error_is_one_line() -> None:
    assert str(DataError("first\nsecond")) == "first second"


# --------------------------------------------------------------------------- bad data folders
#
# The promise for bad input: one DataError line naming the file and the fix, and the data
# folder exactly as it was (no cache, no lock file). Each builder makes one bad folder in
# tmp and returns the data_dir to load and the fragments the message must contain.

BadData = Callable[[Path], tuple[Path, list[str]]]
FIX_TARBALL = "replace it with a complete copy"
FIX_IMAGE = "replace or remove it"
FIX_BATCH = "download or extract it again"
FIX_PERMISSION = "make it readable by this user"
FIX_LOOP = "it is a symlink loop"


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> None:
    """A valid little PNG whose header claims ``width`` x ``height``: a decompression bomb."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, "PNG")
    png = bytearray(buffer.getvalue())
    # Signature (8), IHDR length and type (8), then width and height; its CRC covers type+data.
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    path.write_bytes(bytes(png))


def plain_tar(tree: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=split)
    return buffer.getvalue()


def member_offsets(tar_bytes: bytes, name: str) -> tuple[int, int]:
    """Where the header and the data of member ``name`` start in an uncompressed tar."""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.getmember(name)
        return member.offset, member.offset_data


def tree_tarball(tmp: Path, name: str = "x.tar.gz") -> Path:
    write_tree(tmp / "tree")
    return write_tarball(tmp / "tree", tmp / "data" / name)


def tar_gz_invalid_deflate_in_a_member(tmp: Path) -> tuple[Path, list[str]]:
    # Halfway through a 120 KB batch, far past what reading its header buffers, the deflate
    # stream turns invalid: reading the member raises zlib.error (which used to escape).
    write_batches(tmp / "src" / BATCHES_DIR, per_batch=40)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(tmp / "src" / BATCHES_DIR, arcname=BATCHES_DIR)
    raw = buffer.getvalue()
    _, data_at = member_offsets(raw, f"{BATCHES_DIR}/data_batch_3")
    deflate = zlib.compressobj(wbits=31)  # gzip framing
    body = deflate.compress(raw[: data_at + 60_000]) + deflate.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the next byte starts a block: 0x07 is a final block of type 3, which
    # does not exist.
    path = tmp / "data" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    path.write_bytes(body + b"\x07" + bytes(64))
    return path.parent, [
        f"{path} is not a readable tarball",
        f"corrupt at member {BATCHES_DIR}/data_batch_3?",
        FIX_TARBALL,
    ]


def tar_gz_cut_in_half(tmp: Path) -> tuple[Path, list[str]]:
    path = tree_tarball(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.parent, [f"{path} is not a readable tarball", FIX_TARBALL]


def tar_gz_without_its_last_bytes(tmp: Path) -> tuple[Path, list[str]]:
    # All members are there; only gzip's length field is cut off: seen by reading to the end.
    path = tree_tarball(tmp)
    path.write_bytes(path.read_bytes()[:-2])
    return path.parent, [f"{path} is not a readable tarball", "corrupt at its end?", FIX_TARBALL]


def tar_gz_with_a_wrong_crc(tmp: Path) -> tuple[Path, list[str]]:
    # Damage that still inflates shows only in gzip's CRC (the trailer's first 4 bytes).
    path = tree_tarball(tmp)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))
    return path.parent, [f"{path} is not a readable tarball", "CRC check failed", FIX_TARBALL]


def tar_gz_that_is_text(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "data" / "x.tar.gz"
    path.parent.mkdir()
    path.write_text("<html>404 Not Found</html>\n" * 20)
    return path.parent, [f"{path} is not a readable tarball (not a tar archive", FIX_TARBALL]


def tar_gz_that_is_empty(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "data" / "x.tgz"
    path.parent.mkdir()
    path.write_bytes(b"")
    return path.parent, [f"{path} is not a readable tarball (empty file", FIX_TARBALL]


def plain_tar_with_a_damaged_header(tmp: Path) -> tuple[Path, list[str]]:
    # tarfile stops quietly at a bad header after the first: this one used to load as 19 test
    # images instead of 20.
    write_tree(tmp / "tree")
    raw = bytearray(plain_tar(tmp / "tree"))
    header_at, _ = member_offsets(bytes(raw), "test/truck/1.jpg")
    raw[header_at : header_at + 100] = b"?" * 100
    path = tmp / "data" / "x.tar.gz"  # plain tar under a .tar.gz name: tarfile reads it too
    path.parent.mkdir()
    path.write_bytes(bytes(raw))
    return path.parent, [f"{path} is not a readable tarball (damaged header", FIX_TARBALL]


def plain_tar_cut_between_members(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "tree")
    raw = plain_tar(tmp / "tree")
    header_at, _ = member_offsets(raw, "test/truck/1.jpg")
    path = tmp / "data" / "x.tar.gz"
    path.parent.mkdir()
    path.write_bytes(raw[:header_at])
    return path.parent, [f"{path} is not a readable tarball (ends early", FIX_TARBALL]


def tar_gz_with_a_huge_member(tmp: Path) -> tuple[Path, list[str]]:
    # 2 MiB of zeros packs into a few KB: refused from its header, never read into memory.
    write_tree(tmp / "tree")
    (tmp / "tree" / "train" / "cat" / "huge.png").write_bytes(bytes(2 << 20))
    path = write_tarball(tmp / "tree", tmp / "data" / "x.tar.gz")
    return path.parent, [
        f"{path}:train/cat/huge.png is 2,097,152 bytes",
        "remove it from the tarball",
    ]


def png_bomb_in_folder(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "train" / "cat" / "0.png"
    bomb_png(path)
    return tmp / "data", [f"{path} claims far more than 32x32 pixels", "must be 32x32"]


def png_bomb_in_tarball(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "tree")
    bomb_png(tmp / "tree" / "train" / "cat" / "0.png")
    path = write_tarball(tmp / "tree", tmp / "data" / "x.tgz")
    return path.parent, [f"{path}:train/cat/0.png claims far more than 32x32", "must be 32x32"]


def png_of_100_megapixels(tmp: Path) -> tuple[Path, list[str]]:
    # Between PIL's warning and error limits: refused from the header, without the warning.
    write_tree(tmp / "data")
    path = tmp / "data" / "test" / "dog" / "0.png"
    bomb_png(path, 10000, 10000)
    return tmp / "data", [f"{path} is 10000x10000 pixels, not 32x32", "must be 32x32"]


def image_31x32(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "test" / "dog" / "0.png"
    Image.new("RGB", (31, 32)).save(path)
    return tmp / "data", [f"{path} is 31x32 pixels, not 32x32", "resize or remove it"]


def jpeg_cut_short(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "train" / "bird" / "1.jpg"
    path.write_bytes(path.read_bytes()[:300])
    return tmp / "data", [f"{path} is not a readable image", FIX_IMAGE]


def jpeg_of_garbage(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "train" / "bird" / "1.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)  # a JPEG start, then noise
    return tmp / "data", [f"{path} is not a readable image", FIX_IMAGE]


def text_named_png(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "test" / "ship" / "0.png"
    path.write_text("not an image\n")
    return tmp / "data", [f"{path} is not a readable image", FIX_IMAGE]


def image_file_of_2_mib(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "test" / "ship" / "0.png"
    path.write_bytes(bytes(2 << 20))
    return tmp / "data", [f"{path} is larger than 1,048,576 bytes", "remove it"]


def batches(tmp: Path, name: str, payload: bytes) -> tuple[Path, Path]:
    write_batches(tmp / "data" / BATCHES_DIR)
    path = tmp / "data" / BATCHES_DIR / name
    path.write_bytes(payload)
    return tmp / "data", path


def batch_of_garbage(tmp: Path) -> tuple[Path, list[str]]:
    root, path = batches(tmp, "data_batch_2", b"\x80\x02}q\x00garbage")
    return root, [f"{path} is not a CIFAR-10 batch", FIX_BATCH]


def batch_that_is_a_list(tmp: Path) -> tuple[Path, list[str]]:
    root, path = batches(tmp, "data_batch_2", pickle.dumps([1, 2, 3]))
    return root, [f"{path} holds a list, not a CIFAR-10 batch", FIX_BATCH]


def batch_with_label_10(tmp: Path) -> tuple[Path, list[str]]:
    # Used to pass the load, write the cache, and only then fail in make_splits.
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 10]}
    root, path = batches(tmp, "test_batch", pickle.dumps(batch, protocol=2))
    return root, [f"{path} has labels from 3 to 10", FIX_BATCH]


class _Planted:
    """Unpickling this calls os.mkdir: what a planted batch could do with any function."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.target),)


def batch_that_runs_code(tmp: Path) -> tuple[Path, list[str]]:
    # The folder listing afterwards shows whether tmp/planted was made.
    root, path = batches(tmp, "data_batch_1", pickle.dumps({b"data": _Planted(tmp / "planted")}))
    return root, [f"{path} is not a CIFAR-10 batch", "mkdir, which no CIFAR-10 batch does"]


def data_dir_that_is_a_file(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "data.tar.gz"
    path.write_bytes(b"")
    return path, [f"data directory {path} is not a directory", "pass the folder holding it"]


def data_dir_that_is_a_symlink_loop(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "data"
    path.symlink_to(path)
    return path, [f"cannot read {path}", FIX_LOOP]


def data_dir_that_is_a_dangling_symlink(tmp: Path) -> tuple[Path, list[str]]:
    path = tmp / "data"
    path.symlink_to(tmp / "gone")
    return path, [f"data directory {path} is a symlink to {tmp / 'gone'}", "point it at"]


def data_dir_with_a_nul_byte(tmp: Path) -> tuple[Path, list[str]]:
    return Path(f"{tmp}/da\0ta"), ["is not a valid path", "pass the folder"]


def image_that_is_a_symlink_loop(tmp: Path) -> tuple[Path, list[str]]:
    write_tree(tmp / "data")
    path = tmp / "data" / "train" / "cat" / "loop.png"
    path.symlink_to(path.name)
    return tmp / "data", [f"cannot read {path}", FIX_LOOP]


def data_dir_named_in_latin_1(tmp: Path) -> tuple[Path, list[str]]:
    # A folder name that is not UTF-8 (here Latin-1 "café"): Python sees it as "caf\udce9",
    # which neither the cache's hashes nor an error message could encode.
    root = Path(os.fsdecode(os.fsencode(tmp) + b"/caf\xe9"))
    root.mkdir()
    write_batches(root / BATCHES_DIR)
    (root / BATCHES_DIR / "test_batch").write_bytes(b"garbage")
    return root, ["caf\\xe9/cifar-10-batches-py/test_batch is not a CIFAR-10 batch", FIX_BATCH]


def empty_data_dir(tmp: Path) -> tuple[Path, list[str]]:
    # Refused before the lock: an empty folder used to get a cifar10-uint8.pt.lock.
    (tmp / "data").mkdir()
    return tmp / "data", [f"no CIFAR-10 data in {tmp / 'data'}", "download=True"]


def unreadable(make: Callable[[Path], Path]) -> BadData:
    """A case whose file (or folder) ``make`` returns is then chmod 000.

    Skipped where that does not stop this process reading it: root, as these tests run in
    the container, unless started without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (e.g.
    ``setpriv --bounding-set=-dac_override,-dac_read_search``).
    """

    def build(tmp: Path) -> tuple[Path, list[str]]:
        path = make(tmp)
        path.chmod(0)
        try:
            os.listdir(path) if path.is_dir() else path.open("rb").close()
        except PermissionError:
            return tmp / "data", [f"cannot read {path} (Permission denied)", FIX_PERMISSION]
        path.chmod(0o755)
        pytest.skip("this process reads files whatever their mode (root)")

    build.__name__ = f"unreadable_{make.__name__}"
    return build


def an_image(tmp: Path) -> Path:
    write_tree(tmp / "data")
    return tmp / "data" / "train" / "cat" / "0.png"


def a_class_folder(tmp: Path) -> Path:
    write_tree(tmp / "data")
    return tmp / "data" / "test" / "frog"


def a_batch(tmp: Path) -> Path:
    write_batches(tmp / "data" / BATCHES_DIR)
    return tmp / "data" / BATCHES_DIR / "data_batch_4"


def a_tarball(tmp: Path) -> Path:
    return tree_tarball(tmp)


BAD_DATA = [
    tar_gz_invalid_deflate_in_a_member,
    tar_gz_cut_in_half,
    tar_gz_without_its_last_bytes,
    tar_gz_with_a_wrong_crc,
    tar_gz_that_is_text,
    tar_gz_that_is_empty,
    plain_tar_with_a_damaged_header,
    plain_tar_cut_between_members,
    tar_gz_with_a_huge_member,
    png_bomb_in_folder,
    png_bomb_in_tarball,
    png_of_100_megapixels,
    image_31x32,
    jpeg_cut_short,
    jpeg_of_garbage,
    text_named_png,
    image_file_of_2_mib,
    batch_of_garbage,
    batch_that_is_a_list,
    batch_with_label_10,
    batch_that_runs_code,
    data_dir_that_is_a_file,
    data_dir_that_is_a_symlink_loop,
    data_dir_that_is_a_dangling_symlink,
    data_dir_with_a_nul_byte,
    image_that_is_a_symlink_loop,
    data_dir_named_in_latin_1,
    empty_data_dir,
    *(unreadable(make) for make in (an_image, a_class_folder, a_batch, a_tarball)),
]


def listing(root: Path) -> dict[str, object]:
    """Every entry under ``root``: files with size and mtime, links with target, folders.

    Folders without their mtime: the lock file, made and removed beside the data while a
    conversion runs, changes the data folder's.
    """
    found: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[path] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[path] = "folder"
            else:
                found[path] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.parametrize("loader", ["load_cifar10", "load_data"])
@pytest.mark.parametrize("build", BAD_DATA, ids=lambda build: build.__name__)
def test_bad_data_is_one_line_naming_file_and_fix_and_changes_nothing(
    build: BadData, loader: str, tmp_path: Path, xdg: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data_dir, fragments = build(tmp_path)
    before = listing(tmp_path)  # tmp_path holds xdg too: no cache may appear there either
    try:
        with warnings.catch_warnings(record=True) as caught, pytest.raises(DataError) as exc:
            warnings.simplefilter("always")
            if loader == "load_cifar10":
                load_cifar10(data_dir, download=False, progress=False)
            else:
                load_data(data_dir=data_dir, download=False, progress=False)
        after = listing(tmp_path)  # while what was chmod 000 still is, as before
    finally:
        for folder, dirs, files in os.walk(tmp_path):  # let pytest delete what was chmod 000
            for name in dirs + files:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o755)
    message = _one_line(exc)
    message.encode("utf-8")  # printable anywhere: no lone surrogates
    for fragment in fragments:
        assert fragment in message
    assert after == before
    assert not [w for w in caught], [str(w.message) for w in caught]  # no second stderr line
    assert capfd.readouterr().err == ""


def test_a_failure_wipes_the_progress_bars(
    tmp_path: Path, xdg: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Bars show on a terminal; when the load fails, the error must still be the one line.
    write_tree(tmp_path / "tree")
    (tmp_path / "tree" / "test" / "ship" / "0.png").write_text("not an image")
    write_tarball(tmp_path / "tree", tmp_path / "data" / "x.tgz")
    capfd.readouterr()
    with pytest.raises(DataError, match="is not a readable image"):
        load_cifar10(tmp_path / "data", download=False, progress=True)
    err = capfd.readouterr().err
    assert "reading x.tgz" in err and "decoding CIFAR-10" in err  # both bars ran...
    assert "\n" not in err  # ...and left no line behind


def test_a_failed_conversion_removes_its_lock_under_waiting_workers(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first worker fails while two wait on its lock file, which it then removes, and a
    fourth comes while the next converts: still one conversion at a time, then one cache.

    flock locks an inode: without the check that the lock still has its name, a waiter
    would convert under the removed file while the late worker converts under a new one.
    """
    write_batches(tmp_path / BATCHES_DIR)
    real = sources.read_source
    guard = threading.Lock()
    calls: list[int] = []
    running = [0]
    most = [0]

    def read(source: sources.Source, *, progress: bool) -> sources.Raw:
        with guard:
            calls.append(1)
            first = len(calls) == 1
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)  # the others arrive meanwhile and wait on the lock
            if first:
                raise DataError("the first conversion fails")
            return real(source, progress=progress)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(sources, "read_source", read)
    outcomes: list[str] = []

    def work() -> None:
        try:
            load(tmp_path)
            outcomes.append("loaded")
        except DataError:
            outcomes.append("failed")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread, delay in zip(threads, (0.1, 0.0, 0.35, 0.0), strict=True):
        thread.start()
        time.sleep(delay)
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["failed", "loaded", "loaded", "loaded"]
    assert len(calls) == 2 and most[0] == 1
    assert (tmp_path / CACHE_NAME).is_file()


def test_paths_that_are_not_utf8_load_and_cache(
    tmp_path: Path, xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9"))  # Latin-1 "café"
    train, _ = write_batches(root / BATCHES_DIR)
    got, _, source = load(root)
    assert same(got, train) and (root / CACHE_NAME).is_file()
    monkeypatch.setattr(sources, "read_source", _refuse)
    again, _, source_again = load(root)
    assert same(again, train) and source_again == source
    assert fallback_cache_path(root).parent == xdg / "optuna-search"


# --------------------------------------------------------------------------- splits


def numbered(n: int) -> Split:
    """Images whose first two pixels spell their index, so splits can be traced."""
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    index = torch.arange(n)
    images[:, 0, 0, 0] = (index % 256).to(torch.uint8)
    images[:, 0, 0, 1] = (index // 256).to(torch.uint8)
    return Split(images, index % 10)


def ids(split: Split) -> list[int]:
    return (split.images[:, 0, 0, 0].long() + 256 * split.images[:, 0, 0, 1].long()).tolist()


def test_split_is_disjoint_complete_and_keeps_labels() -> None:
    s = make_splits(numbered(1000), numbered(200), val_size=100, seed=3)
    train, val = ids(s.train), ids(s.val)
    assert len(val) == 100 and len(train) == 900
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(1000))
    assert s.train.labels.tolist() == [i % 10 for i in train]
    assert ids(s.test) == list(range(200))  # no test_subset: the test set as it was
    assert s.num_classes == 10


def test_split_is_seeded() -> None:
    a = make_splits(numbered(1000), numbered(10), val_size=100, seed=0)
    b = make_splits(numbered(1000), numbered(10), val_size=100, seed=0)
    c = make_splits(numbered(1000), numbered(10), val_size=100, seed=1)
    assert ids(a.val) == ids(b.val) and ids(a.train) == ids(b.train)
    assert ids(a.val) != ids(c.val)


def test_empty_validation_split() -> None:
    s = make_splits(numbered(50), numbered(10), val_size=0)
    assert s.val.images.shape == (0, 3, 32, 32) and s.val.labels.shape == (0,)
    assert len(s.val) == 0 and sorted(ids(s.train)) == list(range(50))


def test_subsets_come_from_the_seeded_orders() -> None:
    full = make_splits(numbered(1000), numbered(200), val_size=100, seed=5)
    sub = make_splits(
        numbered(1000), numbered(200), val_size=100, train_subset=50, test_subset=20, seed=5
    )
    assert ids(sub.val) == ids(full.val)
    assert ids(sub.train) == ids(full.train)[:50]
    assert len(set(ids(sub.test))) == 20 and ids(sub.test) != list(range(20))


class _SplitSizes(TypedDict, total=False):
    """The integer options of ``make_splits`` that the error cases vary."""

    val_size: int
    train_subset: int
    test_subset: int
    num_classes: int


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_size": -1}, "val_size=-1 does not fit the 100 training images"),
        ({"val_size": 100}, "val_size=100 does not fit"),
        ({"train_subset": 0}, "train_subset=0 is out of range: 90 images are available"),
        ({"train_subset": 91}, "train_subset=91 is out of range: 90 images are available"),
        ({"test_subset": 0}, "test_subset=0 is out of range: 20 images are available"),
        ({"test_subset": 21}, "test_subset=21 is out of range: 20 images are available"),
        ({"num_classes": 5}, "labels run from 0 to 9 but num_classes=5"),
    ],
)
def test_split_errors(kwargs: _SplitSizes, message: str) -> None:
    options: _SplitSizes = {"val_size": 10, **kwargs}
    with pytest.raises(DataError, match=message):
        make_splits(numbered(100), numbered(20), **options)


def test_split_to_device_and_validation() -> None:
    split = numbered(4)
    moved = split.to("cpu")
    assert len(moved) == 4 and same(moved, split)
    with pytest.raises(DataError, match="images must be uint8"):
        Split(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(DataError, match="labels must be int64"):
        Split(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64))


# --------------------------------------------------------------------------- synthetic


def test_synthetic_is_deterministic_and_shaped() -> None:
    train, test = synthetic_cifar10(n_train=300, n_test=100, seed=4)
    again, _ = synthetic_cifar10(n_train=300, n_test=100, seed=4)
    other, _ = synthetic_cifar10(n_train=300, n_test=100, seed=5)
    assert train.images.shape == (300, 3, 32, 32) and test.images.shape == (100, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert same(train, again) and not torch.equal(train.images, other.images)
    assert torch.bincount(train.labels).tolist() == [30] * 10  # balanced
    assert not torch.equal(train.images[:100], test.images)


def test_synthetic_is_learnable_but_noisy() -> None:
    train, test = synthetic_cifar10(n_train=2000, n_test=500, num_classes=10)
    x, xt = train.images.float().flatten(1), test.images.float().flatten(1)
    centroids = torch.stack([x[train.labels == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(xt, centroids).argmin(1) == test.labels).float().mean().item()
    assert accuracy > 0.8  # the classes are there to be learnt...
    spread = (x - centroids[train.labels]).std().item()
    assert spread > 60  # ...under heavy noise, not as ten fixed pictures


def test_synthetic_rejects_bad_sizes() -> None:
    with pytest.raises(DataError, match="n_train=0 must be a positive integer"):
        synthetic_cifar10(n_train=0)


def test_load_data_synthetic_fixes_the_data_and_splits_by_seed() -> None:
    a = load_data(dataset="synthetic", val_size=100, synthetic_size=(500, 50), seed=0)
    b = load_data(dataset="synthetic", val_size=100, synthetic_size=(500, 50), seed=1)
    assert a.source == "synthetic (seed 0)" and a.num_classes == 10
    assert (len(a.train), len(a.val), len(a.test)) == (400, 100, 50)
    assert same(a.test, b.test)  # same images whatever the split seed
    assert not torch.equal(a.val.images, b.val.images)


def test_load_data_cifar10(tmp_path: Path, xdg: Path) -> None:
    write_batches(tmp_path / "cifar-10-batches-py")
    splits = load_data(data_dir=tmp_path, val_size=5, test_subset=4, download=False, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 5, 4)
    assert splits.source.startswith("cifar-10-batches-py ") and splits.num_classes == 10
    assert splits.train.images.device.type == "cpu"
