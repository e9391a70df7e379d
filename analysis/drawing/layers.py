"""Figures about what a model's layers respond to. Arrays in, matplotlib Figure out; callers save.

    from analysis.drawing import layers
    figure = layers.top_patches(patches, values, units, "conv2", layer.field_text)

Images are float32 (N, H, W, C) in [0, 1] with C = 1 (drawn in grey) or C = 3
(drawn in colour), square (digits) or wide (a number reader's numbers). Most
figures are a single picture ("canvas") built here pixel by pixel at the
resolution the PNG is saved at, so that small patches can be enlarged by whole
pixels (nearest neighbour) and a grid of hundreds of tiles costs one matplotlib
image instead of hundreds of axes.
"""

import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from analysis.drawing.style import DPI  # one canvas pixel is one pixel of the saved PNG

BACKGROUND = 1.0  # white between tiles
FRAME = 0.75  # grey line around each tile, so white ink does not melt into the background
LABEL_PX = 16  # room above a tile for one line of 8-point text
TITLE_SIZE = 10
LABEL_SIZE = 8
MISTAKE_COLOUR = "#c0392b"
FIELD_COLOUR = (1.0, 0.5, 0.05)  # orange: a receptive field drawn onto an image


def as_rgb(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 1) or (..., H, W, 3) floats in [0, 1] -> (..., H, W, 3) RGB, clipped."""
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def enlarge(tile: np.ndarray, side: int, width: int | None = None) -> np.ndarray:
    """Nearest-neighbour resize of (h, w, ...) to (side, width or side, ...): each pixel stays a visible block."""
    width = side if width is None else width
    rows = np.arange(side) * tile.shape[0] // side
    columns = np.arange(width) * tile.shape[1] // width
    return tile[rows][:, columns]


def scaled(tile: np.ndarray, scale: int) -> np.ndarray:
    """(h, w, ...) enlarged `scale` times both ways, aspect kept."""
    return enlarge(tile, tile.shape[0] * scale, tile.shape[1] * scale)


def scale_for(shape: tuple[int, int], target: int) -> int:
    """The whole enlargement that brings the longer side of (h, w) near `target` (cell_side's factor)."""
    return max(1, round(target / max(shape)))


def fitted(tile: np.ndarray, side: int) -> np.ndarray:
    """(h, w, 3) enlarged to fit a side x side cell, aspect kept, centred on the background."""
    if tile.shape[0] == tile.shape[1]:
        return enlarge(tile, side)
    longer = max(tile.shape[:2])
    height, width = (max(1, round(length * side / longer)) for length in tile.shape[:2])
    cell = np.full((side, side, *tile.shape[2:]), BACKGROUND, np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    cell[top:top + height, left:left + width] = enlarge(tile, height, width)
    return cell


def cell_side(source: int, target: int) -> int:
    """A whole multiple of `source` pixels near `target`, so enlarged pixels are equal blocks."""
    return source * max(1, round(target / source))


def colour_mapped(values: np.ndarray, colour_map: str = "inferno") -> np.ndarray:
    """Scalars in [0, 1] (any shape) -> RGB through a matplotlib colour map."""
    return plt.get_cmap(colour_map)(np.clip(values, 0, 1))[..., :3].astype(np.float32)


@dataclass
class Canvas:
    """A white RGB picture that tiles are pasted into, plus the text to write over it."""

    height: int
    width: int

    def __post_init__(self):
        self.pixels = np.full((self.height, self.width, 3), BACKGROUND, np.float32)
        self.texts: list[tuple[float, float, str, dict]] = []

    def paste(self, tile: np.ndarray, top: int, left: int) -> None:
        """Put an RGB tile (h, w, 3) with its top-left corner at (top, left), framed by a 1-pixel grey line."""
        height, width = tile.shape[:2]
        self.pixels[max(top - 1, 0):top + height + 1, max(left - 1, 0):left + width + 1] = FRAME
        self.pixels[top:top + height, left:left + width] = tile

    def text(self, x: float, y: float, content: str, **style) -> None:
        self.texts.append((x, y, content, style))

    def figure(self, title: str | None = None, caption: str | None = None):
        """A figure showing the canvas at one pixel per saved pixel, with its texts, title and caption."""
        figure = plt.figure(figsize=(self.width / DPI, self.height / DPI))
        axis = figure.add_axes((0, 0, 1, 1))
        axis.imshow(self.pixels, interpolation="nearest")
        axis.set_xlim(-0.5, self.width - 0.5)
        axis.set_ylim(self.height - 0.5, -0.5)
        axis.set_axis_off()
        for x, y, content, style in self.texts:
            axis.text(x, y, content, **{"fontsize": LABEL_SIZE, "clip_on": False, **style})
        if title:
            axis.set_title(wrapped(title, self.width, TITLE_SIZE), fontsize=TITLE_SIZE, loc="left", pad=8)
        if caption:
            figure.text(0, -8 / self.height, wrapped(caption, self.width, LABEL_SIZE - 0.5),
                        fontsize=LABEL_SIZE - 0.5, color="0.35", va="top", ha="left")
        return figure


def wrapped(text: str, width_px: int, points: float) -> str:
    """`text` broken into lines that fit width_px pixels at `points` (an average character is ~0.55 em)."""
    characters = max(30, int(width_px / (0.55 * points * DPI / 72)))
    return "\n".join(textwrap.fill(line, characters) for line in text.split("\n"))


def grid_shape(count: int, aspect: float) -> tuple[int, int]:
    """(rows, columns) for `count` tiles, about `aspect` times wider than tall."""
    rows = max(1, round(np.sqrt(count / aspect)))
    return rows, -(-count // rows)


def feature_maps(images: np.ndarray, maps: np.ndarray, layer: str):
    """Each input image (N, H, W, C) beside its layer's output (N, h, w, c): one small map per channel.

    Each channel is scaled by its largest value over the shown images (black 0,
    yellow that maximum), so a channel can be compared across images.
    """
    count, height, width, channels = maps.shape
    low = maps.min(axis=(0, 1, 2), keepdims=True)
    high = maps.max(axis=(0, 1, 2), keepdims=True)
    low = np.minimum(low, 0)  # ReLU outputs start at 0; signed ones use their own range
    levels = (maps - low) / np.maximum(high - low, 1e-12)
    zoom = scale_for((height, width), 44)
    tile, tile_width = height * zoom, width * zoom
    gap, row_gap = 3, 14
    rows, columns = grid_shape(channels, 7 * tile / tile_width)
    block = rows * (tile + gap) - gap  # pixel height of one image's maps
    image_zoom = max(1, round(block / images.shape[1]))
    image_side, image_width = images.shape[1] * image_zoom, images.shape[2] * image_zoom
    step = max(block, image_side) + row_gap
    left = image_width + 24
    canvas = Canvas(LABEL_PX + count * step, left + columns * (tile_width + gap))
    pictures = as_rgb(images)
    coloured = colour_mapped(levels)
    for index in range(count):
        top = LABEL_PX + index * step
        canvas.paste(scaled(pictures[index], image_zoom), top, 0)
        for channel in range(channels):
            row, column = divmod(channel, columns)
            canvas.paste(scaled(coloured[index, ..., channel, :], zoom),
                         top + row * (tile + gap), left + column * (tile_width + gap))
    canvas.text(0, LABEL_PX - 4, "input", va="bottom")
    canvas.text(left, LABEL_PX - 4, f"{layer}: {channels} channels, {height}x{width} each "
                "(left to right, top to bottom)", va="bottom")
    return canvas.figure(
        f"Feature maps of {layer}: where in each image each channel responds",
        "black = 0, yellow = the channel's largest response over these images",
    )


def _patch_rows(patches: np.ndarray, values: np.ndarray, units: list[int], target: int,
                row_notes: list[str] | None = None):
    """A canvas with one row per unit: its k patches (U, k, s, s, C) enlarged, each titled with its value.

    NaN values mark missing patches (fewer images than k); row_notes go at the end of each row.
    Patches may be rectangles (s x t): enlarged by one whole factor, aspect kept.
    """
    count, k = patches.shape[:2]
    zoom = scale_for(patches.shape[2:4], target)
    tile, tile_width = patches.shape[2] * zoom, patches.shape[3] * zoom
    gap, row_gap = 6, LABEL_PX + 4
    label_width = 64
    canvas = Canvas(count * (tile + row_gap) + 4, label_width + k * (tile_width + gap))
    pictures = as_rgb(patches)
    for row in range(count):
        top = row_gap + row * (tile + row_gap)
        canvas.text(label_width - 10, top + tile / 2, f"unit {units[row]}", ha="right", va="center")
        if row_notes:
            canvas.text(canvas.width + 8, top + tile / 2, row_notes[row], va="center", color="0.3")
        for column in range(k):
            left = label_width + column * (tile_width + gap)
            if np.isnan(values[row, column]):
                continue
            canvas.paste(scaled(pictures[row, column], zoom), top, left)
            canvas.text(left + tile_width / 2, top - 3, f"{values[row, column]:.3g}", ha="center", va="bottom",
                        fontsize=LABEL_SIZE - 1)
    return canvas


def top_patches(patches: np.ndarray, values: np.ndarray, units: list[int], layer: str, field: str):
    """For each unit (row), the k input patches (U, k, s, t, C) that excite it most, titled with the activation.

    Each patch is the unit's whole receptive field (s x s input pixels; zeros
    beyond the image border), enlarged by whole pixels.
    """
    canvas = _patch_rows(patches, values, units, target=72)
    return canvas.figure(
        f"{layer}: the {patches.shape[1]} patches that excite each unit most ({field} receptive field)",
        "rows: the layer's most active units; left to right: strongest first, each image at most once; "
        "numbers: the unit's activation; a patch is exactly the part of the image the unit sees "
        "(black past the border)",
    )


def top_images(images: np.ndarray, values: np.ndarray, units: list[int], layer: str,
               labels: list[list[int]] | None = None):
    """For each unit of a dense layer (row), the k whole images (U, k, H, W, C) that excite it most.

    labels, per unit, the true digits of its images: written at the end of its row.
    """
    # The true digits make a unit's preference readable at a glance.
    notes = None if labels is None else ["digits: " + " ".join(map(str, row)) for row in labels]
    canvas = _patch_rows(images, values, units, target=64, row_notes=notes)
    caption = "one row per unit; numbers are the unit's activation"
    if labels is not None:
        caption += "; right: the true digit of each image"
    return canvas.figure(f"{layer}: the {images.shape[1]} test images that excite each unit most", caption)


def _labelled_grid(pictures: np.ndarray, labels: list[str], columns: int = 8) -> Canvas:
    """Equal RGB tiles (U, t, u, 3) in rows of `columns`, each under its label (one or two lines)."""
    count, tile, tile_width = pictures.shape[:3]
    lines = max(label.count("\n") + 1 for label in labels)
    gap, row_gap = 8, lines * LABEL_PX + 2
    columns = min(columns, count)
    rows = -(-count // columns)
    canvas = Canvas(rows * (tile + row_gap) + 4, columns * (tile_width + gap))
    for index, (picture, label) in enumerate(zip(pictures, labels)):
        row, column = divmod(index, columns)
        top, left = row_gap + row * (tile + row_gap), column * (tile_width + gap)
        canvas.paste(picture, top, left)
        canvas.text(left + tile_width / 2, top - 3, label, ha="center", va="bottom", fontsize=LABEL_SIZE - 1,
                    linespacing=1.1)
    return canvas


def filter_patterns(patterns: np.ndarray, start: np.ndarray, end: np.ndarray, units: list[int], layer: str,
                    field_size: int | tuple[int, int] | None = None, columns: int = 8):
    """Synthetic inputs (U, H, W, C) grown by gradient ascent to excite one unit each, titled start -> end activation.

    With field_size (input pixels: a square's side, or a rectangle's (height,
    width)), an orange square or rectangle in each pattern's corner shows how
    much of it one unit sees: the ascent raises the unit's mean over every
    position, so a small field's pattern repeats across the image. Wide
    patterns (a number reader's) get fewer per row.
    """
    height, width = patterns.shape[1:3]
    scale = max(1, round(96 / height))
    columns = columns if width <= height else max(1, columns * height // width)
    pictures = np.stack([scaled(picture, scale) for picture in as_rgb(patterns)])
    field_height, field_width = (field_size, field_size) if isinstance(field_size, int) else field_size or (0, 0)
    marked = field_size is not None and (field_height < height or field_width < width)
    if marked:
        # Clipped to the picture: a field may reach past the image (zero padding).
        side = min(field_height * scale, pictures.shape[1] - 2)
        across = min(field_width * scale, pictures.shape[2] - 2)
        for edge in (np.s_[1:side + 1, 1:3], np.s_[1:side + 1, across - 1:across + 1],
                     np.s_[1:3, 1:across + 1], np.s_[side - 1:side + 1, 1:across + 1]):
            pictures[:, edge[0], edge[1]] = FIELD_COLOUR
    labels = [f"unit {unit}\n{before:.2g} → {after:.3g}" for unit, before, after in zip(units, start, end)]
    canvas = _labelled_grid(pictures, labels, columns)
    caption = "above each pattern: the unit, and its activation at the start → after the ascent"
    if marked:
        shape = "square" if field_height == field_width else "rectangle"
        caption += (f"; orange {shape}: the {field_height}x{field_width} px one unit sees (the ascent raises the "
                    "unit's mean over all positions, so the pattern repeats)")
    return canvas.figure(f"{layer}: input patterns that excite each unit most (gradient ascent from noise)", caption)


def dense_templates(kernel: np.ndarray, image_shape: tuple[int, int, int], units: list[int], layer: str,
                    trained: np.ndarray | None = None, columns: int = 8):
    """The weights (P, units) of a dense layer fed straight by the image, one picture per unit.

    Greyscale: red pixels raise the unit's activation when inked, blue ones lower it,
    white is 0, each unit scaled to its own largest |weight|. Colour images: grey is
    0 and a colour means the unit likes that colour there. `trained` (H, W) bool
    marks the pixels that carry ink often enough to train their weights; the
    others keep about their random start and are drawn flat grey.
    """
    height, width, channels = image_shape
    weights = kernel[:, units].T.reshape(len(units), height, width, channels)
    if trained is None:
        trained = np.ones((height, width), bool)
    peak = np.abs(weights * trained[..., np.newaxis]).max(axis=(1, 2, 3), keepdims=True)
    weights = np.clip(weights / np.maximum(peak, 1e-12), -1, 1)
    if channels == 1:
        pictures = colour_mapped(0.5 + weights[..., 0] / 2, "RdBu_r")
        caption = "red: ink there raises the unit's activation, blue: lowers it; scaled per unit to its largest weight"
    else:
        pictures = np.clip(0.5 + weights / 2, 0, 1)
        caption = "grey: weight 0; a colour: the unit favours that colour there; scaled per unit to its largest weight"
    pictures[:, ~trained] = 0.8
    if not trained.all():
        caption += "; flat grey: pixels almost never inked in training, whose weights stay near their random start"
    tile = cell_side(height, 84)
    canvas = _labelled_grid(np.stack([enlarge(picture, tile) for picture in pictures]),
                            [f"unit {unit}" for unit in units], columns)
    return canvas.figure(f"{layer}: each unit's weights on the input pixels (its template)", caption)


@dataclass(frozen=True)
class HierarchyRow:
    """One layer of the hierarchy figure."""

    layer: str
    field: str  # e.g. "8x8 px" or "whole image"
    meaning: str  # e.g. "strokes"
    # receptive-field side / image side, 1 for the whole image; (height, width) fractions for a rectangle
    field_fraction: float | tuple[float, float]
    units: list[int]  # the units shown
    patches: np.ndarray  # (U, k, s, t, C) floats in [0, 1]: the top patches of each unit


def hierarchy(rows: list[HierarchyRow], image_side: int | tuple[int, int], dense_head: bool = True):
    """Layer by layer (rows), what a few units respond to: each unit's top patches in a small block.

    Patches of every layer are enlarged to the same size, so a 3x3 patch shows
    as 3x3 large pixels (a rectangle's longer side fills the cell); the square at
    the left of each row shows how much of the image one unit of the layer sees.
    image_side is a square image's side, or a wide image's (height, width); dense_head says whether the
    model ends in dense units that see the whole image (a number reader's ends in columns).
    """
    image_height, image_width = (image_side, image_side) if isinstance(image_side, int) else image_side
    units = max(len(row.patches) for row in rows)
    k = rows[0].patches.shape[1]
    per_side = int(np.ceil(np.sqrt(k)))  # the top-k patches of a unit in a per_side x per_side block
    cell, inner, gap = 52, 5, 16
    block = per_side * (cell + inner) - inner
    label_width, row_gap = 185, LABEL_PX + 8
    canvas = Canvas(len(rows) * (block + row_gap) + 4, label_width + (units + 1) * (block + gap))
    for row_index, row in enumerate(rows):
        top = row_gap + row_index * (block + row_gap)
        canvas.text(0, top + block / 2 - 9, f"{row.layer} · {row.field}", fontweight="bold", va="center",
                    fontsize=LABEL_SIZE + 1)
        canvas.text(0, top + block / 2 + 9, row.meaning, va="center", fontsize=LABEL_SIZE + 1, color="0.3")
        # The receptive field to scale: the image as a grey box, the field as a blue one at its centre.
        footprint = np.full((block, block, 3), BACKGROUND, np.float32)
        box = [round(block * length / max(image_height, image_width)) for length in (image_height, image_width)]
        fractions = row.field_fraction if isinstance(row.field_fraction, tuple) else (row.field_fraction,) * 2
        field = [max(2, round(length * min(fraction, 1))) for length, fraction in zip(box, fractions)]
        (box_top, box_left), (field_top, field_left) = ([(block - length) // 2 for length in sizes]
                                                        for sizes in (box, field))
        footprint[box_top:box_top + box[0], box_left:box_left + box[1]] = 0.92
        footprint[field_top:field_top + field[0], field_left:field_left + field[1]] = (0.35, 0.55, 0.85)
        canvas.paste(footprint, top, label_width)
        if row_index == 0:
            canvas.text(label_width + block / 2, top - 4, "field in image", ha="center", va="bottom",
                        fontsize=LABEL_SIZE - 1, color="0.3")
        pictures = as_rgb(row.patches)
        for unit in range(len(row.patches)):
            left = label_width + (unit + 1) * (block + gap)
            for index in range(k):
                r, c = divmod(index, per_side)
                canvas.paste(fitted(pictures[unit, index], cell), top + r * (cell + inner),
                             left + c * (cell + inner))
            canvas.text(left + block / 2, top - 4, f"unit {row.units[unit]}", ha="center", va="bottom",
                        fontsize=LABEL_SIZE - 1, color="0.3")
    caption = (f"each block: the {k} test-image patches that excite one unit most, enlarged to one size (small "
               "patches show as large pixels); the blue square: how much of the "
               f"{image_height}x{image_width} image one unit sees, growing with depth until a dense unit sees all "
               "of it")
    if not dense_head:  # a number reader's trunk: rectangular fields, no dense units
        caption = (f"each block: the {k} test-image patches that excite one unit most, enlarged to one size (small "
                   "patches show as large pixels, a rectangle's longer side filling the cell); the blue box: how much "
                   f"of the {image_height}x{image_width} image (grey) one unit sees, growing with depth")
    return canvas.figure("From edges to digits: what units respond to, layer by layer", caption)


def probe(layers: list[str], accuracies: list[float], train_images: int, test_images: int,
          chance: float = 0.1, features: list[int] | None = None, target: str = "digit",
          chance_label: str = "chance", note: str | None = None):
    """Linear-probe test accuracy per layer in order of depth, each point labelled with its value.

    target names what the probes read (a number reader's: "number's first digit"); chance_label the dashed
    line at `chance`; note, if any, ends the caption.
    """
    figure, axis = plt.subplots(figsize=(max(5.5, 1.1 * len(layers) + 1.5), 3.8))
    depth = np.arange(len(layers))
    percent = 100 * np.asarray(accuracies)
    axis.plot(depth, percent, "-o", color="#2c6fb7", markersize=7, linewidth=2)
    for x, y in zip(depth, percent):
        axis.annotate(f"{y:.1f} %", (x, y), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=9)
    axis.axhline(100 * chance, color="0.6", linestyle="--", linewidth=1)
    axis.text(depth[-1], 100 * chance + 1.5, chance_label, ha="right", va="bottom", fontsize=8, color="0.45")
    tick_labels = layers if features is None else [f"{name}\n{count} features" for name, count in zip(layers, features)]
    axis.set_xticks(depth, tick_labels, fontsize=9)
    axis.set_xlim(-0.5, len(layers) - 0.5)
    axis.set_ylim(0, 112)  # room for the labels above points near 100 %
    axis.set_yticks(range(0, 101, 20))
    axis.set_ylabel("test accuracy (%)")
    axis.set_xlabel("layer, input → output")
    axis.grid(alpha=0.3)
    axis.set_title(f"How linearly readable the {target} is after each layer", fontsize=TITLE_SIZE)
    caption = (f"logistic regression on each layer's output (conv maps: mean and max per channel), "
               f"trained on {train_images} training images, tested on {test_images} test images")
    if note is not None:
        caption = wrapped(f"{caption}; {note}", int(figure.get_figwidth() * DPI), 7.5)
    figure.text(0.01, -0.02, caption, fontsize=7.5, color="0.35", ha="left", va="top")
    figure.tight_layout()
    return figure


def grad_cam(images: np.ndarray, heatmaps: np.ndarray, true_labels, predicted_labels, layer: str,
             columns: int = 4):
    """Each image (N, H, W, C) beside a heatmap (N, H, W) in [0, 1] laid over it, titled true → predicted.

    Correct predictions and mistakes get their own rows; a mistake's title is red.
    """
    true_labels, predicted_labels = np.asarray(true_labels), np.asarray(predicted_labels)
    wrong = true_labels != predicted_labels
    groups = [("correct", np.flatnonzero(~wrong)), ("mistakes", np.flatnonzero(wrong))]
    groups = [(name, members) for name, members in groups if len(members)]
    side = cell_side(images.shape[1], 84)
    gap, pair_gap, row_gap, label_width = 4, 22, LABEL_PX + 6, 70
    rows = [(name, members[start:start + columns]) for name, members in groups
            for start in range(0, len(members), columns)]
    canvas = Canvas(len(rows) * (side + row_gap) + 4, label_width + columns * (2 * side + gap + pair_gap))
    pictures = as_rgb(images)
    heat = colour_mapped(heatmaps, "jet")
    # Cold regions keep the image visible; the hotter a pixel, the more of the colour shows.
    weight = 0.65 * heatmaps[..., np.newaxis]
    overlays = (1 - weight) * pictures + weight * heat
    previous = None
    for row_index, (name, members) in enumerate(rows):
        top = row_gap + row_index * (side + row_gap)
        if name != previous:
            canvas.text(label_width - 10, top + side / 2, name, ha="right", va="center", fontweight="bold",
                        color=MISTAKE_COLOUR if name == "mistakes" else "black")
            previous = name
        for column, index in enumerate(members):
            left = label_width + column * (2 * side + gap + pair_gap)
            canvas.paste(enlarge(pictures[index], side), top, left)
            canvas.paste(enlarge(overlays[index], side), top, left + side + gap)
            canvas.text(left + side + gap / 2, top - 3,
                        f"true {true_labels[index]} → predicted {predicted_labels[index]}",
                        ha="center", va="bottom", color=MISTAKE_COLOUR if wrong[index] else "black")
    return canvas.figure(
        f"Grad-CAM at {layer}: which parts of the image the predicted digit's score relies on",
        "left: the test image; right: red = the region that raised the score of the predicted digit most",
    )


def digit_evidence(images: np.ndarray, heatmaps: np.ndarray, read, probabilities, columns, column_width: float,
                   truths, layer: str):
    """For each number (row): the image, then one panel per digit read, showing where that digit's evidence lies.

    images (N, H, W, C); heatmaps (N, L, H, W) in [0, 1]; read and columns
    (N, L) int: the digits read and the column each was read at, then -1;
    probabilities (N, L): each digit's probability in its column; column_width:
    input pixels per column; truths (N, L): the true digits, then -1. Correct
    readings and mistakes get their own groups; a mistake's label is red. An
    orange bar under each panel marks the pixels of the column that read the digit.
    """
    read, columns, truths = (np.asarray(values) for values in (read, columns, truths))
    numbers = [("".join(str(digit) for digit in row if digit >= 0)) for row in truths]
    readings = [("".join(str(digit) for digit in row if digit >= 0)) for row in read]
    wrong = np.array([number != reading for number, reading in zip(numbers, readings)], bool)
    groups = [(name, np.flatnonzero(members)) for name, members in (("correct", ~wrong), ("mistakes", wrong))]
    groups = [(name, members) for name, members in groups if len(members)]
    zoom = scale_for(images.shape[1:3], 192)
    tile, tile_width = images.shape[1] * zoom, images.shape[2] * zoom
    panels = max(1, int((read >= 0).sum(axis=1).max(initial=0)))
    gap, bar, label_width = 10, 4, 70
    row_gap = LABEL_PX + 6
    step = tile + bar + 3 + row_gap
    canvas = Canvas(len(read) * step + row_gap, label_width + (1 + panels) * (tile_width + gap))
    pictures = as_rgb(images)
    row_index = 0
    for name, members in groups:
        for number, index in enumerate(members):
            top = row_gap + row_index * step
            row_index += 1
            colour = MISTAKE_COLOUR if wrong[index] else "black"
            if number == 0:
                canvas.text(label_width - 10, top + tile / 2, name, ha="right", va="center", fontweight="bold",
                            color=MISTAKE_COLOUR if name == "mistakes" else "black")
            canvas.paste(scaled(pictures[index], zoom), top, label_width)
            canvas.text(label_width + tile_width / 2, top - 3,
                        f"true {numbers[index]} → read {readings[index] or '(nothing)'}", ha="center",
                        va="bottom", color=colour)
            for slot in np.flatnonzero(read[index] >= 0):
                left = label_width + (1 + slot) * (tile_width + gap)
                weight = 0.65 * heatmaps[index, slot][..., np.newaxis]
                overlay = (1 - weight) * pictures[index] + weight * colour_mapped(heatmaps[index, slot], "jet")
                canvas.paste(scaled(overlay, zoom), top, left)
                canvas.text(left + tile_width / 2, top - 3,
                            f"digit {read[index, slot]}, p = {probabilities[index, slot]:.2f}", ha="center",
                            va="bottom")
                start = round(columns[index, slot] * column_width * zoom)
                stop = min(round((columns[index, slot] + 1) * column_width * zoom), tile_width)
                canvas.pixels[top + tile + 3:top + tile + 3 + bar, left + start:left + stop] = FIELD_COLOUR
    return canvas.figure(
        f"What the reader looked at for each digit it read (evidence at {layer})",
        "left: the test number, its true and read digits; then one panel per digit read, titled with the digit and "
        "its probability in the column that read it: red = where the features that raised that digit's "
        f"log-probability lie (gradient × activation at {layer} per position, upsampled); orange bar: the column "
        f"that read it ({column_width:g} px of the image across)",
    )
