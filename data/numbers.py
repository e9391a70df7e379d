"""Whole numbers as data: how a number's digits are stored, and how a picture of one is fitted to a reader's input.

A number data set is a `Dataset` whose labels are (N, MAX_DIGITS) int32: the
digits left to right, then PADDING. "063" is [0, 6, 3, -1, -1, -1]; a leading
zero is a digit like any other.
"""

import numpy as np
from PIL import Image

MAX_DIGITS = 6  # the longest number a reader reads
PADDING = -1  # label entries after the last digit


def encode(numbers: list[str], max_digits: int = MAX_DIGITS) -> np.ndarray:
    """Digit strings -> labels (N, max_digits) int32, PADDING after the last digit.

    Raises ValueError for an empty string, a non-digit or a number longer than max_digits.
    """
    labels = np.full((len(numbers), max_digits), PADDING, np.int32)
    for row, number in enumerate(numbers):
        if not (0 < len(number) <= max_digits) or not (number.isascii() and number.isdigit()):
            raise ValueError(f"{number!r} is not a number of 1 to {max_digits} digits")
        labels[row, :len(number)] = [int(digit) for digit in number]
    return labels


def decode(labels: np.ndarray) -> list[str]:
    """Labels (N, L) with PADDING (or any negative value) after the digits -> digit strings."""
    return ["".join(str(digit) for digit in row if digit >= 0) for row in np.asarray(labels)]


def lengths(labels: np.ndarray) -> np.ndarray:
    """Digits in each number of labels (N, L): (N,) int32."""
    return (np.asarray(labels) >= 0).sum(axis=-1).astype(np.int32)


def whole_numbers_right(truth, read) -> np.ndarray:
    """(N,) bool: every digit and the length right. truth, read: (N, L) int, digits then PADDING (any negative)."""
    truth, read = np.asarray(truth), np.asarray(read)
    return np.all(np.where(truth >= 0, truth, PADDING) == np.where(read >= 0, read, PADDING), axis=1)


def placement(rows: int, columns: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Where fit_to_input puts a (rows, columns) picture in a (height, width) input: (new_width, new_height, top,
    left), the scaled size and the padding above and to the left of it."""
    scale = min(height / rows, width / columns)
    new_width, new_height = max(1, min(width, round(columns * scale))), max(1, min(height, round(rows * scale)))
    return new_width, new_height, (height - new_height) // 2, (width - new_width) // 2


def fit_to_input(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A picture of a number (h, w, C) uint8 -> (height, width, C) uint8, aspect kept, centred.

    Scaled (antialiased) so that it is `height` tall, or `width` wide if it is
    wider than the input's proportions; the rest of the width (or height) is
    filled by repeating the edge pixels, as a street or paper continues beyond
    the crop (a black band would be a feature the reader could learn to rely on).
    """
    image = np.asarray(image)
    rows, columns, channels = image.shape
    new_width, new_height, top, left = placement(rows, columns, height, width)
    mode = "L" if channels == 1 else "RGB"
    resized = Image.fromarray(image[..., 0] if channels == 1 else image, mode).resize((new_width, new_height),
                                                                                     Image.LANCZOS)
    pixels = np.asarray(resized, np.uint8).reshape(new_height, new_width, channels)
    padding = ((top, height - new_height - top), (left, width - new_width - left), (0, 0))
    return np.pad(pixels, padding, mode="edge")


def prepare_number(image, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A PIL photo roughly cropped around a number -> uint8 (H, W, C) as a reader of this input shape was trained.

    Colour readers (street numbers) get the RGB photo fitted as it is. Greyscale
    readers (handwriting) get MNIST's convention: bright ink on black. The paper is
    the commonest level (the median), so a photo whose median is light has dark ink
    and is inverted; the paper's level is then taken off and the ink stretched to
    the full range, which also evens out a dim or grey photo.
    """
    height, width, channels = input_shape
    if channels == 3:
        return fit_to_input(np.asarray(image.convert("RGB")), height, width)
    grey = np.asarray(image.convert("L"), np.float32)
    if np.median(grey) > 127:
        grey = 255 - grey
    ink = np.clip(grey - np.median(grey), 0, None)
    ink = ink / max(float(ink.max()), 1.0) * 255
    return fit_to_input(ink.round().astype(np.uint8)[..., np.newaxis], height, width)
