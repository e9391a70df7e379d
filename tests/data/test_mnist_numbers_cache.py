"""The mnist-numbers cache (data/mnist_numbers.py): composed once, read back bit for bit, never trusted blindly.

    python3 -m pytest tests/test_mnist_numbers_cache.py -q

A tiny MNIST is written here in the official IDX layout (gzipped, with the four
official names) and its md5s are swapped in for the published ones; the counts
of composed numbers are made small, so every test takes a fraction of a second.
The expected arrays are composed here with NumberComposer directly, the way
load_mnist_numbers composed them before it cached anything.
"""

import gzip
import hashlib
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

import data.mnist
import data.mnist_numbers
from data.composer import NumberComposer
from data.mnist_numbers import CACHE_DIR_ENV, INPUT_SHAPE, load_mnist_numbers
from harness import atomic

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes, gzipped (as tests/test_data.py writes them; tests/ is not a package)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, np.uint8).tobytes()))


def strokes(labels, rng: np.random.Generator) -> np.ndarray:
    """MNIST-like (N, 28, 28) uint8: a bright bar of random size and place per digit, on black."""
    images = np.zeros((len(labels), 28, 28), np.uint8)
    for image in images:
        top, left = rng.integers(2, 8, 2)
        image[top:top + rng.integers(14, 20), left:left + rng.integers(4, 14)] = rng.integers(120, 256)
    return images


