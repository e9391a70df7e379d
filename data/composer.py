"""Whole numbers composed from real single digits: a seeded, endless source of numbers with digit boxes.

    composer = NumberComposer(digits.x_train, digits.y_train, (32, 128, 1), "handwriting")
    images, labels, boxes = composer.compose(128, seed=(run_seed, step))

Each number is 1..MAX_DIGITS real digits laid out as people write or signs
show them: gaps that vary from wide to touching and overlapping, each digit's
own size, baseline, slant and turn, then fitted inside the output at a random
place. Two looks:

- "handwriting" (MNIST's 28x28 white-on-black digits): one pen per number
  (strokes thickened or thinned), on a form: paper texture, printed patterns
  (ruled lines, a squared grid, dotted guide boxes, comb fields, a cheque's
  fine pattern) and separators that belong to no digit (dots, commas, dashes,
  an underline). The polarity stays MNIST's: ink bright, paper dark, so a
  reader sees digits as single-digit models do.
- "street" (SVHN's 32x32 colour crops): each crop's central column, its
  luminance normalised with the digit as ink, so that the digits of one number
  share one sign's colours, with seams blended; then a plate on a wall,
  lighting, blur, JPEG-like colour bleeding and noise, different per number.

numpy, scipy and Pillow only, no TensorFlow: the tf.data pipeline calls
`compose` through tf.numpy_function while training runs on the same cores.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from data.numbers import MAX_DIGITS, PADDING

STYLES = ("handwriting", "street")
DIGIT_HEIGHT = (0.6, 0.9)  # a digit's height as a share of the output's, before shrinking a wide number to fit
MARGIN = 1.0  # output pixels kept clear around the digits' boxes
CHUNK = 256  # numbers composed together: bounds the float temporaries while keeping numpy's loops long
INK_LEVEL = 0.3  # a handwriting pixel at this share of its digit's brightest is part of the digit's box
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601: colour -> brightness

# Median width / height of SVHN's digit boxes per class 0..9, measured on the
# 4,031 numbers of svhn-numbers/train/labels.csv. A crop is its box widened to a
# square, so a digit is as tall as its crop and this share of it wide.
STREET_ASPECT = np.array([0.59, 0.42, 0.60, 0.57, 0.60, 0.58, 0.58, 0.56, 0.57, 0.60], np.float32)
STREET_CUT = 0.05  # of the crop's side: kept beyond the digit's box on each side, then faded out over as much again
STREET_WINDOW = (3, 29)  # rows/columns of a 32x32 crop in which its levels are measured: the digit's region
STROKE_LEVEL = 0.35  # normalised street ink at least this bright is part of a stroke
STREET_MIN_LIKENESS = 0.25  # a usable crop's likeness to its class's average (the stand-in's 7th percentile)
STREET_MAX_COVER = 0.45  # share of its box a digit's ink covers at most (bold digits, by eye); more is a plate


@dataclass(frozen=True)
class Layout:
    """How a style spaces and distorts its digits. Lengths are in digit heights; "+-" ranges are uniform.

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


HANDWRITING = Layout(gap=(-0.12, 0.35), gap_jitter=0.1, max_overlap=0.3, slant=(-0.15, 0.35), slant_jitter=0.1,
                     tilt=0.06, turn=0.1, size_jitter=0.12, width_jitter=0.1, stretch=0.15, baseline_jitter=0.06)
# Signs are set in one typeface: spacing, slant, size and baseline hardly vary within a number.
STREET = Layout(gap=(-0.15, 0.15), gap_jitter=0.03, max_overlap=0.2, slant=(-0.05, 0.15), slant_jitter=0.0,
                tilt=0.08, turn=0.0, size_jitter=0.03, width_jitter=0.03, stretch=0.2, baseline_jitter=0.02)

# Handwriting separators: not digits, drawn with the number's pen. Shares of numbers; the rest have none.
SEPARATORS = {"dot": 0.08, "comma": 0.08, "dash": 0.08, "underline": 0.1}
SEPARATOR_ROOM = {"dot": (0.2, 0.35), "comma": (0.2, 0.35), "dash": (0.35, 0.55)}  # extra gap, digit heights
PEN_RADIUS = (0.04, 0.065)  # separators' stroke half-width, digit heights: MNIST's strokes

# Handwriting paper: shares of numbers with each printed pattern; the rest have none.
PATTERNS = {"ruled": 0.17, "grid": 0.13, "boxes": 0.13, "comb": 0.1, "cheque": 0.15}
CLEAN_SHARE = 0.15  # numbers left on MNIST's plain black, like the single digits


