"""handwriting: MNIST's digits and the CVL writers' together, in one convention, for a model that reads anyone's hand.

    from data.handwriting import load_handwriting
    digits = load_handwriting(data_dir)   # x_train: MNIST's 60,000 then CVL's 7,000 training digits

Both sources come in MNIST's convention (data/cvl.py brings CVL's to it). The
training split is MNIST's training digits and the 67 CVL training writers'; the
test split is MNIST's test digits, then the 60 CVL validation writers' (other
people than any in training), listed in `test_parts` so evaluate.py measures
each alone.

Balanced sampling: CVL has a ninth of MNIST's digits, so every epoch shows each
CVL digit CVL_REPEATS times (Dataset.train_repeats), each time differently
augmented; without it the European hands (flagged ones, barred sevens, crossed
zeros) are too rare to learn (docs/history.md has the figures).
"""

from pathlib import Path

import numpy as np

from data.cvl import load_cvl_digits
from data.dataset import Dataset
from data.mnist import load_mnist

UNKNOWN_WRITER = -1  # MNIST's files do not say who wrote each digit
CVL_REPEATS = 4  # times each CVL training digit is shown per epoch, MNIST's once


def after_unknown_writers(unknown: int, known: np.ndarray) -> np.ndarray:
    """Writer ids (unknown + len(known),) int32 for MNIST's `unknown` digits followed by CVL's of writers `known`."""
    return np.concatenate([np.full(unknown, UNKNOWN_WRITER, np.int32), known]).astype(np.int32)


def load_handwriting(data_dir: Path) -> Dataset:
    """handwriting: images (N, 28, 28, 1) uint8, labels (N,) int32; writer ids -1 for MNIST's digits."""
    mnist, cvl = load_mnist(data_dir), load_cvl_digits(data_dir)
    return Dataset(
        "handwriting",
        np.concatenate([mnist.x_train, cvl.x_train]), np.concatenate([mnist.y_train, cvl.y_train]),
        np.concatenate([mnist.x_test, cvl.x_test]), np.concatenate([mnist.y_test, cvl.y_test]),
        writers_train=after_unknown_writers(len(mnist.y_train), cvl.writers_train),
        writers_test=after_unknown_writers(len(mnist.y_test), cvl.writers_test),
        test_parts=((mnist.name, len(mnist.y_test)), (cvl.name, len(cvl.y_test))),
        train_repeats=np.concatenate([np.ones(len(mnist.y_train), np.int32),
                                      np.full(len(cvl.y_train), CVL_REPEATS, np.int32)]),
    )
