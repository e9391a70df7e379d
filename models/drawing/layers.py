"""Figures about what a model's layers respond to. Arrays in, matplotlib Figure out; callers save.

    from models.drawing import layers
    figure = layers.top_patches(patches, values, units, "conv2", layer.field_text)

Images are float32 (N, H, W, C) in [0, 1] with C = 1 (drawn in grey) or C = 3
(drawn in colour). Most figures are a single picture ("canvas") built here pixel
by pixel at the resolution the PNG is saved at, so that small patches can be
enlarged by whole pixels (nearest neighbour) and a grid of hundreds of tiles
costs one matplotlib image instead of hundreds of axes.
"""

import textwrap
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from models.drawing.style import DPI  # one canvas pixel is one pixel of the saved PNG

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


def enlarge(tile: np.ndarray, side: int) -> np.ndarray:
    """Nearest-neighbour resize of (h, w, ...) to (side, side, ...): every source pixel stays a visible block."""
    rows = np.arange(side) * tile.shape[0] // side
    columns = np.arange(side) * tile.shape[1] // side
    return tile[rows][:, columns]


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
    scaled = (maps - low) / np.maximum(high - low, 1e-12)
    tile = cell_side(max(height, width), 44)
    gap, row_gap = 3, 14
    rows, columns = grid_shape(channels, 7)
    block = rows * (tile + gap) - gap  # pixel height of one image's maps
    image_side = cell_side(images.shape[1], block)
    step = max(block, image_side) + row_gap
    left = image_side + 24
    canvas = Canvas(LABEL_PX + count * step, left + columns * (tile + gap))
    pictures = as_rgb(images)
    coloured = colour_mapped(scaled)
    for index in range(count):
        top = LABEL_PX + index * step
        canvas.paste(enlarge(pictures[index], image_side), top, 0)
        for channel in range(channels):
            row, column = divmod(channel, columns)
            canvas.paste(enlarge(coloured[index, ..., channel, :], tile),
                         top + row * (tile + gap), left + column * (tile + gap))
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
    """
    count, k, side = patches.shape[:3]
    tile = cell_side(side, target)
    gap, row_gap = 6, LABEL_PX + 4
    label_width = 64
    canvas = Canvas(count * (tile + row_gap) + 4, label_width + k * (tile + gap))
    pictures = as_rgb(patches)
    for row in range(count):
        top = row_gap + row * (tile + row_gap)
        canvas.text(label_width - 10, top + tile / 2, f"unit {units[row]}", ha="right", va="center")
        if row_notes:
            canvas.text(canvas.width + 8, top + tile / 2, row_notes[row], va="center", color="0.3")
        for column in range(k):
            left = label_width + column * (tile + gap)
            if np.isnan(values[row, column]):
                continue
            canvas.paste(enlarge(pictures[row, column], tile), top, left)
            canvas.text(left + tile / 2, top - 3, f"{values[row, column]:.3g}", ha="center", va="bottom",
                        fontsize=LABEL_SIZE - 1)
    return canvas


def top_patches(patches: np.ndarray, values: np.ndarray, units: list[int], layer: str, field: str):
    """For each unit (row), the k input patches (U, k, s, s, C) that excite it most, titled with the activation.

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
    """Equal RGB tiles (U, t, t, 3) in rows of `columns`, each under its label (one or two lines)."""
    count, tile = pictures.shape[:2]
    lines = max(label.count("\n") + 1 for label in labels)
    gap, row_gap = 8, lines * LABEL_PX + 2
    columns = min(columns, count)
    rows = -(-count // columns)
    canvas = Canvas(rows * (tile + row_gap) + 4, columns * (tile + gap))
    for index, (picture, label) in enumerate(zip(pictures, labels)):
        row, column = divmod(index, columns)
        top, left = row_gap + row * (tile + row_gap), column * (tile + gap)
        canvas.paste(picture, top, left)
        canvas.text(left + tile / 2, top - 3, label, ha="center", va="bottom", fontsize=LABEL_SIZE - 1,
                    linespacing=1.1)
    return canvas


def filter_patterns(patterns: np.ndarray, start: np.ndarray, end: np.ndarray, units: list[int], layer: str,
                    field_size: int | None = None, columns: int = 8):
    """Synthetic inputs (U, H, W, C) grown by gradient ascent to excite one unit each, titled start -> end activation.

    With field_size (input pixels), an orange square in each pattern's corner
    shows how much of it one unit sees: the ascent raises the unit's mean over
    every position, so a small field's pattern repeats across the image.
    """
    height = patterns.shape[1]
    scale = max(1, round(96 / height))
    pictures = np.stack([enlarge(picture, height * scale) for picture in as_rgb(patterns)])
    if field_size is not None and field_size < height:
        side = field_size * scale
        for edge in (np.s_[1:side + 1, 1:3], np.s_[1:side + 1, side - 1:side + 1],
                     np.s_[1:3, 1:side + 1], np.s_[side - 1:side + 1, 1:side + 1]):
            pictures[:, edge[0], edge[1]] = FIELD_COLOUR
    labels = [f"unit {unit}\n{before:.2g} → {after:.3g}" for unit, before, after in zip(units, start, end)]
    canvas = _labelled_grid(pictures, labels, columns)
    caption = "above each pattern: the unit, and its activation at the start → after the ascent"
    if field_size is not None and field_size < height:
        caption += (f"; orange square: the {field_size}x{field_size} px one unit sees (the ascent raises the "
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
    field_fraction: float  # receptive-field side / image side, 1 for the whole image
    units: list[int]  # the units shown
    patches: np.ndarray  # (U, k, s, s, C) floats in [0, 1]: the top patches of each unit


def hierarchy(rows: list[HierarchyRow], image_side: int):
    """Layer by layer (rows), what a few units respond to: each unit's top patches in a small block.

    Patches of every layer are enlarged to the same size, so a 3x3 patch shows
    as 3x3 large pixels; the square at the left of each row shows how much of the
    image one unit of the layer sees.
    """
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
        # The receptive field to scale: the image as a grey square, the field as a blue one at its centre.
        footprint = np.full((block, block, 3), 0.92, np.float32)
        side = max(2, round(block * min(row.field_fraction, 1)))
        start = (block - side) // 2
        footprint[start:start + side, start:start + side] = (0.35, 0.55, 0.85)
        canvas.paste(footprint, top, label_width)
        if row_index == 0:
            canvas.text(label_width + block / 2, top - 4, "field in image", ha="center", va="bottom",
                        fontsize=LABEL_SIZE - 1, color="0.3")
        pictures = as_rgb(row.patches)
        for unit in range(len(row.patches)):
            left = label_width + (unit + 1) * (block + gap)
            for index in range(k):
                r, c = divmod(index, per_side)
                canvas.paste(enlarge(pictures[unit, index], cell), top + r * (cell + inner),
                             left + c * (cell + inner))
            canvas.text(left + block / 2, top - 4, f"unit {row.units[unit]}", ha="center", va="bottom",
                        fontsize=LABEL_SIZE - 1, color="0.3")
    return canvas.figure(
        "From edges to digits: what units respond to, layer by layer",
        f"each block: the {k} test-image patches that excite one unit most, enlarged to one size (small patches "
        "show as large pixels); the blue square: how much of the "
        f"{image_side}x{image_side} image one unit sees, growing with depth until a dense unit sees all of it",
    )


def probe(layers: list[str], accuracies: list[float], train_images: int, test_images: int,
          chance: float = 0.1, features: list[int] | None = None):
    """Linear-probe test accuracy per layer in order of depth, each point labelled with its value."""
    figure, axis = plt.subplots(figsize=(max(5.5, 1.1 * len(layers) + 1.5), 3.8))
    depth = np.arange(len(layers))
    percent = 100 * np.asarray(accuracies)
    axis.plot(depth, percent, "-o", color="#2c6fb7", markersize=7, linewidth=2)
    for x, y in zip(depth, percent):
        axis.annotate(f"{y:.1f} %", (x, y), textcoords="offset points", xytext=(0, 9), ha="center", fontsize=9)
    axis.axhline(100 * chance, color="0.6", linestyle="--", linewidth=1)
    axis.text(depth[-1], 100 * chance + 1.5, "chance", ha="right", va="bottom", fontsize=8, color="0.45")
    tick_labels = layers if features is None else [f"{name}\n{count} features" for name, count in zip(layers, features)]
    axis.set_xticks(depth, tick_labels, fontsize=9)
    axis.set_xlim(-0.5, len(layers) - 0.5)
    axis.set_ylim(0, 112)  # room for the labels above points near 100 %
    axis.set_yticks(range(0, 101, 20))
    axis.set_ylabel("test accuracy (%)")
    axis.set_xlabel("layer, input → output")
    axis.grid(alpha=0.3)
    axis.set_title("How linearly readable the digit is after each layer", fontsize=TITLE_SIZE)
    figure.text(0.01, -0.02, f"logistic regression on each layer's output (conv maps: mean and max per channel), "
                f"trained on {train_images} training images, tested on {test_images} test images",
                fontsize=7.5, color="0.35", ha="left", va="top")
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