class NumberComposer:
    """Numbers of min_length..max_length digits drawn from `digits`, in one of STYLES.

    digits: uint8 (N, h, w, C) real single digits; labels: (N,) 0..9.
    Handwriting digits are bright ink on black (MNIST); street digits are
    square colour crops centred on the digit (SVHN). output_shape: (H, W, C)
    of the composed images, C 1 or 3.
    """

    def __init__(self, digits, labels, output_shape, style: str, min_length: int = 1, max_length: int = MAX_DIGITS):
        digits, labels = np.asarray(digits), np.asarray(labels)
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        if digits.dtype != np.uint8 or digits.ndim != 4 or not len(digits) or digits.shape[-1] not in (1, 3):
            raise ValueError(f"digits must be uint8 (N, h, w, 1 or 3) with N > 0, not {digits.dtype} {digits.shape}")
        if labels.shape != (len(digits),) or labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"labels must be (N,) = ({len(digits)},) digits 0..9")
        if len(output_shape) != 3 or output_shape[2] not in (1, 3) or min(output_shape) < 1:
            raise ValueError(f"output_shape must be (H, W, 1 or 3), not {output_shape}")
        if not 1 <= min_length <= max_length <= MAX_DIGITS:
            raise ValueError(f"lengths must satisfy 1 <= min_length <= max_length <= {MAX_DIGITS}, "
                             f"not {min_length}..{max_length}")
        self.output_shape = tuple(int(size) for size in output_shape)
        self.style = style
        self.min_length, self.max_length = int(min_length), int(max_length)
        self.labels = labels.astype(np.int32)
        self._layout = HANDWRITING if style == "handwriting" else STREET
        if style == "handwriting":
            self._sources, self._ink_boxes, self._drawn_boxes = _handwriting_sources(digits)
            usable = np.ones(len(digits), bool)
        else:
            self._sources, self._ink_boxes, self._drawn_boxes, usable = _street_sources(digits, self.labels)
        # Digits are drawn from the usable ones, uniformly (so classes keep the data's frequencies), but a class
        # that has none left keeps all of its digits.
        for digit in range(10):
            usable |= (self.labels == digit) & ~(usable & (self.labels == digit)).any()
        self._pool = np.nonzero(usable)[0]

    def compose(self, count: int, seed):
        """`count` numbers from `seed` (an int or a tuple of ints, e.g. (run seed, step)); same seed, same output.

        Returns images uint8 (count, H, W, C); labels int32 (count, MAX_DIGITS),
        the digits left to right then PADDING, as data.numbers.encode writes them;
        boxes float32 (count, MAX_DIGITS, 4), each digit's x0 y0 x1 y1 in output
        pixels (pixel i spans i..i+1), inside the image, PADDING after the digits.
        """
        layout_rng, look_rng = _generators(seed)
        height, width, channels = self.output_shape
        images = np.empty((count, height, width, channels), np.uint8)
        labels = np.empty((count, MAX_DIGITS), np.int32)
        boxes = np.empty((count, MAX_DIGITS, 4), np.float32)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            ink, labels[start:stop], boxes[start:stop], extents = self._draw(stop - start, layout_rng)
            finish = _handwriting_look if self.style == "handwriting" else _street_look
            images[start:stop] = _to_uint8(finish(ink, extents, look_rng), channels)
        return images, labels, boxes

    def draw_ink(self, count: int, seed):
        """The digits alone, as `compose(count, seed)` lays them out: (ink uint8 (count, H, W), labels, boxes).

        Ink is bright on black: for handwriting the digits and separators before
        the pen's thickness changes; for street the crops' normalised luminance.
        """
        layout_rng, _ = _generators(seed)
        height, width, _ = self.output_shape
        ink = np.empty((count, height, width), np.uint8)
        labels = np.empty((count, MAX_DIGITS), np.int32)
        boxes = np.empty((count, MAX_DIGITS, 4), np.float32)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            ink[start:stop], labels[start:stop], boxes[start:stop], _ = self._draw(stop - start, layout_rng)
        return ink, labels, boxes

    def _draw(self, count: int, rng: np.random.Generator):
        """Lay out and draw `count` numbers: (ink (count, H, W) uint8, labels, boxes, extents).

        extents (count, 5) float32: the digits' union box x0 y0 x1 y1 and the
        digit height, in output pixels, for the look to place lines and plates by.
        """
        height, width, _ = self.output_shape
        style, slots = self._layout, self.max_length
        lengths = rng.integers(self.min_length, self.max_length + 1, count)
        present = np.arange(slots) < lengths[:, None]  # (count, slots)
        index = self._pool[rng.integers(0, len(self._pool), (count, slots))]
        ink_box = self._ink_boxes[index]  # (count, slots, 4), source pixels
        source_width, source_height = ink_box[..., 2] - ink_box[..., 0], ink_box[..., 3] - ink_box[..., 1]

        # Each digit's linear map from source pixels to the number's frame, whose unit is the number's
        # digit height: M = turn @ shear @ scale.
        scale_y = (1 + _spread(rng, style.size_jitter, (count, slots))) / source_height
        scale_x = scale_y * (1 + _spread(rng, style.width_jitter, (count, slots))) \
            * (1 + _spread(rng, style.stretch, (count, 1)))
        slant = rng.uniform(*style.slant, (count, 1)) + _spread(rng, style.slant_jitter, (count, slots))
        tilt = _spread(rng, style.tilt, (count, 1))
        angle = tilt + _spread(rng, style.turn, (count, slots))
        cos, sin = np.cos(angle), np.sin(angle)
        linear = np.stack([np.stack([cos * scale_x, -(cos * slant + sin) * scale_y], -1),
                           np.stack([sin * scale_x, (cos - sin * slant) * scale_y], -1)], -2)  # (count, slots, 2, 2)
        # Half extents of each transformed ink box (a centred rectangle's image is bounded by |M| times its half sides).
        half = np.abs(linear) @ np.stack([source_width, source_height], -1)[..., None] / 2
        half_x, half_y = half[..., 0, 0], half[..., 1, 0]

        gaps = rng.uniform(*style.gap, (count, 1)) + _spread(rng, style.gap_jitter, (count, slots))
        narrower = np.minimum(half_x, np.roll(half_x, -1, axis=1)) * 2
        gaps = np.maximum(gaps, -style.max_overlap * narrower)  # gaps[:, i] lies between digits i and i + 1
        separators = _plan_separators(rng, lengths, gaps) if self.style == "handwriting" else None
        lefts = np.concatenate([np.zeros((count, 1)), np.cumsum(2 * half_x + gaps, axis=1)[:, :-1]], axis=1)
        centre_x = lefts + half_x
        bottoms = np.tan(tilt) * centre_x + _spread(rng, style.baseline_jitter, (count, slots))
        centre_y = bottoms - half_y

        lows = np.where(present[..., None], np.stack([centre_x - half_x, centre_y - half_y], -1), np.inf)
        highs = np.where(present[..., None], np.stack([centre_x + half_x, centre_y + half_y], -1), -np.inf)
        low, high = lows.min(axis=1), highs.max(axis=1)  # (count, 2): the number's extent in its frame
        segments = None
        if separators is not None:
            segments = _separator_segments(rng, separators, lefts, gaps, centre_y, half_y, low, high, tilt)
            drawn = np.isfinite(segments[..., 0])[..., None]
            reach = segments[..., 4:5]
            low = np.minimum(low, np.where(drawn, np.minimum(segments[..., 0:2], segments[..., 2:4]) - reach,
                                           np.inf).min(axis=1))
            high = np.maximum(high, np.where(drawn, np.maximum(segments[..., 0:2], segments[..., 2:4]) + reach,
                                             -np.inf).max(axis=1))

        # Frame -> output: scale (output pixels per digit height), shrunk until the number fits, then a random place.
        room = np.array([width, height], np.float64) - 2 * MARGIN
        size = np.minimum(height * rng.uniform(*DIGIT_HEIGHT, count), (room / (high - low)).min(axis=1))
        shift = MARGIN + rng.uniform(0, 1, (count, 2)) * (room - size[:, None] * (high - low)) \
            - size[:, None] * low  # (count, 2)
        centres = shift[:, None] + size[:, None, None] * np.stack([centre_x, centre_y], -1)  # (count, slots, 2)
        spans = size[:, None, None] * np.stack([half_x, half_y], -1)
        boxes = np.concatenate([centres - spans, centres + spans], -1)
        boxes = np.clip(boxes, 0, [width, height, width, height])
        extents = np.concatenate([shift + size[:, None] * low, shift + size[:, None] * high, size[:, None]], 1)

        ink = np.zeros((count, height, width), np.uint8)
        self._paste_digits(ink, present, index, size[:, None, None, None] * linear, centres)
        if segments is not None:
            _draw_segments(ink, segments, size, shift)
        labels = np.full((count, MAX_DIGITS), PADDING, np.int32)
        labels[:, :slots] = np.where(present, self.labels[index], PADDING)
        padded_boxes = np.full((count, MAX_DIGITS, 4), PADDING, np.float32)
        padded_boxes[:, :slots] = np.where(present[..., None], boxes, PADDING)
        return ink, labels, padded_boxes, extents.astype(np.float32)

    def _paste_digits(self, ink, present, index, linear, centres):
        """Draw every present digit into ink (count, H, W) uint8 by its map source -> output.

        linear (count, slots, 2, 2): output pixels per source pixel; the source
        ink box's centre lands on centres (count, slots, 2). Overlaps keep the
        brighter ink, as two strokes on paper do.
        """
        height, width = ink.shape[1:]
        ink_box, drawn_box = self._ink_boxes[index], self._drawn_boxes[index]
        source_centre = (ink_box[..., :2] + ink_box[..., 2:]) / 2
        drawn_centre = (drawn_box[..., :2] + drawn_box[..., 2:]) / 2
        drawn_half = (drawn_box[..., 2:] - drawn_box[..., :2]) / 2
        # The output region each digit's drawn source region covers, in whole pixels.
        middle = centres + (linear @ (drawn_centre - source_centre)[..., None])[..., 0]
        reach = (np.abs(linear) @ drawn_half[..., None])[..., 0]
        corner = np.clip(np.floor(middle - reach), 0, [width, height]).astype(np.int64)
        far = np.clip(np.ceil(middle + reach), 0, [width, height]).astype(np.int64)
        # PIL maps each patch pixel back to the source: source = centre + inverse @ (output - digit's centre).
        det = linear[..., 0, 0] * linear[..., 1, 1] - linear[..., 0, 1] * linear[..., 1, 0]
        inverse = np.stack([np.stack([linear[..., 1, 1], -linear[..., 0, 1]], -1),
                            np.stack([-linear[..., 1, 0], linear[..., 0, 0]], -1)], -2) / det[..., None, None]
        offset = source_centre + (inverse @ (corner - centres)[..., None])[..., 0]
        coefficients = np.concatenate([inverse[..., 0, :], offset[..., 0:1], inverse[..., 1, :], offset[..., 1:2]], -1)
        rows, slots = np.nonzero(present & np.all(far > corner, axis=-1))
        for row, source, (left, top), (right, bottom), data in zip(
                rows.tolist(), index[rows, slots].tolist(), corner[rows, slots].tolist(),
                far[rows, slots].tolist(), coefficients[rows, slots].tolist()):
            patch = Image.fromarray(self._sources[source]).transform(
                (right - left, bottom - top), Image.AFFINE, data, resample=Image.BILINEAR)
            target = ink[row, top:bottom, left:right]
            np.maximum(target, np.asarray(patch), out=target)


