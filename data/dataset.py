"""The in-memory form every loader returns, and the validation split carved from it."""

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

# The validation images are the same for every training seed, so runs that differ
# only in --seed are compared on the same held-out images.
VALIDATION_SEED = 20240601
VALIDATION_FRACTION = 0.1  # train.py's default share of the training split held out


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 (N, H, W, C), labels as int32 (N,) in 0..num_classes-1.

    A number data set (data/numbers.py) has labels (N, MAX_DIGITS): the digits, then -1.
    It may also carry a `composer` (data/composer/) that draws `composed_per_epoch`
    more training numbers from training digits for every epoch, on the fly.

    Where the source knows who wrote each digit, `writers_train` and `writers_test`
    hold a writer id per image (N,) int32, -1 where unknown. A data set made of
    several sources lists its test split's parts in order as (name, images), so
    each can be measured alone (data/handwriting.py).

    Images stay uint8 in memory (a quarter of float32's size); the tf.data
    pipeline converts each batch to float32.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = 10
    composer: Any = None  # a data.composer.NumberComposer over training digits, or None
    composed_per_epoch: int = 0
    writers_train: np.ndarray | None = None
    writers_test: np.ndarray | None = None
    test_parts: tuple[tuple[str, int], ...] = ()  # (source name, images) in the order of x_test; () for one source
    # (N,) int: how many times each training image is shown per epoch, so that a small source weighs as much
    # as a large one (data/handwriting.py); None: each once.
    train_repeats: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def limited(self, limit: int | None) -> "Dataset":
        """The first `limit` training and test images (all of them for None)."""
        if limit is None:
            return self
        def first(values):
            return None if values is None else values[:limit]

        parts, left = [], limit
        for name, images in self.test_parts:
            if left > 0:
                parts.append((name, min(images, left)))
            left -= images
        return replace(self, x_train=self.x_train[:limit], y_train=self.y_train[:limit],
                       x_test=self.x_test[:limit], y_test=self.y_test[:limit],
                       writers_train=first(self.writers_train), writers_test=first(self.writers_test),
                       train_repeats=first(self.train_repeats),
                       test_parts=tuple(parts))


def validation_split(count: int, fraction: float, seed: int = VALIDATION_SEED) -> tuple[np.ndarray, np.ndarray]:
    """(train_index, val_index), each sorted: a seeded `fraction` of a training split's `count` images held out.

    At least one image is held out when fraction > 0.
    """
    held_out = int(round(count * fraction))
    if fraction > 0:
        held_out = min(max(held_out, 1), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def carve_validation(images, labels, fraction: float, seed: int = VALIDATION_SEED):
    """Split a training set into (train_x, train_y, val_x, val_y) by a seeded shuffle (validation_split).

    Validation always comes out of the training split, never the test split.
    """
    train_index, val_index = validation_split(len(images), fraction, seed)
    return images[train_index], labels[train_index], images[val_index], labels[val_index]
