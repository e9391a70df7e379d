"""What a model makes of one photo, for each kind: the pixels it saw and its answer, printed and as JSON.

    pixels, answer = kind.answer(runner, photo)   # harness/kinds.py picks classify or read_number

`runner` is a LiteRT file (serving/litert.py) or a Keras model behind the same
face (predict.py's KerasRunner): uint8 pixels (1, H, W, C) in, the serving
signature's outputs (serving/export.py) out. The photo is prepared as the
model's training images were (data/photos.py, data/framing.py).
"""

import numpy as np

from data.framing import placement
from data.numbers import decode
from data.photos import prepare, prepare_number

TOP = 3  # digits listed per image
ZOOM_SPAN = 0.35  # a number read across less of the photo's width than this is read again, zoomed in
ZOOM_MARGIN = 2.0  # digit widths of the photo kept on each side of the digits read, when zooming in
ZOOM_ROUNDS = 2  # zooms at most (a tiny number in a wide photo is found roughly first, then closely)
MIN_ZOOM_WIDTH = 8  # photo pixels: no narrower region is read
LONE_DIGIT_WIDTH = 0.6  # a lone digit's width taken as this share of the photo's height, when zooming in


def top_digits(probabilities, count: int = TOP) -> list[list]:
    """[[digit, probability], ...] for the `count` most probable classes, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:count]
    return [[int(digit), round(float(probabilities[digit]), 4)] for digit in order]


def classify(runner, photo) -> tuple[np.ndarray, dict]:
    """A classifier's answer for a PIL photo: the pixels it saw (H, W, C) and the TOP digits, as printed and as
    JSON."""
    pixels = prepare(photo, runner.input_shape)
    probabilities = runner(pixels[np.newaxis])["probabilities"][0]
    top = top_digits(probabilities)
    return pixels, {"text": ", ".join(f"{digit} ({probability:.2f})" for digit, probability in top),
                    "json": {"top": top}, "probabilities": probabilities}


def read_number(runner, photo) -> tuple[np.ndarray, dict]:
    """A reader's answer for a PIL photo: the pixels it read last (H, W, C), and the number read, its
    probability and each digit's, the columns where they were read and the photo's region (left, right) read.

    A photo cropped loosely, the number a small part of its width, is read again on the region around the
    digits found (zoomed_region): squeezed into the reader's input whole, its digits were too small to read.
    """
    region = (0, photo.width)
    for zooms in range(ZOOM_ROUNDS + 1):
        pixels = prepare_number(photo.crop((region[0], 0, region[1], photo.height)), runner.input_shape)
        reading = {name: value[0] for name, value in runner(pixels[np.newaxis]).items()}
        closer = zoomed_region(reading, region, photo.height, runner) if zooms < ZOOM_ROUNDS else None
        if closer is None:
            break
        region = closer
    number = decode(reading["digits"][np.newaxis])[0]
    count = len(number)
    digits = [[int(digit), round(float(probability), 4)]
              for digit, probability in zip(reading["digits"][:count], reading["digit_probabilities"][:count])]
    probability = round(float(reading["probability"]), 4)
    return pixels, {"text": f"{number or '(no number)'} ({probability:.2f})",
                    "json": {"number": number, "probability": probability, "digits": digits},
                    "columns": reading["columns"][:count], "number": number, "region": region}


def zoomed_region(reading: dict, region: tuple[int, int], height: int, runner) -> tuple[int, int] | None:
    """The photo's columns (left, right) around the digits of a reading of `region` (photo pixels), ZOOM_MARGIN
    digits wide on each side, if the digits span less than ZOOM_SPAN of the region; else None."""
    columns = reading["columns"][reading["columns"] >= 0]
    if len(columns) == 0:
        return None
    width = region[1] - region[0]
    input_height, input_width, _ = runner.input_shape
    scaled_width, _, _, left = placement(height, width, input_height, input_width)  # the region inside the input
    to_photo = width / scaled_width  # photo pixels per input pixel
    column = runner.column_width()
    start = (columns.min() * column - left) * to_photo
    stop = ((columns.max() + 1) * column - left) * to_photo
    if stop - start >= ZOOM_SPAN * width:
        return None
    # A digit's width: from the span of several; for one alone, from the height (house-number digits are
    # a little over half as wide as tall, and the number fills most of the height once the crop is close).
    digit = (stop - start) / len(columns) if len(columns) > 1 else LONE_DIGIT_WIDTH * height
    closer = (region[0] + max(0, round(start - ZOOM_MARGIN * digit)),
              region[0] + min(width, round(stop + ZOOM_MARGIN * digit)))
    return closer if closer[1] - closer[0] >= MIN_ZOOM_WIDTH else None
