"""The composer's layout: NumberComposer, which picks real digits, spaces, sizes, slants and turns them as
its look's Layout says, places the number in the output and pastes the digits; the look then finishes it.

    composer = NumberComposer(digits.x_train, digits.y_train, (32, 128, 1), "handwriting")
    images, labels, boxes = composer.compose(128, seed=(run_seed, step))

The looks (LOOKS, by style name) are data/composer/handwriting.py and
data/composer/street.py; what they share is data/composer/machinery.py.
"""

import numpy as np
from PIL import Image

from data.composer.handwriting import AMOUNTS, HANDWRITING
from data.composer.machinery import Look, draw_strokes, generators, spread, to_uint8
from data.composer.street import STREET
from data.numbers import MAX_DIGITS, PADDING

LOOKS: dict[str, Look] = {"handwriting": HANDWRITING, "amounts": AMOUNTS, "street": STREET}
STYLES = tuple(LOOKS)
DIGIT_HEIGHT = (0.6, 0.9)  # a digit's height as a share of the output's, before shrinking a wide number to fit
MARGIN = 1.0  # output pixels kept clear around the digits' boxes
CHUNK = 256  # numbers composed together: bounds the float temporaries while keeping numpy's loops long


class NumberComposer:
    """Numbers of min_length..max_length digits drawn from `digits`, in one of STYLES (the LOOKS' names).

    digits: uint8 (N, h, w, C) real single digits; labels: (N,) 0..9.
    Handwriting and amounts digits are bright ink on black (MNIST); street
    digits are square colour crops centred on the digit (SVHN). output_shape:
    (H, W, C) of the composed images, C 1 or 3.

    groups: optional (N,) integer ids, e.g. each digit's writer: then all the
    digits of one number come from one group, so that a number looks written by
    one hand. The group is the group of a first digit drawn with `weights`
    (N,) >= 0 (default: all alike), so weights set each group's share of the
    numbers; the number's digits are then drawn uniformly from its group.
    Without groups every digit is drawn uniformly from all of them.
    """

    def __init__(self, digits, labels, output_shape, style: str, min_length: int = 1, max_length: int = MAX_DIGITS,
                 groups=None, weights=None):
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
        self._look = LOOKS[style]
        self._sources, self._ink_boxes, self._drawn_boxes, usable = self._look.sources(digits, self.labels)
        # Digits are drawn from the usable ones, uniformly (so classes keep the data's frequencies), but a class
        # that has none left keeps all of its digits.
        for digit in range(10):
            usable |= (self.labels == digit) & ~(usable & (self.labels == digit)).any()
        self._pool = np.nonzero(usable)[0]
        self._groups = None if groups is None else self._group_table(groups, weights, len(digits))

    def _group_table(self, groups, weights, count: int):
        """The pool sorted by group, and per pool entry (group's first pool position, group's size, cumulative
        chance of starting a number); the pool is reordered in place."""
        groups = np.asarray(groups)
        weights = np.ones(count) if weights is None else np.asarray(weights, np.float64)
        if groups.shape != (count,) or not np.issubdtype(groups.dtype, np.integer):
            raise ValueError(f"groups must be (N,) = ({count},) integer ids, not {groups.dtype} {groups.shape}")
        if weights.shape != (count,) or not np.all(np.isfinite(weights)) or weights.min() < 0:
            raise ValueError(f"weights must be (N,) = ({count},) finite values >= 0")
        self._pool = self._pool[np.argsort(groups[self._pool], kind="stable")]
        pooled = groups[self._pool]
        _, start, inverse, size = np.unique(pooled, return_index=True, return_inverse=True, return_counts=True)
        chance = weights[self._pool]
        if not chance.sum() > 0:
            raise ValueError("weights must give some usable digit a chance above 0")
        return start[inverse], size[inverse], np.cumsum(chance) / chance.sum()

    def _pick(self, rng: np.random.Generator, count: int, slots: int) -> np.ndarray:
        """Source indices (count, slots) of each number's digits: uniform, or all from one group (see groups)."""
        if self._groups is None:
            return self._pool[rng.integers(0, len(self._pool), (count, slots))]
        start, size, cumulative = self._groups
        first = np.minimum(np.searchsorted(cumulative, rng.random(count), side="right"), len(cumulative) - 1)
        offset = np.minimum((rng.random((count, slots)) * size[first][:, None]).astype(np.int64),
                            size[first][:, None] - 1)
        return self._pool[start[first][:, None] + offset]

    def compose(self, count: int, seed):
        """`count` numbers from `seed` (an int or a tuple of ints, e.g. (run seed, step)); same seed, same output.

        Returns images uint8 (count, H, W, C); labels int32 (count, MAX_DIGITS),
        the digits left to right then PADDING, as data.numbers.encode writes them;
        boxes float32 (count, MAX_DIGITS, 4), each digit's x0 y0 x1 y1 in output
        pixels (pixel i spans i..i+1), inside the image, PADDING after the digits.
        """
        images, labels, boxes, _ = self.compose_with_sources(count, seed)
        return images, labels, boxes

    def compose_with_sources(self, count: int, seed):
        """compose(count, seed) and where each digit came from: (images, labels, boxes, sources).

        sources int64 (count, MAX_DIGITS): each digit's index into the digits
        given to the composer, PADDING after the last digit.
        """
        layout_rng, look_rng = generators(seed)
        height, width, channels = self.output_shape
        images = np.empty((count, height, width, channels), np.uint8)
        labels = np.empty((count, MAX_DIGITS), np.int32)
        boxes = np.empty((count, MAX_DIGITS, 4), np.float32)
        sources = np.empty((count, MAX_DIGITS), np.int64)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            ink, labels[start:stop], boxes[start:stop], extents, sources[start:stop] = self._draw(stop - start,
                                                                                                  layout_rng)
            images[start:stop] = to_uint8(self._look.finish(ink, extents, look_rng), channels)
        return images, labels, boxes, sources

    def draw_ink(self, count: int, seed):
        """The digits alone, as `compose(count, seed)` lays them out: (ink uint8 (count, H, W), labels, boxes).

        Ink is bright on black: for handwriting the digits and separators before
        the pen's thickness changes; for street the crops' normalised luminance.
        """
        layout_rng, _ = generators(seed)
        height, width, _ = self.output_shape
        ink = np.empty((count, height, width), np.uint8)
        labels = np.empty((count, MAX_DIGITS), np.int32)
        boxes = np.empty((count, MAX_DIGITS, 4), np.float32)
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            ink[start:stop], labels[start:stop], boxes[start:stop], *_ = self._draw(stop - start, layout_rng)
        return ink, labels, boxes

    def _draw(self, count: int, rng: np.random.Generator):
        """Lay out and draw `count` numbers: (ink (count, H, W) uint8, labels, boxes, extents, sources).

        extents (count, 5) float32: the digits' union box x0 y0 x1 y1 and the
        digit height, in output pixels, for the look to place lines and plates by;
        sources (count, MAX_DIGITS) int64: the digits drawn, PADDING after them.
        """
        height, width, _ = self.output_shape
        layout, slots = self._look.layout, self.max_length
        lengths = rng.integers(self.min_length, self.max_length + 1, count)
        present = np.arange(slots) < lengths[:, None]  # (count, slots)
        index = self._pick(rng, count, slots)
        ink_box = self._ink_boxes[index]  # (count, slots, 4), source pixels
        source_width, source_height = ink_box[..., 2] - ink_box[..., 0], ink_box[..., 3] - ink_box[..., 1]

        # Each digit's linear map from source pixels to the number's frame, whose unit is the number's
        # digit height: M = turn @ shear @ scale.
        scale_y = (1 + spread(rng, layout.size_jitter, (count, slots))) / source_height
        scale_x = scale_y * (1 + spread(rng, layout.width_jitter, (count, slots))) \
            * (1 + spread(rng, layout.stretch, (count, 1)))
        slant = rng.uniform(*layout.slant, (count, 1)) + spread(rng, layout.slant_jitter, (count, slots))
        tilt = spread(rng, layout.tilt, (count, 1))
        angle = tilt + spread(rng, layout.turn, (count, slots))
        cos, sin = np.cos(angle), np.sin(angle)
        linear = np.stack([np.stack([cos * scale_x, -(cos * slant + sin) * scale_y], -1),
                           np.stack([sin * scale_x, (cos - sin * slant) * scale_y], -1)], -2)  # (count, slots, 2, 2)
        # Half extents of each transformed ink box (a centred rectangle's image is bounded by |M| times its half sides).
        half = np.abs(linear) @ np.stack([source_width, source_height], -1)[..., None] / 2
        half_x, half_y = half[..., 0, 0], half[..., 1, 0]

        gaps = rng.uniform(*layout.gap, (count, 1)) + spread(rng, layout.gap_jitter, (count, slots))
        narrower = np.minimum(half_x, np.roll(half_x, -1, axis=1)) * 2
        gaps = np.maximum(gaps, -layout.max_overlap * narrower)  # gaps[:, i] lies between digits i and i + 1
        marks = self._look.plan_marks(rng, lengths, gaps)  # separators, for handwriting; None for street
        lefts = np.concatenate([np.zeros((count, 1)), np.cumsum(2 * half_x + gaps, axis=1)[:, :-1]], axis=1)
        centre_x = lefts + half_x
        bottoms = np.tan(tilt) * centre_x + spread(rng, layout.baseline_jitter, (count, slots))
        centre_y = bottoms - half_y

        lows = np.where(present[..., None], np.stack([centre_x - half_x, centre_y - half_y], -1), np.inf)
        highs = np.where(present[..., None], np.stack([centre_x + half_x, centre_y + half_y], -1), -np.inf)
        low, high = lows.min(axis=1), highs.max(axis=1)  # (count, 2): the number's extent in its frame
        segments = None
        if marks is not None:
            segments = self._look.mark_strokes(rng, marks, lefts, gaps, centre_y, half_y, low, high, tilt)
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
            draw_strokes(ink, segments, size, shift)
        labels = np.full((count, MAX_DIGITS), PADDING, np.int32)
        labels[:, :slots] = np.where(present, self.labels[index], PADDING)
        padded_boxes = np.full((count, MAX_DIGITS, 4), PADDING, np.float32)
        padded_boxes[:, :slots] = np.where(present[..., None], boxes, PADDING)
        sources = np.full((count, MAX_DIGITS), PADDING, np.int64)
        sources[:, :slots] = np.where(present, index, PADDING)
        return ink, labels, padded_boxes, extents.astype(np.float32), sources

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
