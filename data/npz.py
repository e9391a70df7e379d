"""Bring your own digits: any .npz in the layout of Keras's mnist.npz as a data set.

    python train.py --dataset my_digits.npz

The file holds x_train, y_train, x_test, y_test; images uint8 (N, H, W) or
(N, H, W, C) with C 1 or 3, labels whole numbers 0..K-1. The input shape and the
class count K come from the file. It is read with allow_pickle=False, so a file
cannot run code on load.
"""

import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from data.dataset import Dataset
from harness.errors import DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_LABEL = np.iinfo(np.int32).max  # labels are stored as int32
SHOWN_RUNS = 3  # ranges of missing classes spelt out in a message


def is_npz_path(name: str) -> bool:
    return name.lower().endswith(".npz")


def read_arrays(path: Path, keys: tuple[str, ...] = KEYS) -> dict[str, np.ndarray]:
    """The arrays `keys` of the .npz at `path`, read without pickles; a DataError saying what is wrong otherwise."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path given to --dataset.")
    with open(path, "rb") as stream:
        magic = stream.read(6)
    # np.load treats anything that is neither a zip nor an .npy as a pickle; say what it really is.
    if magic.startswith(b"\x93NUMPY"):
        raise DataError(f"{path} holds a single array, not an .npz archive with {', '.join(keys)}.")
    if not magic.startswith(b"PK"):
        raise DataError(f"{path} is not a readable .npz file (it is not a zip archive); save it with numpy.savez.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}; it needs the keys {', '.join(keys)}.")
            return {key: archive[key] for key in keys}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DataError(f"{path} contains pickled Python objects, which are not loaded for safety; "
                            f"save plain numeric arrays with numpy.savez.") from error
        raise DataError(f"{path} is not a readable .npz file ({error}).") from error
    # zlib: a damaged numpy.savez_compressed file; NotImplementedError: a compression zipfile lacks (or a damaged
    # header naming one); TokenError: a damaged array header, which numpy tokenizes as Python.
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, tokenize.TokenError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error}).") from error


def _images(path: Path, key: str, images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8, or a DataError saying what is wrong with `key`."""
    if images.dtype != np.uint8:
        raise DataError(f"{path}: {key} has dtype {images.dtype}; images must be uint8 pixels 0..255.")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"{path}: {key} has shape {images.shape}; images must be (N, H, W) or (N, H, W, C) "
                        f"with C 1 or 3.")
    if len(images) == 0:
        raise DataError(f"{path}: {key} is empty; both splits need at least one image.")
    return images


def _labels(path: Path, key: str, labels: np.ndarray, count: int) -> np.ndarray:
    """(N,) int32 labels, or a DataError saying what is wrong with `key`."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {key} has shape {labels.shape} and dtype {labels.dtype}; "
                        f"labels must be a 1-D array of whole numbers.")
    if len(labels) != count:
        raise DataError(f"{path}: {key} has {len(labels)} labels for {count} images; the lengths must match.")
    if labels.min() < 0:
        raise DataError(f"{path}: {key} has label {labels.min()}; labels must be 0..K-1.")
    if labels.max() > MAX_LABEL:
        raise DataError(f"{path}: {key} has label {labels.max()}; labels must be 0..K-1, classes counted from 0 "
                        f"(map them, e.g. with numpy.unique(y, return_inverse=True)).")
    return labels.astype(np.int32)


def _absent_classes(present: np.ndarray) -> list[tuple[int, int]]:
    """The runs (first, last) of classes 0..present.max() missing from `present` (sorted unique labels)."""
    starts = np.concatenate([[-1], present[:-1]]) + 1  # the class after each present one (and 0)
    return [(int(start), int(end) - 1) for start, end in zip(starts, present, strict=True) if start < end]


def describe_classes(runs: list[tuple[int, int]], shown: int = SHOWN_RUNS) -> str:
    """"3", "3, 5..7 (4 classes)", "3..98 (96 classes)", "1, 3, 5 and 3 more (6 classes)": runs of classes."""
    total = sum(last - first + 1 for first, last in runs)
    text = ", ".join(str(first) if first == last else f"{first}..{last}" for first, last in runs[:shown])
    if len(runs) > shown:
        text += f" and {len(runs) - shown} more"
    return text + (f" ({total} classes)" if total > 1 else "")


def load_npz(path: Path) -> Dataset:
    """The data set in a Keras-style .npz file, checked; name is the file's stem."""
    path = Path(path)
    arrays = read_arrays(path)
    x_train = _images(path, "x_train", arrays["x_train"])
    x_test = _images(path, "x_test", arrays["x_test"])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{path}: x_train images are {x_train.shape[1:]} but x_test images are "
                        f"{x_test.shape[1:]}; both splits need one shape.")
    y_train = _labels(path, "y_train", arrays["y_train"], len(x_train))
    y_test = _labels(path, "y_test", arrays["y_test"], len(x_test))
    num_classes = int(y_train.max()) + 1
    if num_classes < 2:
        raise DataError(f"{path}: y_train has a single class; a classifier needs at least two.")
    # A gap is almost always a labelling mistake (a sentinel such as 99 or 255 for "unknown"): the model
    # would get an output for every missing class and never be trained on it.
    absent = _absent_classes(np.unique(y_train))
    if absent:
        raise DataError(f"{path}: y_train's labels go up to {num_classes - 1} but never use "
                        f"{describe_classes(absent)}, so the model would have outputs it is never trained on; "
                        f"map the labels to 0..K-1 (e.g. numpy.unique(y, return_inverse=True) over y_train and "
                        f"y_test together), or drop the images labelled {num_classes - 1} if it stands for "
                        f"'unknown'.")
    if y_test.max() >= num_classes:
        raise DataError(f"{path}: y_test has label {y_test.max()}, which never occurs in y_train "
                        f"(0..{num_classes - 1}); the model could not learn it.")
    return Dataset(path.stem, x_train, y_train, x_test, y_test, num_classes)