def _generators(seed):
    """Two independent generators from one seed: the layout's and the look's (so draw_ink matches compose)."""
    children = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(children[0]), np.random.default_rng(children[1])


def _uniform(rng: np.random.Generator, low: float, high: float, shape) -> np.ndarray:
    """Uniform float32 draws in low..high: float32, so that the images computed from them stay float32."""
    return (low + (high - low) * rng.random(shape, np.float32)).astype(np.float32)


def _spread(rng: np.random.Generator, amount: float, shape) -> np.ndarray:
    """Uniform float32 draws in +-amount."""
    return _uniform(rng, -amount, amount, shape)


def _handwriting_sources(digits: np.ndarray):
    """MNIST-style digits (N, h, w, C) -> (sources (N, h, w) uint8, ink boxes (N, 4), drawn boxes (N, 4)).

    Boxes are float32 x0 y0 x1 y1 in source pixels. The ink box bounds pixels of
    at least INK_LEVEL of the digit's brightest; the drawn box adds a pixel of
    the fainter antialiased edge around it.
    """
    sources = digits[..., 0] if digits.shape[-1] == 1 else np.rint(_luminance(digits)).astype(np.uint8)
    height, width = sources.shape[1:]
    ink = sources >= np.maximum(sources.max(axis=(1, 2), keepdims=True) * INK_LEVEL, 1)
    ink[~ink.any(axis=(1, 2))] = True  # a blank digit: its whole square
    ink_boxes = np.stack([_first(ink.any(axis=1)), _first(ink.any(axis=2)),
                          width - _first(ink.any(axis=1)[:, ::-1]), height - _first(ink.any(axis=2)[:, ::-1])],
                         -1).astype(np.float32)
    drawn_boxes = np.clip(ink_boxes + [-1, -1, 1, 1], 0, [width, height, width, height]).astype(np.float32)
    return np.ascontiguousarray(sources), ink_boxes, drawn_boxes


