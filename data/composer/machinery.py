"""The composer's shared machinery: what a look is made of, seeded draws, and the drawing tools both looks use.

Nothing here belongs to one look: the Layout record a look fills in, the Look
interface data/composer/layout.py calls, the seeded generators and uniform
draws, smooth noise, antialiased lines and pen strokes, blur and mixing, and
the conversion of float images to uint8.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601: colour -> brightness


@dataclass(frozen=True)
class Layout:
    """How a look spaces and distorts its digits. Lengths are in digit heights; "+-" ranges are uniform.

    A gap is the space between two digits' boxes (negative: they overlap); the
    slant is a shear (a digit's top moves right by slant * its height); the tilt
    turns the whole number and its baseline; the turn is each digit's own.
    """

    gap: tuple[float, float]  # each number's typical gap
    gap_jitter: float  # +- per gap
    max_overlap: float  # of the narrower digit's width: more would hide a digit's middle
    slant: tuple[float, float]  # each number's shear
    slant_jitter: float  # +- per digit
    tilt: float  # +- radians, per number
    turn: float  # +- radians, per digit
    size_jitter: float  # +- share of the height, per digit
    width_jitter: float  # +- share of the width, per digit
    stretch: float  # +- share of the width, per number (a narrow or wide hand, a sign seen at an angle)
    baseline_jitter: float  # +- per digit


class Look(Protocol):
    """What a look gives the layout (data/composer/handwriting.py, data/composer/street.py)."""

    layout: Layout

    def sources(self, digits: np.ndarray, labels: np.ndarray):
        """Digits (N, h, w, C) uint8 -> (sources (N, h, w) uint8 bright ink on black, ink boxes (N, 4), drawn
        boxes (N, 4), usable (N,) bool). Boxes are float32 x0 y0 x1 y1 in source pixels: the ink box is what
        the layout spaces, the drawn box what is pasted."""

    def plan_marks(self, rng: np.random.Generator, lengths: np.ndarray, gaps: np.ndarray):
        """Marks that are not digits (separators), chosen per number, gaps (count, slots) widened for them in
        place; None when the look draws none (and then no draw is taken from rng)."""

    def mark_strokes(self, rng, marks, lefts, gaps, centre_y, half_y, low, high, tilt) -> np.ndarray:
        """The planned marks as pen strokes (count, S, 5) for draw_strokes, in the number's frame."""

    def finish(self, ink: np.ndarray, extents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Laid-out ink (N, H, W) uint8 -> the look's images (N, H, W) or (N, H, W, 3) float32 in about 0..1.
        extents (N, 5): the digits' union box x0 y0 x1 y1 and the digit height, in output pixels."""


def generators(seed):
    """Two independent generators from one seed: the layout's and the look's (so draw_ink matches compose)."""
    children = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(children[0]), np.random.default_rng(children[1])


def uniform(rng: np.random.Generator, low: float, high: float, shape) -> np.ndarray:
    """Uniform float32 draws in low..high: float32, so that the images computed from them stay float32."""
    return (low + (high - low) * rng.random(shape, np.float32)).astype(np.float32)


def spread(rng: np.random.Generator, amount: float, shape) -> np.ndarray:
    """Uniform float32 draws in +-amount."""
    return uniform(rng, -amount, amount, shape)


def first(flags: np.ndarray) -> np.ndarray:
    """Index of the first True along the last axis of flags (N, L)."""
    return flags.argmax(axis=-1)


def luminance(images: np.ndarray) -> np.ndarray:
    """(..., 3) colour -> (...) brightness by LUMA."""
    return LUMA[0] * images[..., 0] + LUMA[1] * images[..., 1] + LUMA[2] * images[..., 2]


def smooth_noise(rng: np.random.Generator, count: int, height: int, width: int, cell: float) -> np.ndarray:
    """Noise (count, H, W) float32 in about +-1 that varies over `cell` pixels: a coarse grid, bilinearly enlarged."""
    rows, columns = int(np.ceil(height / cell)) + 1, int(np.ceil(width / cell)) + 1
    coarse = rng.uniform(-1, 1, (count, rows, columns)).astype(np.float32)
    return _enlarge_matrix(height, rows) @ coarse @ _enlarge_matrix(width, columns).T


def _enlarge_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells) float32: bilinear interpolation from `cells` evenly spread samples to `size` pixels."""
    position = (np.arange(size) + 0.5) / size * (cells - 1)
    below = np.minimum(position.astype(np.int64), cells - 2)
    weight = position - below
    matrix = np.zeros((size, cells), np.float32)
    matrix[np.arange(size), below] = 1 - weight
    matrix[np.arange(size), below + 1] = weight
    return matrix


def lines(coordinate: np.ndarray, period, phase, width) -> np.ndarray:
    """Antialiased lines of `width` pixels at phase + k * period along `coordinate`: 1 on a line, 0 between."""
    offset = np.mod(coordinate - phase, period)
    return line(np.minimum(offset, period - offset), width)


def line(offset: np.ndarray, width) -> np.ndarray:
    """One antialiased line of `width` pixels where offset (pixels across it) is 0: 1 on it, 0 away from it."""
    return np.clip(width / 2 + 0.5 - np.abs(offset), 0, 1)


def soften(images: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur of (N, H, W, ...) over H and W, edges repeated."""
    rows = 2 * images
    rows[:, 1:] += images[:, :-1]
    rows[:, :-1] += images[:, 1:]
    rows[:, 0] += images[:, 0]
    rows[:, -1] += images[:, -1]
    blurred = 2 * rows
    blurred[:, :, 1:] += rows[:, :, :-1]
    blurred[:, :, :-1] += rows[:, :, 1:]
    blurred[:, :, 0] += rows[:, :, 0]
    blurred[:, :, -1] += rows[:, :, -1]
    return blurred / 16


def mix(images: np.ndarray, other: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """images + weight * (other - images), weight (N,) per image."""
    return images + weight.reshape(-1, *[1] * (images.ndim - 1)).astype(images.dtype) * (other - images)


def draw_strokes(ink: np.ndarray, segments: np.ndarray, size: np.ndarray, shift: np.ndarray):
    """Draw round-capped strokes (count, S, 5) x0 y0 x1 y1 half-width, in frame units (digit heights; NaN rows
    unused), into ink (count, H, W) uint8, antialiased, at full ink; output = frame * size (count,) + shift
    (count, 2)."""
    height, width = ink.shape[1:]
    rows, slots = np.nonzero(np.isfinite(segments[..., 0]))
    for row, slot in zip(rows.tolist(), slots.tolist()):
        x0, y0, x1, y1, radius = segments[row, slot] * size[row]
        x0, x1 = x0 + shift[row, 0], x1 + shift[row, 0]
        y0, y1 = y0 + shift[row, 1], y1 + shift[row, 1]
        left, right = max(0, int(min(x0, x1) - radius - 1)), min(width, int(np.ceil(max(x0, x1) + radius + 1)))
        top, bottom = max(0, int(min(y0, y1) - radius - 1)), min(height, int(np.ceil(max(y0, y1) + radius + 1)))
        if right <= left or bottom <= top:
            continue
        ys, xs = np.mgrid[top:bottom, left:right] + 0.5
        dx, dy = x1 - x0, y1 - y0
        along = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        distance = np.hypot(xs - x0 - along * dx, ys - y0 - along * dy)
        stroke = np.rint(np.clip(radius + 0.5 - distance, 0, 1) * 255).astype(np.uint8)
        target = ink[row, top:bottom, left:right]
        np.maximum(target, stroke, out=target)


def to_uint8(images: np.ndarray, channels: int) -> np.ndarray:
    """Float images (N, H, W) or (N, H, W, 3) in 0..1 -> uint8 (N, H, W, channels)."""
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] != channels:
        images = np.repeat(images, channels, axis=-1) if channels == 3 else luminance(images)[..., None]
    return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