def set_source(folder: Path, name: str, array: np.ndarray, monkeypatch) -> None:
    write_idx(folder / name, array)
    monkeypatch.setitem(data.mnist.IDX_MD5, name, hashlib.md5((folder / name).read_bytes()).hexdigest())


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    """A data folder holding a tiny MNIST (30 training, 20 test digits); 40 + 30 numbers are composed from it."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(5)
    train_labels, test_labels = np.arange(30) % 10, np.arange(20) % 10
    for name, array in {"train-images-idx3-ubyte.gz": strokes(train_labels, rng),
                        "train-labels-idx1-ubyte.gz": train_labels,
                        "t10k-images-idx3-ubyte.gz": strokes(test_labels, rng),
                        "t10k-labels-idx1-ubyte.gz": test_labels}.items():
        set_source(folder, name, array, monkeypatch)
    monkeypatch.setattr(data.mnist_numbers, "TRAIN_COUNT", 40)
    monkeypatch.setattr(data.mnist_numbers, "TEST_COUNT", 30)
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)  # never the shared data folder, never a real cache
    return folder


def composed_directly(folder: Path) -> dict[str, np.ndarray]:
    """What load_mnist_numbers returned before the cache: the fixed numbers composed from their seeds."""
    digits = data.mnist.load_mnist(folder)
    module = data.mnist_numbers
    x_train, y_train, _ = NumberComposer(digits.x_train, digits.y_train, INPUT_SHAPE, "handwriting").compose(
        module.TRAIN_COUNT, module.TRAIN_SEED)
    x_test, y_test, _ = NumberComposer(digits.x_test, digits.y_test, INPUT_SHAPE, "handwriting").compose(
        module.TEST_COUNT, module.TEST_SEED)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def assert_same(numbers, expected: dict[str, np.ndarray]) -> None:
    for name in ARRAYS:
        array = getattr(numbers, name)
        assert array.dtype == expected[name].dtype and array.shape == expected[name].shape, name
        assert np.array_equal(array, expected[name]), name
    assert numbers.x_train.dtype == np.uint8 and numbers.y_train.dtype == np.int32


@pytest.fixture
def compose_calls(monkeypatch):
    """A list that gets one entry per NumberComposer.compose call (the composer still runs)."""
    calls = []
    original = NumberComposer.compose

    def counted(self, count, seed):
        calls.append((count, seed))
        return original(self, count, seed)

    monkeypatch.setattr(NumberComposer, "compose", counted)
    return calls


def refuse_to_compose(monkeypatch) -> None:
    def refuse(self, count, seed):
        raise AssertionError("composed again despite a current cache")

    monkeypatch.setattr(NumberComposer, "compose", refuse)


def caches(folder: Path) -> list[Path]:
    return sorted(folder.glob("mnist-numbers-*.npz"))


def tree(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ---------------------------------------------------------------- 1. composed once, then read


def test_second_load_reads_the_cache_and_gives_the_same_arrays(mnist_dir, monkeypatch):
    expected = composed_directly(mnist_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = load_mnist_numbers(mnist_dir)
    assert_same(first, expected)
    [cache] = caches(mnist_dir)
    assert atomic.is_ours(cache) and cache.name.startswith("mnist-numbers-")
    assert not [name for name in atomic.foreign_entries(mnist_dir) if name.startswith(".")]  # no temporary left
    with np.load(cache, allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted([*ARRAYS, "key"])
        assert str(stored["key"]) == data.mnist_numbers.cache_key(mnist_dir)

    refuse_to_compose(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = load_mnist_numbers(mnist_dir)
    assert_same(second, expected)
    # The rest of the Dataset is as before: its composer draws fresh training numbers per epoch.
    assert second.name == "mnist-numbers" and second.input_shape == INPUT_SHAPE and second.y_train.ndim == 2
    assert second.composer.style == "handwriting" and second.composer.output_shape == INPUT_SHAPE
    assert second.composed_per_epoch == data.mnist_numbers.COMPOSED_PER_EPOCH
    assert caches(mnist_dir) == [cache]


# ---------------------------------------------------------------- 2. a changed setting is another cache


@pytest.mark.parametrize("change", ["TEST_SEED", "TRAIN_SEED", "CACHE_VERSION", "TEST_COUNT", "mnist file"])
def test_a_changed_setting_is_composed_again_under_a_new_key(mnist_dir, monkeypatch, compose_calls, change):
    load_mnist_numbers(mnist_dir)
    [old] = caches(mnist_dir)
    old_key = data.mnist_numbers.cache_key(mnist_dir)
    assert len(compose_calls) == 2
    if change == "mnist file":  # other digits, same counts and seeds
        labels = (np.arange(20) + 3) % 10
        set_source(mnist_dir, "t10k-labels-idx1-ubyte.gz", labels, monkeypatch)
    else:
        monkeypatch.setattr(data.mnist_numbers, change, getattr(data.mnist_numbers, change) + 1)
    expected = composed_directly(mnist_dir)
    compose_calls.clear()
    assert_same(load_mnist_numbers(mnist_dir), expected)
    assert len(compose_calls) == 2
    new_key = data.mnist_numbers.cache_key(mnist_dir)
    assert new_key != old_key
    assert len(caches(mnist_dir)) == 2 and old in caches(mnist_dir)  # the old one stays, for the old settings
    new = data.mnist_numbers.cache_path(mnist_dir, new_key)
    assert atomic.is_ours(new)
    with np.load(new) as stored:
        assert str(stored["key"]) == new_key
    compose_calls.clear()
    assert_same(load_mnist_numbers(mnist_dir), expected)
    assert not compose_calls


# ---------------------------------------------------------------- 3. damaged or stale caches are never trusted


def test_a_truncated_cache_is_not_read_and_the_numbers_are_composed(mnist_dir, compose_calls):
    expected = composed_directly(mnist_dir)
    load_mnist_numbers(mnist_dir)
    [cache] = caches(mnist_dir)
    cut = cache.read_bytes()[:cache.stat().st_size // 2]
    cache.write_bytes(cut)
    compose_calls.clear()
    # Cut short after the project wrote it, it no longer matches the record: it is composed again, and the file,
    # no longer provably ours, is left as it is (harness/atomic.py never replaces such a file), with a warning.
    with pytest.warns(UserWarning, match="not written by this project"):
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert len(compose_calls) == 2
    assert cache.read_bytes() == cut


def save_ours(path: Path, **arrays) -> None:
    with atomic.replacing(path) as temporary, open(temporary, "wb") as stream:
        np.savez(stream, **arrays)


@pytest.mark.parametrize("damage", ["wrong key", "no key", "wrong shape", "wrong dtype", "labels out of range",
                                    "not an npz", "cut short"])
def test_a_stale_or_damaged_cache_of_ours_is_rebuilt(mnist_dir, compose_calls, damage):
    expected = composed_directly(mnist_dir)
    compose_calls.clear()
    key = data.mnist_numbers.cache_key(mnist_dir)
    path = data.mnist_numbers.cache_path(mnist_dir, key)
    arrays = {**expected, "key": np.str_(key)}
    if damage == "wrong key":
        arrays["key"] = np.str_("0" * 64)
    elif damage == "no key":
        del arrays["key"]
    elif damage == "wrong shape":
        arrays["x_train"] = arrays["x_train"][:-1]
    elif damage == "wrong dtype":
        arrays["y_test"] = arrays["y_test"].astype(np.int64)
    elif damage == "labels out of range":
        arrays["y_train"] = np.where(arrays["y_train"] == 3, 10, arrays["y_train"]).astype(np.int32)
    if damage == "not an npz":
        atomic.write_bytes(path, b"PK\x03\x04 not really a zip")
    elif damage == "cut short":  # written whole by the project, but an archive cut short (as a recorded file)
        save_ours(path, **arrays)
        atomic.write_bytes(path, path.read_bytes()[:-1000])
    else:
        save_ours(path, **arrays)
    assert atomic.is_ours(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours, so replaced without a word
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert len(compose_calls) == 2
    assert atomic.is_ours(path) and caches(mnist_dir) == [path]
    with np.load(path) as stored:
        assert str(stored["key"]) == key
    compose_calls.clear()
    assert_same(load_mnist_numbers(mnist_dir), expected)
    assert not compose_calls


# ---------------------------------------------------------------- 4. a user's file is never read nor replaced


@pytest.mark.parametrize("content", ["notes", "convincing npz"])
def test_a_users_file_with_the_caches_name_is_left_alone(mnist_dir, compose_calls, content):
    expected = composed_directly(mnist_dir)
    compose_calls.clear()
    key = data.mnist_numbers.cache_key(mnist_dir)
    path = data.mnist_numbers.cache_path(mnist_dir, key)
    if content == "notes":
        path.write_bytes(b"my own notes")
    else:  # the right key and shapes, but not written by the project: never taken as data
        np.savez(path, key=np.str_(key), **{name: np.zeros_like(array) for name, array in expected.items()})
    before = path.read_bytes()
    with pytest.warns(UserWarning, match="not written by this project") as caught:
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert str(path) in str(caught[0].message)
    assert len(compose_calls) == 2
    assert path.read_bytes() == before
    assert caches(mnist_dir) == [path]


# ---------------------------------------------------------------- 5. a folder that cannot be written


def test_a_read_only_folder_warns_and_still_loads(mnist_dir, monkeypatch):
    expected = composed_directly(mnist_dir)
    before = tree(mnist_dir)

    def read_only(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "replacing", read_only)
    with pytest.warns(UserWarning, match="could not cache mnist-numbers") as caught:
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert "Permission denied" in str(caught[0].message) and CACHE_DIR_ENV in str(caught[0].message)
    assert tree(mnist_dir) == before


def test_a_cache_folder_that_cannot_be_made_warns_and_still_loads(mnist_dir, tmp_path, monkeypatch):
    expected = composed_directly(mnist_dir)
    before = tree(mnist_dir)
    (tmp_path / "a file").write_bytes(b"not a folder")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "a file" / "cache"))
    with pytest.warns(UserWarning, match="could not cache mnist-numbers"):
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert tree(mnist_dir) == before and (tmp_path / "a file").read_bytes() == b"not a folder"


def test_a_full_disk_warns_and_leaves_nothing_behind(mnist_dir, monkeypatch):
    expected = composed_directly(mnist_dir)
    before = tree(mnist_dir)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", no_space)
    with pytest.warns(UserWarning, match="could not cache mnist-numbers"):
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert tree(mnist_dir) == before  # the temporary is removed, nothing recorded


# ---------------------------------------------------------------- 6. DIGITS_CACHE_DIR


def test_the_cache_goes_to_DIGITS_CACHE_DIR_when_set(mnist_dir, tmp_path, monkeypatch):
    expected = composed_directly(mnist_dir)
    before = tree(mnist_dir)
    elsewhere = tmp_path / "caches" / "digits"  # made when missing
    monkeypatch.setenv(CACHE_DIR_ENV, str(elsewhere))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(load_mnist_numbers(mnist_dir), expected)
    assert tree(mnist_dir) == before  # nothing written in the data folder, not even a record
    [cache] = caches(elsewhere)
    assert atomic.is_ours(cache)
    refuse_to_compose(monkeypatch)
    assert_same(load_mnist_numbers(mnist_dir), expected)
    # Without the variable the data folder is the cache folder again, so there is nothing to read there.
    monkeypatch.delenv(CACHE_DIR_ENV)
    with pytest.raises(AssertionError, match="composed again"):
        load_mnist_numbers(mnist_dir)