def _first(flags: np.ndarray) -> np.ndarray:
    """Index of the first True along the last axis of flags (N, L)."""
    return flags.argmax(axis=-1)


def _street_sources(crops: np.ndarray, labels: np.ndarray):
    """SVHN-style square crops (N, s, s, C) -> (ink (N, s, s) uint8, ink boxes (N, 4), drawn boxes (N, 4), usable (N,)).

    Each crop's luminance is mapped so that its background is 0 and its digit
    1, from the median of the digit's region (mostly background) to the tail on
    the digit's side (a low or high percentile). Which side is the digit is a
    vote of three cues, each alone wrong on up to about a tenth of the
    stand-in's crops (by eye), seldom together: the tail farther from the
    median; the class (bright or dark) that does not fill the box's side
    columns; the side the box's middle leans to against its sides. Only a
    central column survives: the digit's box (as tall as its strokes,
    STREET_ASPECT of the crop wide) plus STREET_CUT each side, faded out over
    STREET_CUT more, which keeps most of the neighbours out; strokes that never
    reach the middle go too. A crop whose "digit" covers more of its box than
    digits do (the vote found a plate), or looks little like its class (see
    _alike), is not usable.
    """
    count, size = len(crops), crops.shape[1]
    weights = LUMA[:crops.shape[-1]] / LUMA[:crops.shape[-1]].sum()
    luminance = crops.astype(np.float32) @ weights
    first, last = (round(edge * size / 32) for edge in STREET_WINDOW)
    low, middle, high = np.percentile(luminance[:, first:last, first:last].reshape(count, -1), [5, 50, 95], axis=1)
    centre = size / 2
    half_width = STREET_ASPECT[labels] * size / 2  # (N,)
    every = np.arange(count)
    left = np.clip(np.round(centre - half_width).astype(np.int64), 0, size - 1)
    right = np.clip(np.round(centre + half_width).astype(np.int64) - 1, 0, size - 1)
    sides = np.concatenate([luminance[every, :, left], luminance[every, :, right]], axis=1)  # (N, 2s)
    inner = luminance[:, first:last, round(size * 7 / 16):round(size * 9 / 16)].reshape(count, -1)
    votes = ((high - middle) > (middle - low)).astype(np.int64) \
        + ((sides > ((low + high) / 2)[:, None]).mean(axis=1) < 0.5) \
        + (np.median(sides, axis=1) < np.median(inner, axis=1))
    bright_digit = (votes >= 2)[:, None, None]
    tail = np.where(bright_digit, high[:, None, None], low[:, None, None])
    middle = middle[:, None, None]
    ink = np.clip((luminance - middle) / np.where(np.abs(tail - middle) < 1, 1, tail - middle), 0, 1)

    ink = _without_neighbours(ink, half_width)

    distance = np.abs(np.arange(size) + 0.5 - centre)[None, :] - half_width[:, None] - STREET_CUT * size
    fade = np.clip(1 - distance / (STREET_CUT * size), 0, 1)  # (N, s): 1 on the column, 0 beyond its fade
    sources = np.rint(ink * fade[:, None, :] * 255).astype(np.uint8)
    in_box = np.abs(np.arange(size) + 0.5 - centre)[None, :] < half_width[:, None]  # (N, s) columns
    cover = ((ink > 0.5) & in_box[:, None, :]).sum(axis=(1, 2)) / (in_box.sum(axis=1) * size)
    # The digit's rows: those with strokes in its box; a crop with strokes over less than half its height has
    # lost its digit's middle to the cut or the vote, so its whole height is taken instead.
    rows = ((ink >= STROKE_LEVEL) & in_box[:, None, :]).any(axis=2)  # (N, s)
    top, bottom = _first(rows), size - _first(rows[:, ::-1])
    lost = ~rows.any(axis=1) | (bottom - top < size / 2)
    top, bottom = np.where(lost, 0, top), np.where(lost, size, bottom)
    ink_boxes = np.stack([centre - half_width, top, centre + half_width, bottom], -1).astype(np.float32)
    reach = half_width + 2 * STREET_CUT * size
    drawn_boxes = np.stack([np.maximum(centre - reach, 0), np.zeros(count), np.minimum(centre + reach, size),
                            np.full(count, size)], -1).astype(np.float32)
    return sources, ink_boxes, drawn_boxes, _alike(sources, labels, cover <= STREET_MAX_COVER)


