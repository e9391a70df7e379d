"""handwriting-numbers: handwritten amounts composed from MNIST's digits and the CVL writers', fixed and cached.

    from data.handwriting_numbers import load_handwriting_numbers
    numbers = load_handwriting_numbers(data_dir)   # x_train (20000, 32, 128, 1) uint8, y_train (20000, 6) int32

Numbers of 1..MAX_DIGITS digits as people write amounts on cheques and forms,
scanned (data/composer/'s "amounts" look: marks that are no digits, printed
boxes and lines, crops cut close), for a reader of anyone's hand:

- training numbers from MNIST's training digits and the 67 CVL training
  writers' (data/cvl.py brings them to MNIST's convention). All the digits of
  a CVL number come from one writer, so it looks written by one hand; a MNIST
  number's come from MNIST's digits alone (its files do not say who wrote
  which). CVL_SHARE of the numbers are CVL writers': far more than CVL's
  share of the digits (7,000 of 67,000), for the hands MNIST lacks, but not
  most, since each CVL digit then already recurs in about 6 numbers per epoch
  (about 100 digits per writer).
- test numbers from MNIST's test digits (the first TEST_COUNTS["mnist"]), then
  from the 60 CVL validation writers' only (people no training number comes
  from), listed in `test_parts` so each part is measured alone; writers_test
  holds each test number's writer (-1 for MNIST's).
- the composer draws COMPOSED_PER_EPOCH fresh training numbers every epoch,
  from the training digits, with the same share of CVL writers.

The fixed numbers are composed once and cached (data/composed_cache.py):
handwriting-numbers-<key>.npz in the data folder or in DIGITS_CACHE_DIR. The key
covers the settings below, CACHE_VERSION, the drawing libraries' versions and
the SHA-256 of the MNIST files and of cvl-digits.npz.
"""

from pathlib import Path

import numpy as np

from data import composed_cache
from data.composer import NumberComposer
from data.cvl import FILE_NAME as CVL_FILE
from data.cvl import load_cvl_digits
from data.dataset import Dataset
from data.handwriting import UNKNOWN_WRITER, after_unknown_writers
from data.files import file_digest
from data.mnist import load_mnist
from data.mnist_numbers import mnist_digests
from data.numbers import MAX_DIGITS, PADDING

NAME = "handwriting-numbers"
INPUT_SHAPE = (32, 128, 1)  # height, width, channels: as mnist-numbers, so one reader recipe serves both
STYLE = "amounts"
TRAIN_COUNT = 20_000  # fixed training numbers, as many as the composer adds per epoch
COMPOSED_PER_EPOCH = 20_000
CVL_SHARE = 0.35  # of the training numbers (fixed and composed): written by one CVL training writer each
TEST_COUNTS = {"mnist": 5_000, "cvl-digits": 5_000}  # test numbers per source, in this order in x_test
TRAIN_SEED = 20261207
TEST_SEEDS = {"mnist": 20261208, "cvl-digits": 20261209}  # distinct, so no test number repeats a training layout
CACHE_VERSION = 2  # bump when data/composer/ or the CVL framing changes what it draws (the key cannot see code)
ARRAYS = ("x_train", "y_train", "writers_train", "x_test", "y_test", "writers_test")


def load_handwriting_numbers(data_dir: Path) -> Dataset:
    """handwriting-numbers: images uint8 (N, 32, 128, 1), labels int32 (N, MAX_DIGITS) padded with -1, and
    each number's writer int32 (N,) (-1: MNIST's digits).

    The fixed numbers come from the cache when it is current, else they are composed and cached (see above).
    """
    data_dir = Path(data_dir)
    mnist, cvl = load_mnist(data_dir), load_cvl_digits(data_dir)
    train_composer = training_composer(mnist, cvl)
    key = cache_key(data_dir)
    path = cache_path(data_dir, key)
    arrays = composed_cache.read_cache(path, key, _expected())
    if arrays is None:
        arrays = _compose(train_composer, mnist, cvl)
        composed_cache.try_write_cache(path, key, arrays, NAME)
    return Dataset(NAME, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   composer=train_composer, composed_per_epoch=COMPOSED_PER_EPOCH,
                   writers_train=arrays["writers_train"], writers_test=arrays["writers_test"],
                   test_parts=tuple(TEST_COUNTS.items()))


