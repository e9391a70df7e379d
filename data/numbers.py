"""Whole numbers as labels: how a number's digits are stored, decoded, counted and compared.

A number data set is a `Dataset` whose labels are (N, MAX_DIGITS) int32: the
digits left to right, then PADDING. "063" is [0, 6, 3, -1, -1, -1]; a leading
zero is a digit like any other. (Fitting a picture of a number to a reader's
input is data/framing.py; preparing a photo of one, data/photos.py.)
"""

import numpy as np

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