def _alike(sources: np.ndarray, labels: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """usable (N,) less the crops whose ink (N, s, s) looks too little like their class's average ink.

    Likeness is the cosine of the two after removing each one's mean. What it
    catches, by eye on the stand-in, is mostly a digit turned into a block or a
    hole by the vote, a stray plate edge, or a crop too blurred to read.
    """
    flat = sources.reshape(len(sources), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)
    means = np.stack([flat[(labels == digit) & usable].mean(axis=0) if ((labels == digit) & usable).any()
                      else np.zeros(flat.shape[1], np.float32) for digit in range(10)])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-6)
    return usable & (np.einsum("np,np->n", flat, means[labels]) >= STREET_MIN_LIKENESS)


def _without_neighbours(ink: np.ndarray, half_width: np.ndarray) -> np.ndarray:
    """Ink (N, s, s) in 0..1 less the strokes that never come near the crop's centre line: parts of neighbours.

    A stroke is a connected region of at least STROKE_LEVEL; one kept is any
    that crosses the central strip (a 0's top and bottom cross it too). Removed
    strokes take their antialiased rims with them.
    """
    size = ink.shape[1]
    strokes = ink >= STROKE_LEVEL
    eight = np.zeros((3, 3, 3), bool)
    eight[1] = True  # 8-connected within a crop, never across crops
    regions, _ = ndimage.label(strokes, eight)
    strip = np.abs(np.arange(size) + 0.5 - size / 2)[None, :] < np.maximum(1.5, 0.3 * half_width)[:, None]
    crossing = np.unique(regions * strip[:, None, :])
    kept = np.isin(regions, crossing[crossing > 0])
    removed = ndimage.binary_dilation(strokes & ~kept, eight) & ~ndimage.binary_dilation(kept, eight)
    return np.where(removed, 0, ink)


def _plan_separators(rng: np.random.Generator, lengths: np.ndarray, gaps: np.ndarray):
    """Choose each number's separator and make room for it; gaps (count, slots) are widened in place.

    Returns (kind (count,) index into SEPARATORS or -1, after (count,) the digit it follows or -1).
    A dot or comma often marks thousands (before the last three digits), else any gap.
    """
    count = len(gaps)
    kinds = list(SEPARATORS)
    kind = rng.choice(len(kinds) + 1, count, p=[*SEPARATORS.values(), 1 - sum(SEPARATORS.values())])
    kind[kind == len(kinds)] = -1
    between = (kind >= 0) & (kind != kinds.index("underline"))
    kind[between & (lengths < 2)] = -1
    after = np.where(between & (kind >= 0), np.floor(rng.uniform(0, 1, count) * (lengths - 1)), -1).astype(np.int64)
    thousands = between & (lengths >= 4) & (kind != kinds.index("dash")) & (rng.uniform(0, 1, count) < 0.5)
    after[thousands] = lengths[thousands] - 4
    for name, (least, most) in SEPARATOR_ROOM.items():
        rows = np.nonzero((kind == kinds.index(name)) & (after >= 0))[0]
        room = rng.uniform(least, most, len(rows))
        gaps[rows, after[rows]] = np.maximum(gaps[rows, after[rows]], 0.05) + room
    return kind, after


