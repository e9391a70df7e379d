"""The handwriting look: MNIST's 28x28 white-on-black digits written on a form, one pen per number.

Strokes thickened or thinned by the pen; separators that belong to no digit
(dots, commas, dashes, an underline) drawn with the same pen; form paper:
a dim level, texture, and printed patterns (ruled lines, a squared grid, dotted
guide boxes, comb fields, a cheque's fine pattern); softness and scanner grain.
The polarity stays MNIST's: ink bright, paper dark, so a reader sees digits as
single-digit models do.

Every number that shapes the look is a field of HandwritingLook, with its unit
and meaning, in one place. HANDWRITING is the look of mnist-numbers; AMOUNTS
(style "amounts", data/handwriting_numbers.py) is the same look as amounts are
written on cheques and forms and then scanned: marks at a number's ends (a
closing dash, ",-", "=", a long flourish, an opening dash), a printed box
around the amount, printed lines as dark as the ink, more uneven digits, and
crops cut close to the number whose edges fit_to_input repeats (data/framing.py).
Its extra knobs are off in HANDWRITING, which draws exactly what it drew before.
"""

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from data.composer.machinery import Layout, first, line, lines, luminance, mix, smooth_noise, soften, spread, uniform

Range = tuple[float, float]  # uniform draws between the two


