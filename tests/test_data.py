"""Data loading: every source, the cache and its fallback, splits, synthetic data, errors.

Fixtures are tiny data sets built in tmp_path; the real CIFAR-10 is never needed.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import threading
import time
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