def _separator_segments(rng, separators, lefts, gaps, centre_y, half_y, low, high, tilt):
    """Separators as round-capped pen strokes (count, 3, 5): x0 y0 x1 y1 half-width in the frame, NaN when unused."""
    kind, after = separators
    kinds = list(SEPARATORS)
    count = len(kind)
    segments = np.full((count, 3, 5), np.nan)
    pen = rng.uniform(*PEN_RADIUS, count)
    slope = np.tan(tilt[:, 0])
    rows = np.nonzero(after >= 0)[0]
    # Between digits `after` and `after + 1`: the middle of the gap, on the baseline of the two.
    gap_x = lefts[rows, after[rows] + 1] - gaps[rows, after[rows]] / 2
    base_y = np.maximum(centre_y[rows, after[rows]] + half_y[rows, after[rows]],
                        centre_y[rows, after[rows] + 1] + half_y[rows, after[rows] + 1])
    middle_y = (centre_y[rows, after[rows]] + centre_y[rows, after[rows] + 1]) / 2
    r = pen[rows]
    for row, x, base, middle, radius, name in zip(rows, gap_x, base_y, middle_y, r, (kinds[k] for k in kind[rows])):
        if name == "dot":
            segments[row, 0] = (x, base - radius, x, base - radius, radius * 1.3)
        elif name == "comma":
            segments[row, 0] = (x, base - radius, x, base - radius, radius * 1.3)
            segments[row, 1] = (x + radius * 0.5, base - radius, x - 0.08, base + 0.2, radius)
        else:  # a dash, shorter than half a digit, near mid-height
            length = rng.uniform(0.12, 0.2)
            y = middle + rng.uniform(-0.1, 0.1)
            segments[row, 0] = (x - length, y - slope[row] * length, x + length, y + slope[row] * length, radius)
    underlined = np.nonzero(kind == kinds.index("underline"))[0]
    for row in underlined:
        x0, x1 = low[row, 0] - rng.uniform(0, 0.2), high[row, 0] + rng.uniform(0, 0.2)
        y0 = high[row, 1] + rng.uniform(0.08, 0.22)
        # Drawn freehand: two strokes meeting at a wobbly middle, sloping with the number.
        y1 = y0 + (slope[row] + rng.uniform(-0.05, 0.05)) * (x1 - x0)
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + rng.uniform(-0.04, 0.04)
        segments[row, 0] = (x0, y0, mx, my, pen[row])
        segments[row, 1] = (mx, my, x1, y1, pen[row])
    return segments


def _draw_segments(ink: np.ndarray, segments: np.ndarray, size: np.ndarray, shift: np.ndarray):
    """Draw round-capped strokes (count, S, 5) in frame units into ink (count, H, W), antialiased, at full ink."""
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


def _smooth_noise(rng: np.random.Generator, count: int, height: int, width: int, cell: float) -> np.ndarray:
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


def _lines(coordinate: np.ndarray, period, phase, width) -> np.ndarray:
    """Antialiased lines of `width` pixels at phase + k * period along `coordinate`: 1 on a line, 0 between."""
    offset = np.mod(coordinate - phase, period)
    return _line(np.minimum(offset, period - offset), width)


def _line(offset: np.ndarray, width) -> np.ndarray:
    """One antialiased line of `width` pixels where offset (pixels across it) is 0: 1 on it, 0 away from it."""
    return np.clip(width / 2 + 0.5 - np.abs(offset), 0, 1)


def _soften(images: np.ndarray) -> np.ndarray:
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


