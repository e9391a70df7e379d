"""mnist-numbers: whole handwritten numbers composed from MNIST's digits, fixed by their seeds and cached.

    from data.mnist_numbers import load_mnist_numbers
    numbers = load_mnist_numbers(data_dir)   # x_train (20000, 32, 128, 1) uint8, y_train (20000, 6) int32

mnist-numbers is handwritten numbers of 1..MAX_DIGITS digits on form paper
(data/composer/), composed from MNIST: its training numbers from MNIST's
training digits, its test numbers from MNIST's test digits only, each set
from its own fixed seed, so every load gives the same pixels. Its composer
draws fresh training numbers for every epoch, from the training digits.

Composing the fixed numbers takes a while (12.6 s on 2 Xeon cores, more on
slower ones), so it is done once and cached (data/composed_cache.py):
mnist-numbers-<key>.npz (x_train, y_train, x_test, y_test and the key; 124 MB,
read back in about a second) in the data folder, or in DIGITS_CACHE_DIR when
set. The key is a SHA-256 of everything that decides the pixels: INPUT_SHAPE,
TRAIN_COUNT, TEST_COUNT, the seeds, the style, CACHE_VERSION, the versions of
numpy, scipy and Pillow that draw them, and the SHA-256 of each MNIST file they
are composed from (mnist.npz, else the four IDX files, as data/mnist.py reads
them; about 10 ms). Only a file the project provably wrote whose key, shapes and
dtypes are right is read as the cache; else the numbers are composed again and
cached when that can be done (a warning says when it cannot).
"""

from pathlib import Path

import numpy as np

from data import composed_cache
from data.composed_cache import CACHE_DIR_ENV, cache_folder
from data.composer import NumberComposer
from data.dataset import Dataset
from data.files import file_digest
from data.mnist import IDX_MD5, NPZ_NAME, load_mnist
from data.numbers import MAX_DIGITS, PADDING

INPUT_SHAPE = (32, 128, 1)  # height, width, channels: room for MAX_DIGITS handwritten digits side by side
TRAIN_COUNT = 20_000  # fixed training numbers, as many as the composer adds per epoch
TEST_COUNT = 10_000
COMPOSED_PER_EPOCH = 20_000
TRAIN_SEED, TEST_SEED = 20250101, 20250102  # distinct, so no test number repeats a training layout
STYLE = "handwriting"
CACHE_VERSION = 1  # bump when data/composer/ changes what it draws (the key cannot see code changes)
NAME = "mnist-numbers"
__all__ = ["CACHE_DIR_ENV", "cache_folder", "cache_key", "cache_path", "load_mnist_numbers", "mnist_digests",
           "mnist_sources"]


def load_mnist_numbers(data_dir: Path) -> Dataset:
    """mnist-numbers: images uint8 (N, 32, 128, 1), labels int32 (N, MAX_DIGITS) padded with -1.

    The fixed numbers come from the cache when it is current, else they are composed and cached (see above).
    """
    data_dir = Path(data_dir)
    digits = load_mnist(data_dir)
    train_composer = NumberComposer(digits.x_train, digits.y_train, INPUT_SHAPE, STYLE)
    key = cache_key(data_dir)
    path = cache_path(data_dir, key)
    arrays = composed_cache.read_cache(path, key, _expected())
    if arrays is None:
        test_composer = NumberComposer(digits.x_test, digits.y_test, INPUT_SHAPE, STYLE)
        x_train, y_train, _ = train_composer.compose(TRAIN_COUNT, TRAIN_SEED)
        x_test, y_test, _ = test_composer.compose(TEST_COUNT, TEST_SEED)
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        composed_cache.try_write_cache(path, key, arrays, NAME)
    return Dataset(NAME, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   composer=train_composer, composed_per_epoch=COMPOSED_PER_EPOCH)


def _expected() -> composed_cache.Expected:
    """What the cache's arrays must be: shapes, dtypes and label ranges."""
    expected = {}
    for split, count in (("train", TRAIN_COUNT), ("test", TEST_COUNT)):
        expected[f"x_{split}"] = ((count, *INPUT_SHAPE), np.uint8, None)
        expected[f"y_{split}"] = ((count, MAX_DIGITS), np.int32, (PADDING, 9))
    return expected


def mnist_sources(data_dir: Path) -> list[str]:
    """The MNIST files load_mnist reads from data_dir: mnist.npz when present, else the four IDX files."""
    return [NPZ_NAME] if (data_dir / NPZ_NAME).exists() else sorted(IDX_MD5)


def mnist_digests(data_dir: Path) -> dict[str, str]:
    """SHA-256 of each MNIST file load_mnist reads from data_dir, by name (part of a cache key)."""
    return {name: file_digest(Path(data_dir) / name, "sha256") for name in mnist_sources(Path(data_dir))}


def cache_key(data_dir: Path) -> str:
    """SHA-256 (hex) of the settings and the MNIST files that decide the composed pixels."""
    return composed_cache.cache_key({
        "cache_version": CACHE_VERSION, "input_shape": list(INPUT_SHAPE), "style": STYLE,
        "train_count": TRAIN_COUNT, "test_count": TEST_COUNT, "train_seed": TRAIN_SEED, "test_seed": TEST_SEED,
        "mnist": mnist_digests(data_dir),
    })


def cache_path(data_dir: Path, key: str) -> Path:
    """Where the numbers composed under `key` are cached."""
    return composed_cache.cache_path(data_dir, NAME, key)
