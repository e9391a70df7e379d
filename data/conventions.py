"""The pixel convention of the handwriting models, and the one rule that brings scanned digits to it.

    from data.conventions import dark_ink_to_mnist
    bright = dark_ink_to_mnist(scans)        # (N, H, W) dark ink on light paper -> (N, 28, 28) as MNIST's

MNIST's convention: bright ink on black, 28x28, the digit's longer side 20
pixels, its centre of mass at the centre. Every greyscale digit data set of the
registry is delivered in it (data/cvl.py converts the CVL scans when it loads
them), and predict.py brings a photo to it (data/photos.py). A data set of
one's own, scanned dark on light, is converted by the same rule when evaluate.py
is told so (--dark-ink): the rule is declared for the whole data set, never
guessed per image.

The rule: the ink is the paper's level (the picture's median) minus the pixel,
stretched so the strongest stroke is 255; then the digit is framed as MNIST's
were and as predict.py frames a photo (data.photos.frame_like_mnist).
"""

from dataclasses import replace

import numpy as np

from data.dataset import Dataset
from data.photos import frame_like_mnist
from harness.errors import DataError

SIDE = 28  # pixels: MNIST's images are 28x28


def dark_ink_to_mnist(pictures: np.ndarray) -> np.ndarray:
    """Dark ink on light paper (N, H, W) uint8 -> bright ink on black (N, SIDE, SIDE) uint8, framed as MNIST's."""
    grey = pictures.astype(np.float32)
    ink = np.clip(np.median(grey, axis=(1, 2), keepdims=True) - grey, 0, None)  # grey levels above the paper
    ink /= np.maximum(ink.max(axis=(1, 2), keepdims=True), 1.0)  # the strongest stroke is 1
    return np.stack([frame_like_mnist(picture, (SIDE, SIDE)) for picture in ink])


def dark_ink_dataset(digits: Dataset) -> Dataset:
    """A greyscale digit data set scanned dark on light, both splits brought to MNIST's convention."""
    if digits.input_shape[-1] != 1 or digits.y_test.ndim != 1:
        raise DataError(f"{digits.name} holds {'colour pictures' if digits.input_shape[-1] != 1 else 'numbers'}; "
                        f"the dark-ink rule is for greyscale single digits.")
    return replace(digits, x_train=dark_ink_to_mnist(digits.x_train[..., 0])[..., np.newaxis],
                   x_test=dark_ink_to_mnist(digits.x_test[..., 0])[..., np.newaxis])
