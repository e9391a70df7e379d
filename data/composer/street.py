"""The street look: SVHN's 32x32 colour crops made into the digits of one sign, photographed.

Each crop keeps its central column, its luminance normalised with the digit as
ink, so that the digits of one number share one sign's colours, with seams
blended; then a plate on a wall, lighting, blur, JPEG-like colour bleeding and
noise, different per number.

Every number that shapes the look is a field of StreetLook, with its unit and
meaning, in one place; STREET is the look the composer uses.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from data.composer.machinery import LUMA, Layout, first, line, luminance, mix, smooth_noise, soften, spread, uniform

Range = tuple[float, float]  # uniform draws between the two


@dataclass(frozen=True)
class StreetLook:
    """The street look's knobs. Levels and brightness are shares of full white (1); a digit height is the
    composed number's digit height in output pixels; "x of numbers" is a share of the numbers composed; a
    crop's side is its width (= height)."""

    # How the digits are spaced and distorted (see Layout). Signs are set in one typeface: spacing, slant, size
    # and baseline hardly vary within a number.
    layout: Layout = Layout(gap=(-0.15, 0.15), gap_jitter=0.03, max_overlap=0.2, slant=(-0.05, 0.15),
                            slant_jitter=0.0, tilt=0.08, turn=0.0, size_jitter=0.03, width_jitter=0.03, stretch=0.2,
                            baseline_jitter=0.02)

    # The source crops: the digit's column and its ink (see sources).
    # Median width / height of SVHN's digit boxes per class 0..9, measured on the 4,031 numbers of
    # svhn-numbers/train/labels.csv. A crop is its box widened to a square, so a digit is as tall as its crop
    # and this share of it wide.
    aspect: tuple[float, ...] = (0.59, 0.42, 0.60, 0.57, 0.60, 0.58, 0.58, 0.56, 0.57, 0.60)
    cut: float = 0.05  # share of the crop's side kept beyond the digit's box on each side, then faded out over as much
    window: tuple[int, int] = (3, 29)  # 32nds of the crop's side: the rows and columns (the digit's region) in which
    #                                    its levels are measured
    tail_percent: float = 5  # percent: the digit's level is this low or this high a percentile of the window's
    #                          luminance; the background's is the median
    middle_columns: tuple[int, int] = (14, 18)  # 32nds of the crop's side: the box's middle, for the vote
    side_fill: float = 0.5  # a vote for the class (bright or dark) that covers less than this share of the box's side
    #                         columns: the digit
    min_spread: float = 1  # levels (0..255) between the median and the tail: less is a flat crop, left unstretched
    stroke_level: float = 0.35  # normalised ink at least this bright is part of a stroke
    strip: float = 0.3  # share of the digit's half width: a stroke crossing the central strip this wide is kept ...
    min_strip: float = 1.5  # ... but the strip is at least this many crop pixels wide each side of the centre line
    cover_level: float = 0.5  # normalised ink at least this bright counts as covering its box (see max_cover)
    min_stroke_height: float = 0.5  # share of the crop's side: strokes over fewer rows have lost the digit's middle,
    #                                 so the digit's box takes the whole height
    max_cover: float = 0.45  # share of its box a digit's ink covers at most (bold digits, set by eye); more is a plate
    min_likeness: float = 0.25  # a usable crop's likeness to its class's average (the stand-in's 7th percentile)

    # The sign, per number.
    ink_gamma: Range = (0.7, 1.4)  # power the normalised ink is raised to: heavier (< 1) or lighter (> 1) strokes
    plate_level: Range = (0, 1)  # luminance of the plate (and of the wall, drawn separately)
    contrast: Range = (0.35, 0.85)  # luminance between the plate and the digits
    lighter_share: float = 0.5  # of numbers whose digits may be lighter or darker than the plate: lighter ones
    max_saturation: float = 0.4  # a colour's saturation (its tint's length) is at most this ...
    saturation_power: float = 3  # ... times a uniform draw to this power: mostly muted, sometimes saturated
    plate_pad: Range = (0.1, 0.7)  # digit heights the plate reaches beyond the digits, on each side independently
    plated_share: float = 0.6  # of numbers on a plate; on the others the wall is the plate
    frame_share: float = 0.4  # of plated numbers whose plate has a frame, in the digits' colour ...
    frame_inset: Range = (1, 2.5)  # ... output pixels inside the plate's edge ...
    frame_width: Range = (0.8, 1.6)  # ... and this many output pixels wide

    # The light and the camera, per number.
    gradient: float = 0.35  # +- brightness gain from one side of the picture to the other, across and down
    shadow: Range = (0, 0.2)  # +- brightness gain of the soft shadows ...
    shadow_cell: float = 0.5  # ... which vary over this share of the picture's height
    colour_cast: Range = (0.85, 1.15)  # gain per colour channel
    focus: Range = (0, 1)  # share of a 3x3 blur mixed in (focus and motion softness) ...
    blurry_share: float = 0.3  # ... and numbers blurred twice more on top
    bleeding_share: float = 0.7  # of numbers with JPEG's halved colour resolution (halve_colour)
    noise: Range = (0.003, 0.03)  # brightness: the standard deviation of the sensor noise, in brightness only

    def sources(self, crops: np.ndarray, labels: np.ndarray):
        """SVHN-style square crops (N, s, s, C) -> (ink (N, s, s) uint8, ink boxes (N, 4), drawn boxes (N, 4),
        usable (N,)).

        Each crop's luminance is mapped so that its background is 0 and its digit
        1, from the median of the digit's region (mostly background) to the tail on
        the digit's side (a low or high percentile). Which side is the digit is a
        vote of three cues, each alone wrong on up to about a tenth of the
        stand-in's crops (by eye), seldom together: the tail farther from the
        median; the class (bright or dark) that does not fill the box's side
        columns; the side the box's middle leans to against its sides. Only a
        central column survives: the digit's box (as tall as its strokes,
        `aspect` of the crop wide) plus `cut` each side, faded out over `cut`
        more, which keeps most of the neighbours out; strokes that never reach
        the middle go too. A crop whose "digit" covers more of its box than
        digits do (the vote found a plate), or looks little like its class (see
        _alike), is not usable.
        """
        count, size = len(crops), crops.shape[1]
        weights = LUMA[:crops.shape[-1]] / LUMA[:crops.shape[-1]].sum()
        levels = crops.astype(np.float32) @ weights
        start, stop = (round(edge * size / 32) for edge in self.window)
        tail = self.tail_percent
        low, middle, high = np.percentile(levels[:, start:stop, start:stop].reshape(count, -1), [tail, 50, 100 - tail],
                                          axis=1)
        centre = size / 2
        half_width = np.array(self.aspect, np.float32)[labels] * size / 2  # (N,)
        every = np.arange(count)
        left = np.clip(np.round(centre - half_width).astype(np.int64), 0, size - 1)
        right = np.clip(np.round(centre + half_width).astype(np.int64) - 1, 0, size - 1)
        sides = np.concatenate([levels[every, :, left], levels[every, :, right]], axis=1)  # (N, 2s)
        inner_start, inner_stop = (round(edge * size / 32) for edge in self.middle_columns)
        inner = levels[:, start:stop, inner_start:inner_stop].reshape(count, -1)
        votes = ((high - middle) > (middle - low)).astype(np.int64) \
            + ((sides > ((low + high) / 2)[:, None]).mean(axis=1) < self.side_fill) \
            + (np.median(sides, axis=1) < np.median(inner, axis=1))
        bright_digit = (votes >= 2)[:, None, None]
        tail = np.where(bright_digit, high[:, None, None], low[:, None, None])
        middle = middle[:, None, None]
        ink = np.clip((levels - middle) / np.where(np.abs(tail - middle) < self.min_spread, 1, tail - middle), 0, 1)

        ink = self._without_neighbours(ink, half_width)

        distance = np.abs(np.arange(size) + 0.5 - centre)[None, :] - half_width[:, None] - self.cut * size
        fade = np.clip(1 - distance / (self.cut * size), 0, 1)  # (N, s): 1 on the column, 0 beyond its fade
        sources = np.rint(ink * fade[:, None, :] * 255).astype(np.uint8)
        in_box = np.abs(np.arange(size) + 0.5 - centre)[None, :] < half_width[:, None]  # (N, s) columns
        cover = ((ink > self.cover_level) & in_box[:, None, :]).sum(axis=(1, 2)) / (in_box.sum(axis=1) * size)
        # The digit's rows: those with strokes in its box; a crop with strokes over less than min_stroke_height
        # has lost its digit's middle to the cut or the vote, so its whole height is taken instead.
        rows = ((ink >= self.stroke_level) & in_box[:, None, :]).any(axis=2)  # (N, s)
        top, bottom = first(rows), size - first(rows[:, ::-1])
        lost = ~rows.any(axis=1) | (bottom - top < self.min_stroke_height * size)
        top, bottom = np.where(lost, 0, top), np.where(lost, size, bottom)
        ink_boxes = np.stack([centre - half_width, top, centre + half_width, bottom], -1).astype(np.float32)
        reach = half_width + 2 * self.cut * size
        drawn_boxes = np.stack([np.maximum(centre - reach, 0), np.zeros(count), np.minimum(centre + reach, size),
                                np.full(count, size)], -1).astype(np.float32)
        return sources, ink_boxes, drawn_boxes, self._alike(sources, labels, cover <= self.max_cover)

    def _alike(self, sources: np.ndarray, labels: np.ndarray, usable: np.ndarray) -> np.ndarray:
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
        return usable & (np.einsum("np,np->n", flat, means[labels]) >= self.min_likeness)

    def _without_neighbours(self, ink: np.ndarray, half_width: np.ndarray) -> np.ndarray:
        """Ink (N, s, s) in 0..1 less the strokes that never come near the crop's centre line: parts of neighbours.

        A stroke is a connected region of at least stroke_level; one kept is any
        that crosses the central strip (a 0's top and bottom cross it too).
        Removed strokes take their antialiased rims with them.
        """
        size = ink.shape[1]
        strokes = ink >= self.stroke_level
        eight = np.zeros((3, 3, 3), bool)
        eight[1] = True  # 8-connected within a crop, never across crops
        regions, _ = ndimage.label(strokes, eight)
        strip = np.abs(np.arange(size) + 0.5 - size / 2)[None, :] \
            < np.maximum(self.min_strip, self.strip * half_width)[:, None]
        crossing = np.unique(regions * strip[:, None, :])
        kept = np.isin(regions, crossing[crossing > 0])
        removed = ndimage.binary_dilation(strokes & ~kept, eight) & ~ndimage.binary_dilation(kept, eight)
        return np.where(removed, 0, ink)

    def plan_marks(self, rng: np.random.Generator, lengths: np.ndarray, gaps: np.ndarray):
        """None: a sign carries only its digits (nothing is drawn from rng)."""
        return None

    def mark_strokes(self, rng, marks, lefts, gaps, centre_y, half_y, low, high, tilt) -> np.ndarray:
        """Never called: plan_marks plans none."""
        raise NotImplementedError("the street look draws no marks")

    def finish(self, ink: np.ndarray, extents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Digits (N, H, W) uint8 normalised ink -> colour signs (N, H, W, 3) float32 in 0..1, one look per number."""
        count, height, width = ink.shape
        weight = (ink.astype(np.float32) / 255) ** uniform(rng, *self.ink_gamma, (count, 1, 1)).astype(np.float32)
        background_level = uniform(rng, *self.plate_level, count)
        contrast = uniform(rng, *self.contrast, count)
        # The digits go lighter or darker than their plate, whichever fits (either, by lighter_share, when both do).
        lighter = np.where(background_level + contrast > 1, False,
                           np.where(background_level - contrast < 0, True,
                                    uniform(rng, 0, 1, count) < self.lighter_share))
        digit_level = np.clip(np.where(lighter, background_level + contrast, background_level - contrast), 0, 1)
        plate, digit_colour = self._colour(rng, background_level), self._colour(rng, digit_level)
        wall = self._colour(rng, uniform(rng, *self.plate_level, count))

        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        # The plate: the number's box widened on every side, on a wall; some numbers have none (the wall is the plate).
        pad = extents[:, 4:5, None] * uniform(rng, *self.plate_pad, (count, 4, 1))
        inside = np.minimum(np.minimum(xs - (extents[:, 0, None, None] - pad[:, 0, None]),
                                       (extents[:, 2, None, None] + pad[:, 1, None]) - xs),
                            np.minimum(ys - (extents[:, 1, None, None] - pad[:, 2, None]),
                                       (extents[:, 3, None, None] + pad[:, 3, None]) - ys))  # pixels inside its edge
        plated = uniform(rng, 0, 1, count) < self.plated_share
        on_plate = np.where(plated[:, None, None], np.clip(inside + 0.5, 0, 1), 1)[..., None]
        frame = (plated & (uniform(rng, 0, 1, count) < self.frame_share))[:, None, None] \
            * line(inside - uniform(rng, *self.frame_inset, (count, 1, 1)), uniform(rng, *self.frame_width,
                                                                                    (count, 1, 1)))
        colour = wall[:, None, None] + on_plate * (plate[:, None, None] - wall[:, None, None])
        colour = colour + np.maximum(weight, frame)[..., None] * (digit_colour[:, None, None] - colour)

        # Light: a gradient across the sign, soft shadows, a colour cast.
        gradient = 1 + spread(rng, self.gradient, (count, 1, 1)) * (xs / width - 0.5) \
            + spread(rng, self.gradient, (count, 1, 1)) * (ys / height - 0.5)
        shadows = 1 + uniform(rng, *self.shadow, (count, 1, 1)) \
            * smooth_noise(rng, count, height, width, height * self.shadow_cell)
        colour = colour * (gradient * shadows)[..., None] * uniform(rng, *self.colour_cast, (count, 1, 1, 3))
        # Camera: focus and motion softness, JPEG's halved colour resolution, sensor noise.
        colour = mix(colour, soften(colour), uniform(rng, *self.focus, count))
        blurry = uniform(rng, 0, 1, count) < self.blurry_share
        colour[blurry] = soften(soften(colour[blurry]))
        bleeding = uniform(rng, 0, 1, count) < self.bleeding_share
        colour[bleeding] = halve_colour(colour[bleeding])
        # Sensor noise, in brightness only: colour noise is mostly lost to the halved colour anyway.
        noise = uniform(rng, *self.noise, (count, 1, 1))
        return colour + (noise * rng.standard_normal(colour.shape[:3], np.float32))[..., None]

    def _colour(self, rng: np.random.Generator, level: np.ndarray) -> np.ndarray:
        """A colour (N, 3) of roughly each given luminance, mostly muted, sometimes saturated (blue, green, brass)."""
        tint = rng.standard_normal((len(level), 3), np.float32)
        tint -= (tint @ LUMA)[:, None]  # changes hue, not luminance
        saturation = uniform(rng, 0, 1, (len(level), 1)) ** self.saturation_power * self.max_saturation
        return np.clip(level[:, None] + saturation * tint / np.linalg.norm(tint, axis=1, keepdims=True), 0, 1)


def halve_colour(images: np.ndarray) -> np.ndarray:
    """JPEG's 4:2:0 colour: (N, H, W, 3) keeps its luminance per pixel but its colour per 2x2 block.

    Luminance is linear in the channels, so a block's colour is its mean's
    colour: out = luminance + (block mean - block mean's luminance). An odd
    last row or column keeps its own colour.
    """
    count, height, width, _ = images.shape
    rows, columns = height // 2, width // 2
    even = images[:, :2 * rows, :2 * columns].reshape(count, rows, 2, columns, 2, 3)
    block = even.mean(axis=(2, 4))  # (N, rows, columns, 3)
    block_colour = block - luminance(block)[..., None]
    out = images.copy()
    out[:, :2 * rows, :2 * columns] = (luminance(even)[..., None] + block_colour[:, :, None, :, None]).reshape(
        count, 2 * rows, 2 * columns, 3)
    return out


STREET = StreetLook()
