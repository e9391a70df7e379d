"""Seven-segment digits drawn on the fly: a tiny, learnable stand-in with a real data set's shapes.

Used by --dry-run and the tests, so nothing needs a download. Each image is the
digit's lit segments at a random size, position and stroke width, with noise;
the colour version draws a coloured digit on a differently coloured background.
"""

import numpy as np

from data.dataset import Dataset

# Segments as (row0, col0, row1, col1) in a unit box 1 wide and 2 tall:
# a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle.
SEGMENTS = {
    "a": (0, 0, 0, 1), "b": (0, 1, 1, 1), "c": (1, 1, 2, 1), "d": (2, 0, 2, 1),
    "e": (1, 0, 2, 0), "f": (0, 0, 1, 0), "g": (1, 0, 1, 1),
}
LIT = ["abcdef", "bc", "abged", "abgcd", "fgbc", "afgcd", "afgedc", "abc", "abcdefg", "abcdfg"]


def draw_digit(digit: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size) float image in 0..1 of a seven-segment digit, randomly placed."""
    height = rng.uniform(0.5, 0.75) * size  # pixels from top to bottom segment
    width = height * rng.uniform(0.4, 0.6)
    top = rng.uniform(0.1 * size, size - height - 0.1 * size)
    left = rng.uniform(0.1 * size, size - width - 0.1 * size)
    half_stroke = rng.uniform(0.04, 0.07) * size
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    image = np.zeros((size, size), np.float32)
    for segment in LIT[digit]:
        r0, c0, r1, c1 = SEGMENTS[segment]
        # Pixels within half_stroke of the segment (an axis-aligned line) are lit.
        y0, y1 = top + r0 * height / 2, top + r1 * height / 2
        x0, x1 = left + c0 * width, left + c1 * width
        near_rows = (rows >= y0 - half_stroke) & (rows <= y1 + half_stroke)
        near_cols = (cols >= x0 - half_stroke) & (cols <= x1 + half_stroke)
        image[near_rows & near_cols] = 1.0
    return image


def make_images(count: int, shape: tuple[int, int, int], rng: np.random.Generator):
    """`count` images (count, H, W, C) uint8 with labels (count,) int32, classes balanced."""
    size, _, channels = shape
    labels = (np.arange(count) % 10).astype(np.int32)
    rng.shuffle(labels)
    images = np.empty((count, *shape), np.uint8)
    for index, digit in enumerate(labels):
        ink = draw_digit(int(digit), size, rng)[..., np.newaxis]  # (H, W, 1) in 0..1
        if channels == 1:
            background, foreground = np.zeros(1), np.full(1, rng.uniform(0.7, 1.0))
        else:  # street-number style: any two colours that differ in brightness
            background = rng.uniform(0.0, 0.45, 3)
            foreground = np.clip(background + rng.uniform(0.35, 0.55), 0, 1)
            if rng.random() < 0.5:
                background, foreground = foreground, background
        picture = background + ink * (foreground - background)
        picture += rng.normal(0, 0.05, picture.shape)
        images[index] = np.clip(picture * 255, 0, 255).round().astype(np.uint8)
    return images, labels


def load_synthetic(shape=(28, 28, 1), train_count=2000, test_count=500, seed=0, name="synthetic") -> Dataset:
    """A seeded synthetic data set; the same arguments give the same pixels."""
    rng = np.random.default_rng(seed)
    x_train, y_train = make_images(train_count, shape, rng)
    x_test, y_test = make_images(test_count, shape, rng)
    return Dataset(name, x_train, y_train, x_test, y_test)