def training_composer(mnist: Dataset, cvl: Dataset) -> NumberComposer:
    """The composer over MNIST's and CVL's training digits: each number from MNIST's or one CVL writer's digits,
    CVL writers' numbers CVL_SHARE of them."""
    digits = np.concatenate([mnist.x_train, cvl.x_train])
    labels = np.concatenate([mnist.y_train, cvl.y_train])
    groups = after_unknown_writers(len(mnist.y_train), cvl.writers_train)
    # A number takes the group of a first digit drawn with these weights: all of MNIST's weigh 1 - CVL_SHARE.
    weights = np.where(groups == UNKNOWN_WRITER, (1 - CVL_SHARE) / len(mnist.y_train), CVL_SHARE / len(cvl.y_train))
    return NumberComposer(digits, labels, INPUT_SHAPE, STYLE, groups=groups, weights=weights)


def _compose(train_composer: NumberComposer, mnist: Dataset, cvl: Dataset) -> dict[str, np.ndarray]:
    """The fixed numbers: training from train_composer, test from MNIST's then CVL's test digits."""
    x_train, y_train, writers_train = _numbers_and_writers(train_composer, TRAIN_COUNT, TRAIN_SEED,
                                                           after_unknown_writers(len(mnist.y_train),
                                                                                 cvl.writers_train))
    tests = []
    for source, count in TEST_COUNTS.items():
        if source == "mnist":
            composer = NumberComposer(mnist.x_test, mnist.y_test, INPUT_SHAPE, STYLE)
            writers = np.full(len(mnist.y_test), UNKNOWN_WRITER, np.int32)
        else:
            composer = NumberComposer(cvl.x_test, cvl.y_test, INPUT_SHAPE, STYLE, groups=cvl.writers_test)
            writers = cvl.writers_test
        tests.append(_numbers_and_writers(composer, count, TEST_SEEDS[source], writers))
    x_test, y_test, writers_test = (np.concatenate(parts) for parts in zip(*tests))
    return {"x_train": x_train, "y_train": y_train, "writers_train": writers_train,
            "x_test": x_test, "y_test": y_test, "writers_test": writers_test}


def _numbers_and_writers(composer: NumberComposer, count: int, seed: int, writers: np.ndarray):
    """`count` numbers from `composer` and `seed`: images, labels and each number's writer (that of its first
    digit; the composer draws a number's digits from one writer)."""
    images, labels, _, sources = composer.compose_with_sources(count, seed)
    return images, labels, writers[sources[:, 0]].astype(np.int32)


def _expected() -> composed_cache.Expected:
    """What the cache's arrays must be: shapes, dtypes and value ranges."""
    expected = {}
    for split, count in (("train", TRAIN_COUNT), ("test", sum(TEST_COUNTS.values()))):
        expected[f"x_{split}"] = ((count, *INPUT_SHAPE), np.uint8, None)
        expected[f"y_{split}"] = ((count, MAX_DIGITS), np.int32, (PADDING, 9))
        expected[f"writers_{split}"] = ((count,), np.int32, None)
    return expected


def cache_key(data_dir: Path) -> str:
    """SHA-256 (hex) of the settings and the source files that decide the composed pixels."""
    data_dir = Path(data_dir)
    return composed_cache.cache_key({
        "name": NAME, "cache_version": CACHE_VERSION, "input_shape": list(INPUT_SHAPE), "style": STYLE,
        "train_count": TRAIN_COUNT, "cvl_share": CVL_SHARE, "test_counts": TEST_COUNTS,
        "train_seed": TRAIN_SEED, "test_seeds": TEST_SEEDS,
        "mnist": mnist_digests(data_dir), "cvl": file_digest(data_dir / CVL_FILE, "sha256"),
    })


def cache_path(data_dir: Path, key: str) -> Path:
    """Where the numbers composed under `key` are cached."""
    return composed_cache.cache_path(data_dir, NAME, key)
