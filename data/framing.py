"""A picture of a number fitted into a reader's input: scaled with its aspect kept, centred, edges repeated.

    from data.framing import fit_to_input
    pixels = fit_to_input(picture, 32, 96)   # (h, w, C) uint8 -> (32, 96, C) uint8

One function for both sides of a reader: the number data sets fit their
pictures with it (data/svhn_numbers.py, data/svhn_format1.py), and a photo is
fitted with it before it is read (data/photos.py's prepare_number), so a photo
reaches the reader framed as its training pictures were. `placement` says
where the picture lands, to map digit boxes (fit_boxes) or a reading's columns
(serving/answers.py) between the picture and the input. `crop_box` cuts a number
out of a larger picture, given its digit boxes, with the context the
svhn-numbers stand-in keeps.
"""

import numpy as np
from PIL import Image

HORIZONTAL_MARGIN = 0.5  # of the median digit width, each side: the stand-in keeps about this much context
VERTICAL_MARGIN = 0.05  # of the number's height, above and below: the stand-in keeps almost none


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


def fit_boxes(boxes: np.ndarray, picture_size: tuple[int, int], input_shape: tuple[int, ...]) -> np.ndarray:
    """Boxes (k, 4) x0, y0, x1, y1 in a picture's pixels -> the same boxes in fit_to_input's output, (k, 4) float32.

    `picture_size` is the picture's (rows, columns). The scale and offsets are
    fit_to_input's own (placement): each side is scaled by the resized length over the
    original one (Pillow maps edge to edge), then shifted by the padding.
    """
    rows, columns = picture_size
    new_width, new_height, top, left = placement(rows, columns, *input_shape[:2])
    factors = np.array([new_width / columns, new_height / rows] * 2)
    offsets = np.array([left, top] * 2)
    return (np.asarray(boxes, np.float64).reshape(-1, 4) * factors + offsets).astype(np.float32)


def crop_box(boxes: np.ndarray, photo_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Digit boxes (k, 4) on a photo of (rows, columns) -> the number's crop x0, y0, x1, y1 in whole pixels.

    The union of the boxes, widened by HORIZONTAL_MARGIN of the median digit
    width on each side and VERTICAL_MARGIN of the union's height above and
    below, clipped to the photo; None when nothing of it lies on the photo.
    """
    rows, columns = photo_size
    digit_width = float(np.median(boxes[:, 2] - boxes[:, 0]))
    x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
    x1, y1 = boxes[:, 2].max(), boxes[:, 3].max()
    across, down = HORIZONTAL_MARGIN * max(digit_width, 0.0), VERTICAL_MARGIN * (y1 - y0)
    crop = (max(0, int(np.floor(x0 - across))), max(0, int(np.floor(y0 - down))),
            min(columns, int(np.ceil(x1 + across))), min(rows, int(np.ceil(y1 + down))))
    return crop if crop[0] < crop[2] and crop[1] < crop[3] else None
