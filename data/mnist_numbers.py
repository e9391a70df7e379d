"""Numbers composed from real digits: the mnist-numbers data set, and the street composer for svhn-numbers.

    from data.mnist_numbers import load_mnist_numbers
    numbers = load_mnist_numbers(data_dir)   # x_train (20000, 32, 128, 1) uint8, y_train (20000, 6) int32

mnist-numbers is handwritten numbers of 1..MAX_DIGITS digits on form paper
(data/composer.py), composed from MNIST: its training numbers from MNIST's
training digits, its test numbers from MNIST's test digits only, each set
from its own fixed seed, so every load gives the same pixels. Its composer
draws fresh training numbers for every epoch, from the training digits.
Composing takes a few seconds at each load; nothing is cached.
"""

import zipfile
import zlib
from pathlib import Path

import numpy as np

from data.composer import NumberComposer
from data.dataset import Dataset
from data.errors import DataError
from data.mnist import load_mnist

INPUT_SHAPE = (32, 128, 1)  # height, width, channels: room for MAX_DIGITS handwritten digits side by side
TRAIN_COUNT = 20_000  # fixed training numbers, as many as the composer adds per epoch
TEST_COUNT = 10_000
COMPOSED_PER_EPOCH = 20_000
TRAIN_SEED, TEST_SEED = 20250101, 20250102  # distinct, so no test number repeats a training layout

STREET_DIGITS = "svhn-test10k.npz"  # the SVHN stand-in (see the datasets README); its x_train are the crops used


def load_mnist_numbers(data_dir: Path) -> Dataset:
    """mnist-numbers: images uint8 (N, 32, 128, 1), labels int32 (N, MAX_DIGITS) padded with -1."""
    digits = load_mnist(Path(data_dir))
    train_composer = NumberComposer(digits.x_train, digits.y_train, INPUT_SHAPE, "handwriting")
    test_composer = NumberComposer(digits.x_test, digits.y_test, INPUT_SHAPE, "handwriting")
    x_train, y_train, _ = train_composer.compose(TRAIN_COUNT, TRAIN_SEED)
    x_test, y_test, _ = test_composer.compose(TEST_COUNT, TEST_SEED)
    return Dataset("mnist-numbers", x_train, y_train, x_test, y_test,
                   composer=train_composer, composed_per_epoch=COMPOSED_PER_EPOCH)


def street_composer(data_dir: Path, output_shape=(32, 96, 3)) -> NumberComposer:
    """A street-style NumberComposer over the SVHN stand-in's training crops (data_dir/svhn-test10k.npz)."""
    path = Path(data_dir) / STREET_DIGITS
    if not path.is_file():
        raise DataError(f"{path} is missing; put the SVHN stand-in {STREET_DIGITS} in the data folder "
                        f"(--data-dir) to compose street numbers.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            crops, labels = archive["x_train"], archive["y_train"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path} is not a readable SVHN stand-in ({error}); put back the original file.") from error
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (32, 32, 3) or labels.shape != crops.shape[:1] \
            or not len(labels) or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path} holds x_train {crops.dtype} {crops.shape} and y_train {labels.shape}, not uint8 "
                        f"32x32 colour crops with digits 0..9; put back the original file.")
    return NumberComposer(crops, labels, output_shape, "street")
