"""SVHN cropped digits ("format 2"): 32x32 colour crops of house numbers from Street View.

Reads the official MATLAB files train_32x32.mat, test_32x32.mat and, on request,
extra_32x32.mat from the data directory, downloading any that are missing from
the official Stanford address. In those files `X` is (32, 32, 3, N) uint8 and `y`
is (N, 1) with labels 1..10, where 10 stands for the digit 0.
"""

from pathlib import Path

import numpy as np
import scipy.io

from data.dataset import Dataset
from harness.errors import DataError
from data.files import verified_copy

BASE_URL = "http://ufldl.stanford.edu/housenumbers/"
MD5 = {
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7",
}
IMAGE_SHAPE = (32, 32, 3)
CHUNK = 8192  # images moved per step when reordering axes, so no float or full-size temporaries


def _path(name: str, data_dir: Path, checksums: dict[str, str]) -> Path:
    """The verified local copy of one official file, downloaded if it is missing."""
    return verified_copy(name, BASE_URL + name, checksums[name], "md5", data_dir, f"SVHN's {name}")


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`X` (32, 32, 3, N) uint8 and `y` (N,) labels 1..10, checked, from one .mat file."""
    try:
        content = scipy.io.loadmat(path, variable_names=["X", "y"])
        images, labels = content["X"], content["y"]
    except Exception as error:  # scipy raises several types for damaged files
        raise DataError(f"{path} is not a readable SVHN .mat file ({error}); download it again.") from error
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != IMAGE_SHAPE:
        raise DataError(
            f"{path} holds X of shape {images.shape} and type {images.dtype}; "
            f"SVHN's is (32, 32, 3, N) uint8."
        )
    labels = labels.reshape(-1)
    if len(labels) != images.shape[3]:
        raise DataError(f"{path} has {images.shape[3]} images but {len(labels)} labels.")
    if len(labels) and (labels.min() < 1 or labels.max() > 10):
        raise DataError(f"{path} has labels outside 1..10; the file is damaged.")
    return images, labels


def _gather(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and digits (N,) int32 from one or more .mat files.

    The output is allocated once (sizes read from the file headers) and filled
    file by file, chunk by chunk, so the peak memory is the output plus one file
    as loaded: about 3.5 GB for train + extra (604,388 images), never a float copy.
    """
    total = sum(_mat_count(path) for path in paths)
    images = np.empty((total, *IMAGE_SHAPE), np.uint8)
    labels = np.empty(total, np.int32)
    start = 0
    for path in paths:
        source, digits = _read_mat(path)
        if start + len(digits) > total:
            raise DataError(f"{path} holds more images than its header says; download it again.")
        for begin in range(0, len(digits), CHUNK):
            end = min(begin + CHUNK, len(digits))
            # (32, 32, 3, n) -> (n, 32, 32, 3): rows, columns and channels keep their order.
            images[start + begin:start + end] = np.moveaxis(source[..., begin:end], -1, 0)
        labels[start:start + len(digits)] = digits % 10  # SVHN's 10 is the digit 0
        start += len(digits)
        del source  # free this file before the next one is loaded
    return images, labels


def _mat_count(path: Path) -> int:
    """The number of images in a .mat file, read from its header without loading it."""
    try:
        for name, shape, _ in scipy.io.whosmat(path):
            if name == "X" and len(shape) == 4:
                return shape[3]
    except Exception as error:
        raise DataError(f"{path} is not a readable SVHN .mat file ({error}); download it again.") from error
    raise DataError(f"{path} has no image array X of shape (32, 32, 3, N); check that it is SVHN format 2.")


def load_svhn(data_dir: Path, include_extra: bool = False, checksums: dict[str, str] = MD5) -> Dataset:
    """SVHN with images (N, 32, 32, 3) uint8 and labels (N,) int32 digits 0..9.

    include_extra adds the 531,131 easier `extra` images to the training split.
    `checksums` are the published md5s; tests replace them to load small files
    they write in the official layout.
    """
    data_dir = Path(data_dir)
    train_files = ["train_32x32.mat"] + (["extra_32x32.mat"] if include_extra else [])
    train_paths = [_path(name, data_dir, checksums) for name in train_files]
    test_path = _path("test_32x32.mat", data_dir, checksums)
    x_train, y_train = _gather(train_paths)
    x_test, y_test = _gather([test_path])
    for split, labels in (("training", y_train), ("test", y_test)):
        if not len(labels):
            raise DataError(f"SVHN's {split} files in {data_dir} hold no images; they are damaged.")
    return Dataset("svhn-extra" if include_extra else "svhn", x_train, y_train, x_test, y_test)