def _mix(images: np.ndarray, other: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """images + weight * (other - images), weight (N,) per image."""
    return images + weight.reshape(-1, *[1] * (images.ndim - 1)).astype(images.dtype) * (other - images)


def _pen(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One pen per number: ink (N, H, W) float thickened (grey dilation) or thinned (grey erosion) by a random share."""
    plus = np.zeros((1, 3, 3), bool)  # one pixel in each of the four directions, within one image
    plus[0, 1, :] = plus[0, :, 1] = True
    grown, shrunk = ndimage.grey_dilation(ink, footprint=plus), ndimage.grey_erosion(ink, footprint=plus)
    change = _uniform(rng, -0.6, 1.0, len(ink))
    return np.where(change[:, None, None] > 0, _mix(ink, grown, np.maximum(change, 0)),
                    _mix(ink, shrunk, np.maximum(-change, 0)))


def _handwriting_look(ink: np.ndarray, extents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digits (N, H, W) uint8 -> numbers on inverted form paper, (N, H, W) float32 in 0..1, ink bright."""
    count, height, width = ink.shape
    strokes = _pen(ink.astype(np.float32) / 255, rng)
    paper = _paper(count, height, width, extents, rng)
    clean = _uniform(rng, 0, 1, count) < CLEAN_SHARE
    paper[clean] = 0
    level = _uniform(rng, 0.7, 1.0, count)  # the ink's brightness: a pen's darkness on the scan
    images = paper + strokes * (level[:, None, None] - paper)
    images = _mix(images, _soften(images), _uniform(rng, 0, 1, count) * (_uniform(rng, 0, 1, count) < 0.5))
    grain = _uniform(rng, 0, 0.03, count) * ~clean
    return images + grain[:, None, None] * rng.standard_normal(images.shape, np.float32)


def _paper(count, height, width, extents, rng):
    """Dim paper (N, H, W) float32: a level, texture, and a printed pattern for some (see PATTERNS)."""
    paper = _uniform(rng, 0, 0.12, (count, 1, 1)).astype(np.float32)
    paper = paper + _uniform(rng, 0, 0.06, (count, 1, 1)) * _smooth_noise(rng, count, height, width, 8)
    names = list(PATTERNS)
    pattern = rng.choice(len(names) + 1, count, p=[*PATTERNS.values(), 1 - sum(PATTERNS.values())])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    for number, name in enumerate(names):
        rows = np.nonzero(pattern == number)[0]
        if not len(rows):
            continue
        # A sheet lies a little askew on the scanner: u runs along its lines, v across them.
        skew = _spread(rng, 0.03, (len(rows), 1, 1))
        u, v = xs + skew * ys, ys - skew * xs
        digit = extents[rows, 4][:, None, None]  # pixels per digit height
        top, bottom = extents[rows, 1][:, None, None], extents[rows, 3][:, None, None]
        drawn = _PATTERN_DRAWERS[name](rng, len(rows), u, v, digit, top, bottom)
        strength = _uniform(rng, 0.12, 0.4, (len(rows), 1, 1))
        paper[rows] = paper[rows] + strength * drawn
    return paper


def _ruled(rng, count, u, v, digit, top, bottom):
    """Ruled paper: lines a line-height apart, one on or just under the number's baseline."""
    spacing = digit * _uniform(rng, 1.1, 1.6, (count, 1, 1))
    baseline = bottom + digit * _uniform(rng, -0.05, 0.15, (count, 1, 1))
    return _lines(v, spacing, baseline, _uniform(rng, 0.6, 1.5, (count, 1, 1)))


def _grid(rng, count, u, v, digit, top, bottom):
    """Squared paper, fainter than ruling, a few squares per digit height."""
    spacing = digit * _uniform(rng, 0.3, 0.6, (count, 1, 1))
    line = _uniform(rng, 0.4, 1.0, (count, 1, 1))
    phase = _uniform(rng, 0, 1, (count, 2, 1, 1)) * spacing[:, None]
    return 0.6 * np.maximum(_lines(u, spacing, phase[:, 0], line), _lines(v, spacing, phase[:, 1], line))


def _guide_cells(rng, count, u, v, digit, top, bottom):
    """A form's row of cells for one character each: (cell width, left edge phase, box top, box bottom)."""
    cell = digit * _uniform(rng, 0.75, 1.1, (count, 1, 1))
    phase = _uniform(rng, 0, 1, (count, 1, 1)) * cell
    box_top = top - digit * _uniform(rng, 0.05, 0.25, (count, 1, 1))
    box_bottom = bottom + digit * _uniform(rng, 0.05, 0.25, (count, 1, 1))
    return cell, phase, box_top, box_bottom


def _boxes(rng, count, u, v, digit, top, bottom):
    """Dotted guide boxes: one cell per character, outlined in dots."""
    cell, phase, box_top, box_bottom = _guide_cells(rng, count, u, v, digit, top, bottom)
    dot = _uniform(rng, 2, 3.5, (count, 1, 1))  # pixels from one dot to the next
    between = (v >= box_top) & (v <= box_bottom)
    upright = _lines(u, cell, phase, 1.0) * between * (np.mod(v, dot) < dot / 2)
    across = np.maximum(_line(v - box_top, 1.0), _line(v - box_bottom, 1.0))
    return np.maximum(upright, across * (np.mod(u, dot) < dot / 2))


def _comb(rng, count, u, v, digit, top, bottom):
    """A comb field: a solid line under the number with short ticks up between the cells."""
    cell, phase, _, box_bottom = _guide_cells(rng, count, u, v, digit, top, bottom)
    tick = digit * _uniform(rng, 0.15, 0.35, (count, 1, 1))
    ticks = _lines(u, cell, phase, 1.0) * (v <= box_bottom) * (v >= box_bottom - tick)
    return np.maximum(ticks, _line(v - box_bottom, 1.0))


def _cheque(rng, count, u, v, digit, top, bottom):
    """A cheque's security background: fine wavy lines, fainter than any ruling."""
    wavelength = _uniform(rng, 2.5, 5, (count, 1, 1))
    angle = _uniform(rng, 0, np.pi, (count, 1, 1))
    wave = _uniform(rng, 0, 3, (count, 1, 1)) * np.sin(u / _uniform(rng, 4, 12, (count, 1, 1)))
    phase = 2 * np.pi * (u * np.cos(angle) + v * np.sin(angle)) / wavelength + wave
    return 0.45 * np.clip(1 - np.abs(np.sin(phase / 2)) * 2.5, 0, 1)


_PATTERN_DRAWERS = {"ruled": _ruled, "grid": _grid, "boxes": _boxes, "comb": _comb, "cheque": _cheque}


def _street_look(ink: np.ndarray, extents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Digits (N, H, W) uint8 normalised ink -> colour signs (N, H, W, 3) float32 in 0..1, one look per number."""
    count, height, width = ink.shape
    weight = (ink.astype(np.float32) / 255) ** _uniform(rng, 0.7, 1.4, (count, 1, 1)).astype(np.float32)
    background_level = _uniform(rng, 0, 1, count)
    contrast = _uniform(rng, 0.35, 0.85, count)
    # The digits go lighter or darker than their plate, whichever fits (either, half the time, when both do).
    lighter = np.where(background_level + contrast > 1, False,
                       np.where(background_level - contrast < 0, True, _uniform(rng, 0, 1, count) < 0.5))
    digit_level = np.clip(np.where(lighter, background_level + contrast, background_level - contrast), 0, 1)
    plate, digit_colour = _colour(rng, background_level), _colour(rng, digit_level)
    wall = _colour(rng, _uniform(rng, 0, 1, count))

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    # The plate: the number's box widened on every side, on a wall; some numbers have none (the wall is the plate).
    pad = extents[:, 4:5, None] * _uniform(rng, 0.1, 0.7, (count, 4, 1))
    inside = np.minimum(np.minimum(xs - (extents[:, 0, None, None] - pad[:, 0, None]),
                                   (extents[:, 2, None, None] + pad[:, 1, None]) - xs),
                        np.minimum(ys - (extents[:, 1, None, None] - pad[:, 2, None]),
                                   (extents[:, 3, None, None] + pad[:, 3, None]) - ys))  # pixels inside its edge
    plated = _uniform(rng, 0, 1, count) < 0.6
    on_plate = np.where(plated[:, None, None], np.clip(inside + 0.5, 0, 1), 1)[..., None]
    frame = (plated & (_uniform(rng, 0, 1, count) < 0.4))[:, None, None] \
        * _line(inside - _uniform(rng, 1, 2.5, (count, 1, 1)), _uniform(rng, 0.8, 1.6, (count, 1, 1)))
    colour = wall[:, None, None] + on_plate * (plate[:, None, None] - wall[:, None, None])
    colour = colour + np.maximum(weight, frame)[..., None] * (digit_colour[:, None, None] - colour)

    # Light: a gradient across the sign, soft shadows, a colour cast.
    gradient = 1 + _spread(rng, 0.35, (count, 1, 1)) * (xs / width - 0.5) \
        + _spread(rng, 0.35, (count, 1, 1)) * (ys / height - 0.5)
    shadows = 1 + _uniform(rng, 0, 0.2, (count, 1, 1)) * _smooth_noise(rng, count, height, width, height / 2)
    colour = colour * (gradient * shadows)[..., None] * _uniform(rng, 0.85, 1.15, (count, 1, 1, 3))
    # Camera: focus and motion softness, JPEG's halved colour resolution, sensor noise.
    colour = _mix(colour, _soften(colour), _uniform(rng, 0, 1, count))
    blurry = _uniform(rng, 0, 1, count) < 0.3
    colour[blurry] = _soften(_soften(colour[blurry]))
    bleeding = _uniform(rng, 0, 1, count) < 0.7
    colour[bleeding] = _halve_colour(colour[bleeding])
    # Sensor noise, in brightness only: colour noise is mostly lost to the halved colour anyway.
    noise = _uniform(rng, 0.003, 0.03, (count, 1, 1))
    return colour + (noise * rng.standard_normal(colour.shape[:3], np.float32))[..., None]


def _colour(rng: np.random.Generator, level: np.ndarray) -> np.ndarray:
    """A colour (N, 3) of roughly each given luminance, mostly muted, sometimes saturated (blue, green, brass)."""
    tint = rng.standard_normal((len(level), 3), np.float32)
    tint -= (tint @ LUMA)[:, None]  # changes hue, not luminance
    saturation = _uniform(rng, 0, 1, (len(level), 1)) ** 3 * 0.4
    return np.clip(level[:, None] + saturation * tint / np.linalg.norm(tint, axis=1, keepdims=True), 0, 1)


def _halve_colour(images: np.ndarray) -> np.ndarray:
    """JPEG's 4:2:0 colour: (N, H, W, 3) keeps its luminance per pixel but its colour per 2x2 block.

    Luminance is linear in the channels, so a block's colour is its mean's
    colour: out = luminance + (block mean - block mean's luminance). An odd
    last row or column keeps its own colour.
    """
    count, height, width, _ = images.shape
    rows, columns = height // 2, width // 2
    even = images[:, :2 * rows, :2 * columns].reshape(count, rows, 2, columns, 2, 3)
    block = even.mean(axis=(2, 4))  # (N, rows, columns, 3)
    block_colour = block - _luminance(block)[..., None]
    out = images.copy()
    out[:, :2 * rows, :2 * columns] = (_luminance(even)[..., None] + block_colour[:, :, None, :, None]).reshape(
        count, 2 * rows, 2 * columns, 3)
    return out


def _luminance(images: np.ndarray) -> np.ndarray:
    """(..., 3) colour -> (...) brightness by LUMA."""
    return LUMA[0] * images[..., 0] + LUMA[1] * images[..., 1] + LUMA[2] * images[..., 2]


def _to_uint8(images: np.ndarray, channels: int) -> np.ndarray:
    """Float images (N, H, W) or (N, H, W, 3) in 0..1 -> uint8 (N, H, W, channels)."""
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] != channels:
        images = np.repeat(images, channels, axis=-1) if channels == 3 else _luminance(images)[..., None]
    return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
