"""A picture of a number fitted into a reader's input: scaled with its aspect kept, centred, edges repeated.

    from data.framing import fit_to_input
    pixels = fit_to_input(picture, 32, 96)   # (h, w, C) uint8 -> (32, 96, C) uint8

One function for both sides of a reader: the number data sets fit their
pictures with it (data/svhn_numbers.py, data/svhn_format1.py), and a photo is
fitted with it before it is read (data/photos.py's prepare_number), so a photo
reaches the reader framed as its training pictures were. `placement` says where
the picture lands, to map digit boxes (svhn_numbers.fit_boxes) or a reading's
columns (serving/answers.py) between the picture and the input.
"""

import numpy as np
from PIL import Image


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
