"""Graded changes to images, as a phone meets them: turns, sizes, moves, light, inversion, noise, blur, cover.

    from data import transforms
    turned = transforms.rotate(images, 30)          # uint8 (N, H, W, C) -> the same, 30 degrees counter-clockwise
    noisy = transforms.noise(images, 40, seed=0)    # Gaussian noise of 40 grey levels, the same for the same seed

Every function takes uint8 images (N, H, W, C) and a strength and returns new
uint8 images of the same shape; strength 0 (1 for scale and contrast) returns
the images unchanged. Geometric changes act about the image's centre with
bilinear sampling, and fill what comes in from outside with the border's
pixels (black for MNIST, the scene around a street digit). The robustness
sweep (analysis/robustness.py) grades each over a range of strengths.
"""

import numpy as np
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from scipy import ndimage

GREY_LEVELS = 255.0


def _as_pixels(values: np.ndarray) -> np.ndarray:
    """Float grey levels rounded to the nearest and kept within 0..255, as uint8."""
    return np.clip(np.round(values), 0, GREY_LEVELS).astype(np.uint8)


def _affine(images: np.ndarray, matrix: np.ndarray, shift=(0.0, 0.0)) -> np.ndarray:
    """Each image (H, W) plane mapped by `matrix` (2, 2, acting on (row, column) about the centre), then
    moved by `shift` (rows, columns) pixels; output pixel p samples input centre + M^-1 (p - centre - shift)."""
    count, height, width, channels = images.shape
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    inverse = np.linalg.inv(matrix)
    offset = centre - inverse @ (centre + np.asarray(shift, float))
    # Plane by plane: one call on the whole (N, H, W, C) array would interpolate along the batch and channel
    # axes too (16 neighbours instead of 4), for the same result four to five times slower.
    planes = images.transpose(0, 3, 1, 2).reshape(count * channels, height, width).astype(np.float32)
    moved = np.stack([ndimage.affine_transform(plane, inverse, offset, order=1, mode="nearest") for plane in planes])
    moved = moved.reshape(count, channels, height, width).transpose(0, 2, 3, 1)
    return _as_pixels(moved)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Turned counter-clockwise by `degrees` (as the picture is seen: rows run downwards)."""
    turn = np.deg2rad(degrees)
    # In (row, column) with rows downwards, a counter-clockwise turn on screen.
    matrix = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return images.copy() if degrees == 0 else _affine(images, matrix)


def scale(images: np.ndarray, factor: float) -> np.ndarray:
    """Grown (factor > 1) or shrunk (factor < 1) about the centre: 0.7 draws the content at 70 % of its size."""
    return images.copy() if factor == 1 else _affine(images, np.eye(2) * factor)


def shift_x(images: np.ndarray, share: float) -> np.ndarray:
    """Moved right by `share` of the width (left if negative)."""
    return images.copy() if share == 0 else _affine(images, np.eye(2), (0.0, share * images.shape[2]))


def shift_y(images: np.ndarray, share: float) -> np.ndarray:
    """Moved down by `share` of the height (up if negative)."""
    return images.copy() if share == 0 else _affine(images, np.eye(2), (share * images.shape[1], 0.0))


def brightness(images: np.ndarray, levels: float) -> np.ndarray:
    """`levels` grey levels added to every pixel (taken away if negative), kept within 0..255."""
    return np.clip(images.astype(np.float32) + levels, 0, GREY_LEVELS).astype(np.uint8)


def contrast(images: np.ndarray, factor: float) -> np.ndarray:
    """Each image's deviations from its own mean multiplied by `factor` (below 1: flatter, above: harsher)."""
    floats = images.astype(np.float32)
    mean = floats.mean(axis=(1, 2, 3), keepdims=True)
    return _as_pixels(mean + factor * (floats - mean))


def inversion(images: np.ndarray, share: float) -> np.ndarray:
    """Blended towards the negative: 0 is the image, 1 its negative (light on dark becomes dark on light)."""
    floats = images.astype(np.float32)
    return _as_pixels((1 - share) * floats + share * (GREY_LEVELS - floats))


def noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian noise of standard deviation `sigma` grey levels, drawn from `seed`, kept within 0..255."""
    if sigma == 0:
        return images.copy()
    grain = np.random.default_rng(seed).normal(0.0, sigma, images.shape).astype(np.float32)
    return _as_pixels(images + grain)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `sigma` pixels (out of focus, or shaken)."""
    if sigma == 0:
        return images.copy()
    blurred = ndimage.gaussian_filter(images.astype(np.float32), (0, sigma, sigma, 0), mode="nearest")
    return _as_pixels(blurred)


def occlusion(images: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    """A square `share` of the shorter side wide hides part of each image, painted in the image's border colour
    (its background): centred at a point drawn from `seed` in the middle half of the image, where the digit is."""
    if share == 0:
        return images.copy()
    count, height, width, _ = images.shape
    side = max(1, round(share * min(height, width)))
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.25, 0.75, (count, 2)) * np.array([height, width])
    covered = images.copy()
    for image, (row, column) in zip(covered, centres):
        top = int(np.clip(round(row - side / 2), 0, height - side))
        left = int(np.clip(round(column - side / 2), 0, width - side))
        image[top:top + side, left:left + side] = border_colour(image)
    return covered


def border_colour(image: np.ndarray) -> np.ndarray:
    """(C,) uint8: the median of an image's (H, W, C) outermost pixels, its background."""
    edge = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return np.median(edge, axis=0).astype(np.uint8)


def hue(images: np.ndarray, degrees: float) -> np.ndarray:
    """Colour images (N, H, W, 3) with every hue turned by `degrees` round the colour wheel (red to green at
    120), lightness and saturation kept."""
    if degrees == 0:
        return images.copy()
    hsv = rgb_to_hsv(images.astype(np.float32) / GREY_LEVELS)
    hsv[..., 0] = (hsv[..., 0] + degrees / 360.0) % 1.0
    return _as_pixels(hsv_to_rgb(hsv) * GREY_LEVELS)
