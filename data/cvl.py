"""The CVL Single Digit database (ICDAR 2013), split by writer, in MNIST's convention.

    from data.cvl import load_cvl_digits
    digits = load_cvl_digits(data_dir)   # x_test (7000, 28, 28, 1) uint8, bright ink on black, MNIST's framing

cvl-digits.npz (see the shared datasets README) holds digits of 127 writers whom
MNIST never saw, split by writer: x_train 67 writers, x_test 60 others, with
each image's writer id in writers_train and writers_test. As distributed the
ink is dark on light grey paper and the digit fills the picture's height.

Every image is brought to the convention of the MNIST-trained models by the one
rule for digits scanned dark on light (data/conventions.py: ink measured from
the paper's level, framed as MNIST's and as predict.py frames a photo), the
same for the whole data set: nothing is guessed per image.

The database offers no download (it is distributed on request for research);
the file must be in the data folder.
"""

from pathlib import Path

import numpy as np

from data.conventions import dark_ink_to_mnist
from data.dataset import Dataset
from data.npz import read_arrays
from harness.errors import DataError

FILE_NAME = "cvl-digits.npz"
KEYS = ("x_train", "y_train", "x_test", "y_test", "writers_train", "writers_test")


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path} is not there: the CVL digits are not downloadable (the database is given out on "
                        f"request, for research); put {FILE_NAME} in the data folder (--data-dir).")
    return read_arrays(path, KEYS)


def _checked(path: Path, arrays: dict, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split's pictures (N, H, W) uint8, labels (N,) int32 and writers (N,) int32, or a DataError."""
    pictures, labels, writers = arrays[f"x_{split}"], arrays[f"y_{split}"], arrays[f"writers_{split}"]
    if pictures.dtype != np.uint8 or pictures.ndim != 3 or not len(pictures):
        raise DataError(f"{path}: x_{split} is {pictures.dtype} {pictures.shape}, not N > 0 uint8 pictures (N, H, W); "
                        f"the file is damaged.")
    for key, values in ((f"y_{split}", labels), (f"writers_{split}", writers)):
        if values.shape != (len(pictures),) or not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"{path}: {key} is {values.dtype} {values.shape}, not one whole number per picture; "
                            f"the file is damaged.")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: y_{split} holds labels outside 0..9; the file is damaged.")
    return pictures, labels.astype(np.int32), writers.astype(np.int32)


def load_cvl_digits(data_dir: Path) -> Dataset:
    """cvl-digits: images (N, 28, 28, 1) uint8 in MNIST's convention, labels (N,) int32, writer ids (N,) int32."""
    path = Path(data_dir) / FILE_NAME
    arrays = _read(path)
    (x_train, y_train, writers_train), (x_test, y_test, writers_test) = (
        _checked(path, arrays, split) for split in ("train", "test"))
    shared = np.intersect1d(writers_train, writers_test)
    if len(shared):  # the test split measures other people's hands: a shared writer would flatter it
        raise DataError(f"{path}: writer {shared[0]} is in both splits; the file is damaged.")
    return Dataset("cvl-digits", dark_ink_to_mnist(x_train)[..., np.newaxis], y_train,
                   dark_ink_to_mnist(x_test)[..., np.newaxis], y_test,
                   writers_train=writers_train, writers_test=writers_test)