@dataclass(frozen=True)
class HandwritingLook:
    """The handwriting look's knobs. Brightness is a share of full white (1); a digit height is the composed
    number's digit height in output pixels; "x of numbers" is a share of the numbers composed."""

    # How the digits are spaced and distorted (see Layout): people's hands vary within a number too.
    layout: Layout = Layout(gap=(-0.12, 0.35), gap_jitter=0.1, max_overlap=0.3, slant=(-0.15, 0.35),
                            slant_jitter=0.1, tilt=0.06, turn=0.1, size_jitter=0.12, width_jitter=0.1, stretch=0.15,
                            baseline_jitter=0.06)

    # The source digits.
    ink_level: float = 0.3  # share of its digit's brightest pixel: a pixel this bright is part of the digit's box
    drawn_margin: int = 1  # source pixels around the ink box pasted with it (the fainter antialiased edge)

    # The pen: one per number.
    pen_change: Range = (-0.6, 1.0)  # share of a one-pixel thickening (> 0, grey dilation) or thinning (< 0, erosion)
    pen_level: Range = (0.7, 1.0)  # brightness of the ink: a pen's darkness on the scan

    # Separators: not digits, drawn with the number's pen. Shares of numbers with each; the rest have none.
    separators: tuple[tuple[str, float], ...] = (("dot", 0.08), ("comma", 0.08), ("dash", 0.08), ("underline", 0.1))
    separator_room: tuple[tuple[str, Range], ...] = (("dot", (0.2, 0.35)), ("comma", (0.2, 0.35)),
                                                     ("dash", (0.35, 0.55)))  # digit heights added to the gap
    separator_gap: float = 0.05  # digit heights: the least gap a separator's room is added to
    thousands_share: float = 0.5  # of the dots and commas in numbers of 4+ digits: those that mark thousands
    pen_radius: Range = (0.04, 0.065)  # digit heights: the separators' stroke half-width (MNIST's strokes)
    dot_radius: float = 1.3  # pen radii: a dot's (and a comma's head's) radius
    comma_start: float = 0.5  # pen radii right of the comma's head where its tail starts
    comma_back: float = 0.08  # digit heights left of the head where the tail ends
    comma_drop: float = 0.2  # digit heights below the baseline where the tail ends
    dash_half_length: Range = (0.12, 0.2)  # digit heights: a dash is shorter than half a digit
    dash_rise: float = 0.1  # +- digit heights: a dash's height about the two digits' mid-height
    underline_overhang: Range = (0, 0.2)  # digit heights the underline reaches past the number at each end
    underline_drop: Range = (0.08, 0.22)  # digit heights below the number's lowest point
    underline_slope: float = 0.05  # +- slope (height per width) added to the number's tilt
    underline_wobble: float = 0.04  # +- digit heights: the middle, where its two freehand strokes meet, moves

    # Marks at the number's ends, drawn with the number's pen (amounts: "123,-", "123=", "-123-", a flourish
    # closing the field). Shares of numbers with each; the rest have none. Off: () and 0 draw nothing.
    closings: tuple[tuple[str, float], ...] = ()  # after the last digit: "dash", "comma_dash", "equals", "flourish"
    opening_share: float = 0  # of numbers with a dash before the first digit
    end_gap: Range = (0.1, 0.35)  # digit heights between the digits and a mark at an end
    equals_apart: Range = (0.12, 0.22)  # digit heights between the two bars of an "="
    flourish_length: Range = (0.8, 3)  # digit heights: a closing flourish's reach to the right
    flourish_height: Range = (0.1, 0.7)  # digit heights above the baseline where the flourish starts
    flourish_rise: float = 0.3  # +- digit heights its far end lies above or below its start
    flourish_wobble: float = 0.12  # +- digit heights: its middle, where its two strokes meet, moves

    # The paper (dim: MNIST's polarity), per number.
    clean_share: float = 0.15  # of numbers left on MNIST's plain black, like the single digits
    paper_level: Range = (0, 0.12)  # brightness
    texture: Range = (0, 0.06)  # brightness: how far the paper's smooth texture swings either way
    texture_cell: float = 8  # output pixels over which the texture varies
    soft_share: float = 0.5  # of numbers softened (3x3 blur) ...
    softness: Range = (0, 1)  # ... by this share of the blur
    grain: Range = (0, 0.03)  # brightness: the standard deviation of the scan's noise (none on clean numbers)
    # The crop: a photo or scan cut close to the number and narrower (or wider) than the input has its edge
    # columns (rows) repeated to fill it (data/framing.py's fit_to_input); 0 cuts none, and draws nothing.
    cut_share: float = 0  # of numbers cut close
    cut_rows_share: float = 0.3  # of the cut numbers, those cut above and below instead of left and right
    cut_margin: Range = (0.05, 0.6)  # digit heights between the number's box (marks included) and each cut

    # Printed patterns: shares of numbers with each; the rest have none. Each drawer below reads its own knobs.
    patterns: tuple[tuple[str, float], ...] = (("ruled", 0.17), ("grid", 0.13), ("boxes", 0.13), ("comb", 0.1),
                                               ("cheque", 0.15))
    skew: float = 0.03  # +- shear of the printed lines (a sheet a little askew on the scanner)
    pattern_strength: Range = (0.12, 0.4)  # brightness of a printed line at full strength
    ruling: Range = (1.1, 1.6)  # digit heights between ruled lines
    ruled_baseline: Range = (-0.05, 0.15)  # digit heights below the number's bottom: the line it is written on
    ruled_width: Range = (0.6, 1.5)  # output pixels: a ruled line's width
    grid_square: Range = (0.3, 0.6)  # digit heights: a grid square's side
    grid_width: Range = (0.4, 1.0)  # output pixels: a grid line's width
    grid_strength: float = 0.6  # of a printed line's strength: a grid is fainter than ruling
    cell: Range = (0.75, 1.1)  # digit heights: a form's cell width, one character each (boxes and combs)
    cell_margin: Range = (0.05, 0.25)  # digit heights between the number and its cell's top, and its bottom
    form_width: float = 1.0  # output pixels: the width of a guide box's dotted lines and a comb's lines
    dot_period: Range = (2, 3.5)  # output pixels from one dot of a guide box to the next (dot and gap alike)
    comb_tick: Range = (0.15, 0.35)  # digit heights: a comb's ticks up between the cells
    cheque_period: Range = (2.5, 5)  # output pixels between the cheque pattern's fine lines
    cheque_angle: Range = (0, np.pi)  # radians: the fine lines' direction
    cheque_wave: Range = (0, 3)  # radians of the lines' phase: how far they wave ...
    cheque_wavelength: Range = (4, 12)  # ... output pixels along the lines per radian of the wave
    cheque_sharpness: float = 2.5  # the lines' profile: 1 - |sin| * this, so larger is thinner
    cheque_strength: float = 0.45  # of a printed line's strength: fainter than any ruling
    frame_margin: Range = (0.1, 0.6)  # digit heights between the number's box and the printed box around it
    frame_width: Range = (0.8, 2.0)  # output pixels: the printed box's line width

    def sources(self, digits: np.ndarray, labels: np.ndarray):
        """MNIST-style digits (N, h, w, C) -> (sources (N, h, w) uint8, ink boxes (N, 4), drawn boxes (N, 4),
        usable (N,): all).

        Boxes are float32 x0 y0 x1 y1 in source pixels. The ink box bounds pixels of
        at least ink_level of the digit's brightest; the drawn box adds drawn_margin
        pixels of the fainter antialiased edge around it.
        """
        sources = digits[..., 0] if digits.shape[-1] == 1 else np.rint(luminance(digits)).astype(np.uint8)
        height, width = sources.shape[1:]
        ink = sources >= np.maximum(sources.max(axis=(1, 2), keepdims=True) * self.ink_level, 1)
        ink[~ink.any(axis=(1, 2))] = True  # a blank digit: its whole square
        ink_boxes = np.stack([first(ink.any(axis=1)), first(ink.any(axis=2)),
                              width - first(ink.any(axis=1)[:, ::-1]), height - first(ink.any(axis=2)[:, ::-1])],
                             -1).astype(np.float32)
        margin = self.drawn_margin
        drawn_boxes = np.clip(ink_boxes + [-margin, -margin, margin, margin], 0,
                              [width, height, width, height]).astype(np.float32)
        return np.ascontiguousarray(sources), ink_boxes, drawn_boxes, np.ones(len(digits), bool)

    def plan_marks(self, rng: np.random.Generator, lengths: np.ndarray, gaps: np.ndarray):
        """Choose each number's separator and make room for it; gaps (count, slots) are widened in place.

        Returns (kind (count,) index into separators or -1, after (count,) the digit it follows or -1).
        A dot or comma often marks thousands (before the last three digits), else any gap.
        """
        count = len(gaps)
        shares = dict(self.separators)
        kinds = list(shares)
        kind = rng.choice(len(kinds) + 1, count, p=[*shares.values(), 1 - sum(shares.values())])
        kind[kind == len(kinds)] = -1
        between = (kind >= 0) & (kind != kinds.index("underline"))
        kind[between & (lengths < 2)] = -1
        after = np.where(between & (kind >= 0), np.floor(rng.uniform(0, 1, count) * (lengths - 1)), -1).astype(np.int64)
        thousands = between & (lengths >= 4) & (kind != kinds.index("dash")) \
            & (rng.uniform(0, 1, count) < self.thousands_share)
        after[thousands] = lengths[thousands] - 4
        for name, (least, most) in self.separator_room:
            rows = np.nonzero((kind == kinds.index(name)) & (after >= 0))[0]
            room = rng.uniform(least, most, len(rows))
            gaps[rows, after[rows]] = np.maximum(gaps[rows, after[rows]], self.separator_gap) + room
        if not self.closings and not self.opening_share:
            return kind, after
        return kind, after, *self._plan_ends(rng, lengths)

    def _plan_ends(self, rng: np.random.Generator, lengths: np.ndarray):
        """Each number's closing mark (count,) index into closings or -1, its opening dash (count,) bool, and
        its lengths (count,), which the strokes need to find the last digit."""
        count = len(lengths)
        shares = dict(self.closings)
        closing = rng.choice(len(shares) + 1, count, p=[*shares.values(), 1 - sum(shares.values())])
        closing[closing == len(shares)] = -1
        return closing, rng.uniform(0, 1, count) < self.opening_share, lengths

    def mark_strokes(self, rng, marks, lefts, gaps, centre_y, half_y, low, high, tilt) -> np.ndarray:
        """Separators as round-capped pen strokes (count, 3, 5): x0 y0 x1 y1 half-width in the frame, NaN when
        unused."""
        kind, after, *ends = marks
        kinds = [name for name, _ in self.separators]
        count = len(kind)
        segments = np.full((count, 6, 5), np.nan)  # a separator or underline in 0..1, end marks in 2..5
        pen = rng.uniform(*self.pen_radius, count)
        slope = np.tan(tilt[:, 0])
        rows = np.nonzero(after >= 0)[0]
        # Between digits `after` and `after + 1`: the middle of the gap, on the baseline of the two.
        gap_x = lefts[rows, after[rows] + 1] - gaps[rows, after[rows]] / 2
        base_y = np.maximum(centre_y[rows, after[rows]] + half_y[rows, after[rows]],
                            centre_y[rows, after[rows] + 1] + half_y[rows, after[rows] + 1])
        middle_y = (centre_y[rows, after[rows]] + centre_y[rows, after[rows] + 1]) / 2
        r = pen[rows]
        for row, x, base, middle, radius, name in zip(rows, gap_x, base_y, middle_y, r,
                                                      (kinds[k] for k in kind[rows])):
            if name == "dot":
                segments[row, 0] = (x, base - radius, x, base - radius, radius * self.dot_radius)
            elif name == "comma":
                segments[row, 0] = (x, base - radius, x, base - radius, radius * self.dot_radius)
                segments[row, 1] = (x + radius * self.comma_start, base - radius, x - self.comma_back,
                                    base + self.comma_drop, radius)
            else:  # a dash, near mid-height
                length = rng.uniform(*self.dash_half_length)
                y = middle + rng.uniform(-self.dash_rise, self.dash_rise)
                segments[row, 0] = (x - length, y - slope[row] * length, x + length, y + slope[row] * length, radius)
        underlined = np.nonzero(kind == kinds.index("underline"))[0]
        for row in underlined:
            x0 = low[row, 0] - rng.uniform(*self.underline_overhang)
            x1 = high[row, 0] + rng.uniform(*self.underline_overhang)
            y0 = high[row, 1] + rng.uniform(*self.underline_drop)
            # Drawn freehand: two strokes meeting at a wobbly middle, sloping with the number.
            y1 = y0 + (slope[row] + rng.uniform(-self.underline_slope, self.underline_slope)) * (x1 - x0)
            mx, my = (x0 + x1) / 2, (y0 + y1) / 2 + rng.uniform(-self.underline_wobble, self.underline_wobble)
            segments[row, 0] = (x0, y0, mx, my, pen[row])
            segments[row, 1] = (mx, my, x1, y1, pen[row])
        if ends:
            self._end_strokes(rng, segments, *ends, pen, lefts, centre_y, half_y, low, high, slope)
        return segments

    def _end_strokes(self, rng, segments, closing, opening, lengths, pen, lefts, centre_y, half_y, low, high, slope):
        """Write the closing marks into segments[:, 2:5] and the opening dashes into segments[:, 5], in place.

        Frame units (digit heights); each mark lies on the height of the digit next to it and follows the
        number's slope.
        """
        names = [name for name, _ in self.closings]
        for row in np.nonzero(closing >= 0)[0]:
            last = lengths[row] - 1
            x = high[row, 0] + rng.uniform(*self.end_gap)
            base, middle = centre_y[row, last] + half_y[row, last], centre_y[row, last]
            segments[row, 2:5] = self._closing(rng, names[closing[row]], x, base, middle, pen[row], slope[row])
        for row in np.nonzero(opening)[0]:
            x = low[row, 0] - rng.uniform(*self.end_gap)
            length = 2 * rng.uniform(*self.dash_half_length)
            y = centre_y[row, 0] + rng.uniform(-self.dash_rise, self.dash_rise)
            segments[row, 5] = (x - length, y - slope[row] * length, x, y, pen[row])

    def _closing(self, rng, name: str, x: float, base: float, middle: float, pen: float, slope: float):
        """One closing mark starting at x: three strokes (3, 5) x0 y0 x1 y1 half-width, NaN rows unused."""
        strokes = np.full((3, 5), np.nan)
        length = 2 * rng.uniform(*self.dash_half_length)
        y = middle + rng.uniform(-self.dash_rise, self.dash_rise)
        if name == "dash":
            strokes[0] = (x, y, x + length, y + slope * length, pen)
        elif name == "comma_dash":  # "123,-": a comma on the baseline, then a dash
            strokes[0] = (x, base - pen, x, base - pen, pen * self.dot_radius)
            strokes[1] = (x + pen * self.comma_start, base - pen, x - self.comma_back, base + self.comma_drop, pen)
            start = x + pen * self.dot_radius + rng.uniform(*self.end_gap)
            strokes[2] = (start, y, start + length, y + slope * length, pen)
        elif name == "equals":
            apart = rng.uniform(*self.equals_apart) / 2
            strokes[0] = (x, y - apart, x + length, y - apart + slope * length, pen)
            strokes[1] = (x, y + apart, x + length, y + apart + slope * length, pen)
        else:  # a flourish: a long freehand line closing the field, two strokes meeting at a wobbly middle
            reach = rng.uniform(*self.flourish_length)
            y0 = base - rng.uniform(*self.flourish_height)
            y1 = y0 + slope * reach + rng.uniform(-self.flourish_rise, self.flourish_rise)
            mx, my = x + reach / 2, (y0 + y1) / 2 + rng.uniform(-self.flourish_wobble, self.flourish_wobble)
            strokes[0] = (x, y0, mx, my, pen)
            strokes[1] = (mx, my, x + reach, y1, pen)
        return strokes

    def finish(self, ink: np.ndarray, extents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Digits (N, H, W) uint8 -> numbers on inverted form paper, (N, H, W) float32 in 0..1, ink bright."""
        count, height, width = ink.shape
        strokes = self._pen(ink.astype(np.float32) / 255, rng)
        paper = self._paper(count, height, width, extents, rng)
        clean = uniform(rng, 0, 1, count) < self.clean_share
        paper[clean] = 0
        level = uniform(rng, *self.pen_level, count)
        images = paper + strokes * (level[:, None, None] - paper)
        images = mix(images, soften(images),
                     uniform(rng, *self.softness, count) * (uniform(rng, 0, 1, count) < self.soft_share))
        grain = uniform(rng, *self.grain, count) * ~clean
        images = images + grain[:, None, None] * rng.standard_normal(images.shape, np.float32)
        return self._cut(images, extents, rng) if self.cut_share else images

    def _cut(self, images: np.ndarray, extents: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Some numbers (cut_share) cut close left and right (or above and below) of extents' box, the pixels
        beyond each cut replaced by the last column (row) inside it, as fit_to_input pads a photo."""
        count, height, width = images.shape
        cut = uniform(rng, 0, 1, count) < self.cut_share
        rows = uniform(rng, 0, 1, count) < self.cut_rows_share
        margin = uniform(rng, *self.cut_margin, (count, 2)) * extents[:, 4:5]  # pixels: before, after
        for axis, size, chosen, (low, high) in ((2, width, cut & ~rows, (0, 2)), (1, height, cut & rows, (1, 3))):
            first = np.clip(np.floor(extents[:, low] - margin[:, 0]), 0, size - 1).astype(np.int64)
            last = np.clip(np.ceil(extents[:, high] + margin[:, 1]) - 1, first, size - 1).astype(np.int64)
            take = np.where(chosen[:, None], np.clip(np.arange(size), first[:, None], last[:, None]),
                            np.arange(size))  # (count, size): the pixel each one shows
            shape = (count, 1, size) if axis == 2 else (count, size, 1)
            images = np.take_along_axis(images, take.reshape(shape), axis=axis)
        return images

    def _pen(self, ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One pen per number: ink (N, H, W) float thickened (grey dilation) or thinned (grey erosion) by a random
        share (pen_change)."""
        plus = np.zeros((1, 3, 3), bool)  # one pixel in each of the four directions, within one image
        plus[0, 1, :] = plus[0, :, 1] = True
        grown, shrunk = ndimage.grey_dilation(ink, footprint=plus), ndimage.grey_erosion(ink, footprint=plus)
        change = uniform(rng, *self.pen_change, len(ink))
        return np.where(change[:, None, None] > 0, mix(ink, grown, np.maximum(change, 0)),
                        mix(ink, shrunk, np.maximum(-change, 0)))

    def _paper(self, count, height, width, extents, rng):
        """Dim paper (N, H, W) float32: a level, texture, and a printed pattern for some (see patterns)."""
        paper = uniform(rng, *self.paper_level, (count, 1, 1)).astype(np.float32)
        paper = paper + uniform(rng, *self.texture, (count, 1, 1)) \
            * smooth_noise(rng, count, height, width, self.texture_cell)
        shares = dict(self.patterns)
        names = list(shares)
        pattern = rng.choice(len(names) + 1, count, p=[*shares.values(), 1 - sum(shares.values())])
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        for number, name in enumerate(names):
            rows = np.nonzero(pattern == number)[0]
            if not len(rows):
                continue
            # A sheet lies a little askew on the scanner: u runs along its lines, v across them.
            skew = spread(rng, self.skew, (len(rows), 1, 1))
            u, v = xs + skew * ys, ys - skew * xs
            digit = extents[rows, 4][:, None, None]  # pixels per digit height
            top, bottom = extents[rows, 1][:, None, None], extents[rows, 3][:, None, None]
            left, right = extents[rows, 0][:, None, None], extents[rows, 2][:, None, None]
            drawn = getattr(self, f"_{name}")(rng, len(rows), u, v, digit, top, bottom, left, right)
            strength = uniform(rng, *self.pattern_strength, (len(rows), 1, 1))
            paper[rows] = paper[rows] + strength * drawn
        return paper

    def _ruled(self, rng, count, u, v, digit, top, bottom, left, right):
        """Ruled paper: lines a line-height apart, one on or just under the number's baseline."""
        spacing = digit * uniform(rng, *self.ruling, (count, 1, 1))
        baseline = bottom + digit * uniform(rng, *self.ruled_baseline, (count, 1, 1))
        return lines(v, spacing, baseline, uniform(rng, *self.ruled_width, (count, 1, 1)))

    def _grid(self, rng, count, u, v, digit, top, bottom, left, right):
        """Squared paper, fainter than ruling, a few squares per digit height."""
        spacing = digit * uniform(rng, *self.grid_square, (count, 1, 1))
        width = uniform(rng, *self.grid_width, (count, 1, 1))
        phase = uniform(rng, 0, 1, (count, 2, 1, 1)) * spacing[:, None]
        return self.grid_strength * np.maximum(lines(u, spacing, phase[:, 0], width),
                                               lines(v, spacing, phase[:, 1], width))

    def _guide_cells(self, rng, count, u, v, digit, top, bottom):
        """A form's row of cells for one character each: (cell width, left edge phase, box top, box bottom)."""
        cell = digit * uniform(rng, *self.cell, (count, 1, 1))
        phase = uniform(rng, 0, 1, (count, 1, 1)) * cell
        box_top = top - digit * uniform(rng, *self.cell_margin, (count, 1, 1))
        box_bottom = bottom + digit * uniform(rng, *self.cell_margin, (count, 1, 1))
        return cell, phase, box_top, box_bottom

    def _boxes(self, rng, count, u, v, digit, top, bottom, left, right):
        """Dotted guide boxes: one cell per character, outlined in dots."""
        cell, phase, box_top, box_bottom = self._guide_cells(rng, count, u, v, digit, top, bottom)
        dot = uniform(rng, *self.dot_period, (count, 1, 1))  # pixels from one dot to the next
        between = (v >= box_top) & (v <= box_bottom)
        upright = lines(u, cell, phase, self.form_width) * between * (np.mod(v, dot) < dot / 2)
        across = np.maximum(line(v - box_top, self.form_width), line(v - box_bottom, self.form_width))
        return np.maximum(upright, across * (np.mod(u, dot) < dot / 2))

    def _comb(self, rng, count, u, v, digit, top, bottom, left, right):
        """A comb field: a solid line under the number with short ticks up between the cells."""
        cell, phase, _, box_bottom = self._guide_cells(rng, count, u, v, digit, top, bottom)
        tick = digit * uniform(rng, *self.comb_tick, (count, 1, 1))
        ticks = lines(u, cell, phase, self.form_width) * (v <= box_bottom) * (v >= box_bottom - tick)
        return np.maximum(ticks, line(v - box_bottom, self.form_width))

    def _cheque(self, rng, count, u, v, digit, top, bottom, left, right):
        """A cheque's security background: fine wavy lines, fainter than any ruling."""
        wavelength = uniform(rng, *self.cheque_period, (count, 1, 1))
        angle = uniform(rng, *self.cheque_angle, (count, 1, 1))
        wave = uniform(rng, *self.cheque_wave, (count, 1, 1)) * np.sin(u / uniform(rng, *self.cheque_wavelength,
                                                                                     (count, 1, 1)))
        phase = 2 * np.pi * (u * np.cos(angle) + v * np.sin(angle)) / wavelength + wave
        return self.cheque_strength * np.clip(1 - np.abs(np.sin(phase / 2)) * self.cheque_sharpness, 0, 1)

    def _frame(self, rng, count, u, v, digit, top, bottom, left, right):
        """The printed box around an amount (a cheque's or form's field), often cut off by the crop."""
        margins = digit * uniform(rng, *self.frame_margin, (4, count, 1, 1))
        x0, x1 = left - margins[0], right + margins[1]
        y0, y1 = top - margins[2], bottom + margins[3]
        width = uniform(rng, *self.frame_width, (count, 1, 1))
        across = np.maximum(line(v - y0, width), line(v - y1, width)) * (u >= x0) * (u <= x1)
        upright = np.maximum(line(u - x0, width), line(u - x1, width)) * (v >= y0) * (v <= y1)
        return np.maximum(across, upright)


HANDWRITING = HandwritingLook()
AMOUNTS = replace(
    HANDWRITING,
    # One hand, but digits of more uneven size, spacing and height than MNIST numbers'.
    layout=replace(HANDWRITING.layout, gap=(-0.15, 0.4), size_jitter=0.18, baseline_jitter=0.09),
    separators=(("dot", 0.1), ("comma", 0.12), ("dash", 0.05), ("underline", 0.08)),
    closings=(("dash", 0.08), ("comma_dash", 0.07), ("equals", 0.04), ("flourish", 0.1)),
    opening_share=0.06,
    pen_level=(0.5, 1.0),  # a thin pen's strokes, narrower than a pixel once the scan is shrunk, come out dim
    clean_share=0.1,
    paper_level=(0, 0.06),  # a scan's paper level is taken off (data/photos.py's prepare_number): near black
    texture=(0, 0.12),  # a tinted, patterned paper: what is left of it once a scan's paper level is taken off
    patterns=(("ruled", 0.14), ("grid", 0.07), ("boxes", 0.07), ("comb", 0.07), ("cheque", 0.15), ("frame", 0.22)),
    pattern_strength=(0.12, 0.9),  # printed lines up to the ink's darkness, as a scan's stretch makes them
    cut_share=0.35,
)
