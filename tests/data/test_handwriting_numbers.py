"""Tests of handwriting-numbers (data/handwriting_numbers.py) on small files in the official layouts; CPU, seconds.

    python3 -m pytest tests/data/test_handwriting_numbers.py -q

A tiny MNIST is written in the IDX layout (its md5s swapped in for the published
ones) and a tiny cvl-digits.npz in the shared file's layout (dark ink on light
paper, writer ids). The digits are marked so that labels tell where a digit came
from: MNIST's and CVL's training digits are 0..4, their test digits 5..9, and
each CVL writer writes one class only, so a number written by one CVL hand
repeats one digit. Counts are made small.
"""

import gzip
import hashlib
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

import data.handwriting_numbers as module
import data.mnist
from data import load_dataset
from data.composer import NumberComposer
from data.composed_cache import CACHE_DIR_ENV
from data.numbers import MAX_DIGITS, PADDING, lengths
from harness import atomic

TRAIN_WRITERS, TEST_WRITERS = (11, 12, 13, 14, 15), (21, 22, 23)  # disjoint, as in the real file
PER_WRITER = 6  # digits each CVL writer wrote


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + np.ascontiguousarray(array, np.uint8).tobytes()))


def bars(count: int, rng: np.random.Generator, ink: int, paper: int, side: int) -> np.ndarray:
    """(count, side, side) uint8: a bar of random size and place per digit, `ink` on `paper`."""
    images = np.full((count, side, side), paper, np.uint8)
    for image in images:
        top, left = rng.integers(2, side // 4, 2)
        image[top:top + rng.integers(side // 2, side * 2 // 3), left:left + rng.integers(4, side // 2)] = ink
    return images


def cvl_split(writers, first_class: int, rng):
    """A CVL split: PER_WRITER digits per writer, writer i writing only class first_class + i, dark on light."""
    ids = np.repeat(np.array(writers, np.int32), PER_WRITER)
    labels = first_class + np.repeat(np.arange(len(writers)), PER_WRITER)
    return bars(len(ids), rng, ink=40, paper=200, side=40), labels.astype(np.uint8), ids


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A data folder with the tiny MNIST and CVL files; the loader's counts are made small."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(3)
    mnist = {"train-images-idx3-ubyte.gz": bars(30, rng, 255, 0, 28), "train-labels-idx1-ubyte.gz": np.arange(30) % 5,
             "t10k-images-idx3-ubyte.gz": bars(20, rng, 255, 0, 28), "t10k-labels-idx1-ubyte.gz": 5 + np.arange(20) % 5}
    for name, array in mnist.items():
        write_idx(folder / name, array)
        monkeypatch.setitem(data.mnist.IDX_MD5, name, hashlib.md5((folder / name).read_bytes()).hexdigest())
    (x_train, y_train, w_train), (x_test, y_test, w_test) = cvl_split(TRAIN_WRITERS, 0, rng), cvl_split(
        TEST_WRITERS, 5, rng)
    np.savez(folder / "cvl-digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
             writers_train=w_train, writers_test=w_test)
    monkeypatch.setattr(module, "TRAIN_COUNT", 40)
    monkeypatch.setattr(module, "TEST_COUNTS", {"mnist": 12, "cvl-digits": 18})
    monkeypatch.delenv(CACHE_DIR_ENV, raising=False)
    return folder


def test_every_number_is_one_hand_and_the_training_share_of_cvl_writers_holds(folder):
    numbers = load_dataset("handwriting-numbers", folder)
    composer = numbers.composer
    # The composer's digits are MNIST's 30 training digits, then CVL's, whose writers the file gives.
    writers = np.concatenate([np.full(30, -1), np.repeat(TRAIN_WRITERS, PER_WRITER)])
    _, labels, _, sources = composer.compose_with_sources(600, seed=(4, 2))
    present = labels >= 0
    assert np.array_equal(sources >= 0, present)
    hands = np.where(present, writers[np.maximum(sources, 0)], -99)
    first = hands[:, :1]
    assert np.all((hands == first) | ~present)  # one writer (or MNIST alone) per number
    cvl = first[:, 0] >= 0
    assert abs(cvl.mean() - module.CVL_SHARE) < 0.07  # 600 draws: binomial spread about 0.02
    # A CVL writer wrote one class: the labels repeat it, and it is the writer's own class.
    assert np.all((labels[cvl] == labels[cvl][:, :1]) | ~present[cvl])
    assert np.array_equal(labels[cvl, 0], np.searchsorted(TRAIN_WRITERS, first[cvl, 0]))
    # The fixed training numbers name their writers the same way.
    fixed = numbers.writers_train
    assert set(np.unique(fixed)) <= {-1, *TRAIN_WRITERS} and fixed.dtype == np.int32
    by_cvl = fixed >= 0
    assert np.array_equal(numbers.y_train[by_cvl, 0], np.searchsorted(TRAIN_WRITERS, fixed[by_cvl]))


def test_test_numbers_use_only_test_digits_and_test_writers_in_their_parts(folder):
    numbers = load_dataset("handwriting-numbers", folder)
    assert numbers.test_parts == (("mnist", 12), ("cvl-digits", 18)) and len(numbers.y_test) == 30
    digits = numbers.y_test[numbers.y_test >= 0]
    assert digits.min() >= 5  # test digits are 5..9 here, training digits 0..4
    assert numbers.y_train[numbers.y_train >= 0].max() <= 4
    mnist_part, cvl_part = numbers.writers_test[:12], numbers.writers_test[12:]
    assert np.all(mnist_part == -1) and set(cvl_part) <= set(TEST_WRITERS)
    labels = numbers.y_test[12:]
    assert np.all((labels == labels[:, :1]) | (labels < 0))  # one test writer, one class, per number
    assert np.array_equal(labels[:, 0], 5 + np.searchsorted(TEST_WRITERS, cvl_part))


def test_shapes_and_labels(folder):
    numbers = load_dataset("handwriting-numbers", folder)
    assert numbers.name == "handwriting-numbers" and numbers.input_shape == module.INPUT_SHAPE
    assert numbers.composer.style == "amounts" and numbers.composed_per_epoch == module.COMPOSED_PER_EPOCH
    for images, labels in ((numbers.x_train, numbers.y_train), (numbers.x_test, numbers.y_test)):
        assert images.dtype == np.uint8 and labels.dtype == np.int32 and labels.shape == (len(images), MAX_DIGITS)
        count = lengths(labels)
        assert count.min() >= 1 and np.array_equal(labels >= 0, np.arange(MAX_DIGITS) < count[:, None])
        assert np.all(labels[labels < 0] == PADDING)


def test_the_cache_round_trip_and_a_changed_cvl_file_is_composed_again(folder, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = module.load_handwriting_numbers(folder)
    key = module.cache_key(folder)
    path = module.cache_path(folder, key)
    assert atomic.is_ours(path) and path.name.startswith("handwriting-numbers-")
    original = NumberComposer.compose_with_sources

    def refuse(self, count, seed):
        raise AssertionError("composed again despite a current cache")

    monkeypatch.setattr(NumberComposer, "compose_with_sources", refuse)
    second = module.load_handwriting_numbers(folder)
    for name in module.ARRAYS:
        assert np.array_equal(getattr(first, name), getattr(second, name)), name
        assert getattr(first, name).dtype == getattr(second, name).dtype
    # Other CVL pixels: another key, so composed again (and the old cache is left in place).
    with np.load(folder / "cvl-digits.npz") as stored:
        arrays = dict(stored)
    arrays["x_test"] = 255 - arrays["x_test"]
    np.savez(folder / "cvl-digits.npz", **arrays)
    assert module.cache_key(folder) != key
    with pytest.raises(AssertionError, match="composed again"):
        module.load_handwriting_numbers(folder)
    monkeypatch.setattr(NumberComposer, "compose_with_sources", original)
    module.load_handwriting_numbers(folder)
    assert len(list(folder.glob("handwriting-numbers-*.npz"))) == 2


def test_a_missing_cvl_file_is_a_data_error(folder):
    (folder / "cvl-digits.npz").unlink()
    with pytest.raises(data.DataError, match="cvl-digits.npz"):
        load_dataset("handwriting-numbers", folder)
