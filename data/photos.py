"""Photos and scans into the pixels a model was trained on: a digit for a classifier, a whole number for a reader.

Every preparation of a photo for a model is here: prepare (one digit, MNIST-style
handwriting or SVHN-style street) and prepare_number (a whole number).

    from data.photos import read_image, prepare, prepare_number
    pixels = prepare(read_image("bus.jpg"), (28, 28, 1))   # uint8 (28, 28, 1), white digit on black
    pixels = prepare_number(read_image("door.jpg"), (32, 96, 3))   # uint8 (32, 96, 3), the number fitted

A handwritten digit (one channel), as the original MNIST was prepared, from a photo
as a phone takes it: a card lying on a table is found and read alone
(paper_patch); the ink is told from the paper, dark or light, by its
difference from the paper's local level, so shadows and uneven light drop out
(ink_cover); the digit is the strongest connected set of strokes, without the
specks around it (digit_strokes); its bounding box is scaled, aspect kept and
antialiased, so its longer side is 20 of 28 pixels, white on black; then it is
placed so that its centre of mass sits at the centre of the 28x28 field.
bench/photo_digits.py measures it on photo-like MNIST test digits.

A street digit (three channels): RGB; the shorter side is padded by repeating
the edge pixels to make a square (the SVHN crops are squares around the digit,
and the street augmentation fills with edge pixels too), then resized to 32x32.
A picture whose square would exceed MAX_PIXELS (a long thin strip) is shrunk
first, so the square stays small.

Whole numbers (prepare_number): the photo, roughly cropped around the number,
is fitted to the reader's input as the number data sets fit their pictures
(data/framing.py: aspect kept, centred, edges repeated); a handwriting reader's
photo first becomes bright ink on black.
"""

import math
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from data.framing import fit_to_input
from harness.errors import UserError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (about 200 MB as RGB)
MIN_SIDE = 8  # pixels: a narrower strip cannot show a digit
DIGIT_SHARE = 20 / 28  # MNIST: the digit's longer side fills 20 of the 28 pixels
INK_FLOOR = 0.15  # ink below this share of the strongest stroke is paper texture or noise, set to black
MIN_CONTRAST = 12  # grey levels between paper and the strongest ink (in full light); less is a blank picture
NOISE_MARGIN = 4  # ... and ink stands at least this many times the paper's own grain above it
DENSE_INK = 0.2  # share of the picture's grey range: differences from the paper's level spread this wide mean
#                  the level is the ink's, not the paper's
WORK_SIDE = 320  # pixels: photos are shrunk to this longer side before the digit is looked for
LEVEL_SIDE = 48  # pixels: shorter side of the coarse copy on which the paper's level is found
LEVEL_WINDOW = 0.8  # share of the shorter side: the window whose median is the paper's level
STROKE_WINDOW = 0.3  # share of the shorter side: ink strokes are narrower than this
MIN_PAPER = 32  # grey levels: ink is measured relative to the paper, but never relative to less than this
STROKE_LEVEL = 0.35  # share of the strongest ink: pixels at least this strong make up the strokes' skeleton
PIECE_MASS = 0.05  # a separate piece of ink belongs to the digit if at least this share of the main piece's mass
PIECE_REACH = 0.5  # ... and if it lies within this share of the main piece's size from it
PATCH_AREA = 0.04  # a card covers at least this share of the picture
PATCH_UNMARKED = 0.7  # ... and ink covers at most the rest of it
PATCH_ROUNDNESS = 0.3  # a card's widest inscribed circle has a radius of at least this share of its area's root
PATCH_RECTANGULARITY = 0.85  # ... and of the smallest rectangle around it, turned any way (an ellipse: 0.79)
PATCH_STROKE = 0.12  # the marks on a card are strokes at most this share of its area's root in half-width
PATCH_STEP = 1.2  # the card's edge, just inside, is at least this many times brighter than just outside
PATCH_THRESHOLDS = (1.0, 0.85, 0.7, 0.55)  # shares of Otsu's grey level tried as the card's lower bound
PATCH_MARGIN = 0.02  # share of the shorter side left out along the card's edge


class PhotoError(UserError):
    """One image cannot be used; the message says why (the file name is added by the caller)."""


def read_image(path: Path):
    """A fully decoded PIL image, upright as the camera saw it (EXIF orientation applied).

    Raises PhotoError for a missing, unreadable, empty, damaged, non-image, tiny or huge file.
    """
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise PhotoError("no such file") from None
    except PermissionError:
        raise PhotoError("permission denied") from None
    except OSError as error:  # a symbolic link that loops, a name too long, ...
        raise PhotoError(f"cannot be opened ({error.strerror or error})") from None
    if stat.S_ISDIR(status.st_mode):
        raise PhotoError("is a folder, not an image file")
    if not stat.S_ISREG(status.st_mode):
        raise PhotoError("is not a regular file (a device, a pipe or a socket), so not an image file")
    if status.st_size == 0:
        raise PhotoError("the file is empty")
    try:
        # Pillow warns about what it skips in damaged metadata and about large images; the image is
        # either refused below, in one line, or read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise PhotoError(f"{width}x{height} pixels is too large (at most {MAX_PIXELS:,} pixels); "
                                     f"crop or shrink it")
                if min(width, height) < MIN_SIDE:
                    raise PhotoError(f"{width}x{height} pixels is too small to show a digit (at least {MIN_SIDE} "
                                     f"pixels each way)")
                image.load()
                return ImageOps.exif_transpose(image)
    except PermissionError:
        raise PhotoError("permission denied") from None
    except UnidentifiedImageError:
        raise PhotoError("not an image Pillow can read (give a PNG or JPEG)") from None
    except Image.DecompressionBombError as error:
        raise PhotoError(f"too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data inside a known format
        raise PhotoError(f"the image data is damaged ({error})") from None


def _flattened(image, mode: str):
    """`image` in mode "L" or "RGB", transparent parts shown over white paper."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
    return image.convert(mode)


def _working_copy(image) -> tuple[np.ndarray, np.ndarray]:
    """(grey, whiteness), each (h, w) float32 0..255, of `image` shrunk (proportions kept) so its longer side
    is at most WORK_SIDE: the result is 28 pixels wide, and the filters below cost in proportion to the
    pixels. Grey is the luminance; whiteness the weakest of the three colours, which stays high on white
    paper but falls on a coloured surface however bright (a green table is as bright as a card in grey)."""
    rgb = _flattened(image, "RGB")
    scale = WORK_SIDE / max(rgb.size)
    if scale < 1:
        rgb = rgb.resize(tuple(max(MIN_SIDE, round(side * scale)) for side in rgb.size), Image.Resampling.BOX)
    grey = np.asarray(rgb.convert("L"), np.float32)
    return grey, np.asarray(rgb, np.float32).min(axis=2)


def paper_level(grey: np.ndarray) -> np.ndarray:
    """(h, w) float32: the level of the paper (or board) around each pixel of `grey` (h, w).

    The median over a window nearly as wide as the picture's shorter side (LEVEL_WINDOW): ink covers less than
    half of any such window, so the median is the paper's level there, whatever the light does. A gradient
    (linear) and a shadow's straight edge pass through a median unchanged; a stroke does not. Computed on a
    coarse copy, then enlarged smoothly, because a median over a large window is slow at full size.
    """
    height, width = grey.shape
    coarse = _coarse(grey)
    window = max(3, round(LEVEL_WINDOW * min(coarse.shape)))
    level = ndimage.median_filter(coarse, size=window, mode="nearest")
    return np.asarray(Image.fromarray(level, "F").resize((width, height), Image.Resampling.BILINEAR))


def _coarse(grey: np.ndarray) -> np.ndarray:
    """`grey` (h, w) box-averaged down so its shorter side is about LEVEL_SIDE pixels (never enlarged)."""
    height, width = grey.shape
    shrink = max(1.0, min(height, width) / LEVEL_SIDE)
    size = (max(1, round(width / shrink)), max(1, round(height / shrink)))  # PIL: (width, height)
    return np.asarray(Image.fromarray(grey, "F").resize(size, Image.Resampling.BOX))


def _otsu_threshold(values: np.ndarray) -> float:
    """The grey level that splits `values` into two classes with the largest between-class variance (Otsu)."""
    counts, edges = np.histogram(values, bins=64, range=(0, 256))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)[:-1]
    above = values.size - below
    sum_below = np.cumsum(counts * centres)[:-1]
    mean_below = sum_below / np.maximum(below, 1)
    mean_above = (np.sum(counts * centres) - sum_below) / np.maximum(above, 1)
    return float(edges[1:-1][np.argmax(below * above * (mean_below - mean_above) ** 2)])


def _sides_touched(box: tuple[slice, slice], shape: tuple[int, int]) -> int:
    """How many of a picture's four sides the bounding box (rows, columns) touches."""
    return (box[0].start == 0) + (box[1].start == 0) + (box[0].stop == shape[0]) + (box[1].stop == shape[1])


def _rectangle_area(mask: np.ndarray) -> float:
    """Area (pixels) of the smallest rectangle, turned any way, around a 2-D bool mask's pixels (unit squares):
    one of its sides lies along an edge of their convex hull."""
    rows, cols = np.nonzero(mask)
    corners = np.concatenate([np.stack([cols + dx, rows + dy], 1) for dy in (0, 1) for dx in (0, 1)]).astype(float)
    try:
        hull = corners[ConvexHull(corners).vertices]
    except QhullError:  # all in a line: no area
        return float(mask.sum())
    edges = np.roll(hull, -1, axis=0) - hull
    along = edges / np.linalg.norm(edges, axis=1, keepdims=True)  # (E, 2) unit vectors
    across = along[:, ::-1] * np.array([-1, 1])
    lengths = np.ptp(hull @ along.T, axis=0)
    widths = np.ptp(hull @ across.T, axis=0)
    return float((lengths * widths).min())


def paper_patch(whiteness: np.ndarray) -> np.ndarray | None:
    """(h, w) bool: a card or sheet of paper that lies on a darker or coloured surface, or None, in `whiteness`
    (h, w): the weakest colour of each pixel (see _working_copy).

    Such a patch is a bright, solid region, mostly inside the picture (touching at most one side), much
    brighter than what lies just outside its edge, and marked only a little by the ink on it. The bright
    part of paper half in shadow or at the light end of a gradient is not: it touches two or more sides, or
    its edge is a gentle slope.
    """
    coarse = _coarse(whiteness)
    height, width = whiteness.shape
    best, best_area = None, 0  # the largest card found so far, at full size, and its area on the coarse copy
    # A shadow across the card makes part of it darker than Otsu's threshold: lower ones are tried too (the
    # checks refuse a threshold so low that the card runs into the surface).
    for threshold in _otsu_threshold(coarse) * np.array(PATCH_THRESHOLDS):
        candidate = _brightest_patch(coarse, threshold)
        if candidate is None or candidate.sum() <= best_area:
            continue
        patch = np.asarray(Image.fromarray(candidate.astype(np.uint8) * 255).resize((width, height),
                                                                                    Image.Resampling.BILINEAR)) > 127
        # What is written on a card is pen strokes, thin beside the card. The dark inside a light 0 or 8 on
        # a dark ground (a white digit, a display's segments) is wide: that is a digit, not a card.
        marks = patch & (whiteness <= threshold)
        if marks.any() and ndimage.distance_transform_edt(marks).max() > PATCH_STROKE * np.sqrt(patch.sum()):
            continue
        best, best_area = patch, candidate.sum()
    if best is None:
        return None
    # Stepping in from the edge leaves out its antialiased border and the patch's own shadow.
    return ndimage.binary_erosion(best, iterations=max(1, round(PATCH_MARGIN * min(height, width))))


def _brightest_patch(coarse: np.ndarray, threshold: float) -> np.ndarray | None:
    """The largest region of `coarse` (h, w) above `threshold` that passes paper_patch's checks, or None."""
    light = coarse > threshold
    bright = ndimage.label(light)[0]
    dark = ndimage.label(~light)[0]
    best = None
    for index, box in enumerate(ndimage.find_objects(bright), start=1):
        part = bright == index
        filled = ndimage.binary_fill_holes(part)
        area = filled.sum()
        if (_sides_touched(box, coarse.shape) > 1 or area < PATCH_AREA * coarse.size
                or part.sum() < PATCH_UNMARKED * area
                or (best is not None and area <= best.sum())):
            continue
        # Wide, not a stroke: a chalk 1 on a board is bright and solid too, but thin. And a rectangle, however
        # turned: a white 0 or 8 on black is a bright, solid, marked region too, but round or pinched.
        if (ndimage.distance_transform_edt(np.pad(filled, 1)).max() < PATCH_ROUNDNESS * np.sqrt(area)
                or area < PATCH_RECTANGULARITY * _rectangle_area(filled)):
            continue
        inside = filled & ~ndimage.binary_erosion(filled, iterations=2)
        outside = ndimage.binary_dilation(filled, iterations=2) & ~filled
        if np.median(coarse[inside]) < PATCH_STEP * max(np.median(coarse[outside]), 1.0):
            continue
        # What surrounds it is a surface that reaches the picture's sides, not a pen's loop around paper
        # (the inside of a large 0).
        around = np.bincount(dark[outside], minlength=dark.max() + 1)[1:]
        if around.size == 0 or around.max() == 0:
            continue
        surface = ndimage.find_objects((dark == around.argmax() + 1).astype(int))[0]
        if _sides_touched(surface, coarse.shape) >= 2:
            best = filled
    return best


def on_card(grey: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """The card `patch` (h, w) bool of `grey` (h, w) alone: cropped to it, with the surface the crop still
    shows replaced by the card's own level."""
    rows, cols = np.nonzero(patch)
    crop = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return np.where(patch[crop], grey[crop], np.median(grey[patch])).astype(np.float32)


def light_ink(grey: np.ndarray) -> bool:
    """Whether the ink in `grey` (h, w) is lighter than the paper (chalk on a board, a lit display).

    The ink's side of the paper's level (paper_level) holds the large differences. Where the ink covers
    most of the picture (a large bold digit), that level is no longer the paper's and the differences
    are as wide as the picture's range: then the paper is told by the frame, which it fills.
    """
    deviation = grey - paper_level(grey)
    noise = 1.4826 * np.median(np.abs(deviation)) + 1.0  # grey levels: the paper's own grain and the sensor's
    if noise > DENSE_INK * np.ptp(grey):
        return border_mean(grey) < grey.mean()
    dark, light = np.clip(-deviation, 0, None), np.clip(deviation, 0, None)
    return bool(np.square(light[light > 3 * noise]).sum() > np.square(dark[dark > 3 * noise]).sum())


def border_mean(grey: np.ndarray) -> float:
    """Mean of the outer frame (about 5 % of the side, at least one pixel) of a 2-D array."""
    frame = max(1, round(0.05 * min(grey.shape)))
    mask = np.ones(grey.shape, bool)
    mask[frame:-frame, frame:-frame] = False
    return float(grey[mask].mean())


def ink_cover(grey: np.ndarray) -> np.ndarray:
    """(h, w) float32 in 0..1: how strongly each pixel of `grey` (h, w) is ink, light or dark.

    Which is ink, the dark or the light, is told by light_ink. The paper under dark ink is then the picture
    with every dark feature narrower than STROKE_WINDOW filled in (a grey closing; a light one is opened away
    likewise): unlike the median it keeps the sharp edge of a shadow where it is, and strokes drawn close
    together do not pull it. The ink's difference from that paper is taken relative to it, so a stroke in a shadow or at
    the dark end of a gradient counts as much as one in full light.
    """
    window = max(3, round(STROKE_WINDOW * min(grey.shape)))
    # Past the picture's edges the light is continued as it goes (point reflection), so that a gradient
    # running into an edge does not look like a stroke there.
    margin = window // 2 + 1
    padded = np.pad(grey, margin, mode="reflect", reflect_type="odd")
    inside = (slice(margin, -margin), slice(margin, -margin))
    if light_ink(grey):
        board = ndimage.grey_opening(padded, size=window)[inside]
        # Measured from white down, so that a picture and its negative give the same cover.
        return np.clip(grey - board, 0, None) / np.maximum(255.0 - board, MIN_PAPER)
    paper = ndimage.grey_closing(padded, size=window)[inside]
    return np.clip(paper - grey, 0, None) / np.maximum(paper, MIN_PAPER)


def digit_strokes(cover: np.ndarray) -> np.ndarray:
    """(h, w) float32 in 0..1: `cover` kept on the digit's strokes only, zero elsewhere.

    The digit is the strongest connected set of ink; pieces of it that a gap splits off (a 5's bar, a 4's
    open top) are kept when they are heavy enough and lie beside it. Specks of paper grain, a table's
    texture around a card and the card's shadow are dropped.
    """
    # The paper's grain and the sensor's noise leave a floor under the cover (the closing in ink_cover
    # takes the paper's brightest grains for its level); ink stands well above it.
    floor, strongest = np.percentile(cover, (50, 99.9))
    if strongest < MIN_CONTRAST / 255 + NOISE_MARGIN * floor:
        raise PhotoError("no digit found: the picture is blank or has almost no contrast")
    cover = np.clip((cover - floor) / (strongest - floor), 0, 1)
    parts, count = ndimage.label(cover >= STROKE_LEVEL, structure=np.ones((3, 3)))
    if count == 0:
        raise PhotoError("no digit found: the picture is blank or has almost no contrast")
    mass = ndimage.sum(cover, parts, index=np.arange(1, count + 1))
    main = int(mass.argmax())
    boxes = ndimage.find_objects(parts)
    rows, cols = boxes[main]
    reach_rows = PIECE_REACH * (rows.stop - rows.start)
    reach_cols = PIECE_REACH * (cols.stop - cols.start)
    kept = np.zeros(count + 1, bool)
    for index, (box, weight) in enumerate(zip(boxes, mass)):
        near = (box[0].start < rows.stop + reach_rows and box[0].stop > rows.start - reach_rows
                and box[1].start < cols.stop + reach_cols and box[1].stop > cols.start - reach_cols)
        kept[index + 1] = index == main or (weight >= PIECE_MASS * mass[main] and near)
    # Widened by a pixel or two, so the strokes' antialiased edges come along.
    strokes = ndimage.binary_dilation(kept[parts], iterations=max(1, round(0.01 * min(cover.shape))))
    glyph = np.where(strokes, cover, 0.0)
    glyph[glyph < INK_FLOOR] = 0.0
    return glyph


def to_handwriting(image, shape: tuple[int, int]) -> np.ndarray:
    """A PIL image -> uint8 (H, W) white digit on black, MNIST-style (see the module docstring).

    Where the picture shows a card on a surface (paper_patch), the digit is looked for on the card alone: read
    with the surface, a card's corners and its shadow look like ink.
    """
    grey, whiteness = _working_copy(image)
    patch = paper_patch(whiteness)
    if patch is not None:
        grey = on_card(grey, patch)
    return frame_like_mnist(digit_strokes(ink_cover(grey)), shape)


def frame_like_mnist(ink: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Ink (h, w) in 0..1, zero around the digit -> uint8 (H, W): the digit's bounding box scaled so its
    longer side fills DIGIT_SHARE of the field, placed with its centre of mass at the centre (MNIST's framing;
    data/cvl.py frames the CVL digits with it too). No ink at all gives a black field."""
    rows, cols = np.nonzero(ink)
    if not len(rows):
        return np.zeros(shape, np.uint8)
    glyph = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    height, width = shape
    box = max(1, round(DIGIT_SHARE * min(height, width)))
    scale = box / max(glyph.shape)
    size = (max(1, round(glyph.shape[1] * scale)), max(1, round(glyph.shape[0] * scale)))  # PIL: (width, height)
    small = Image.fromarray((glyph * 255).round().astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    small = np.asarray(small)
    # Integer move that puts the centre of mass at pixel (H / 2, W / 2), kept inside the field: where MNIST's
    # digits have it (their mean centre of mass is (13.99, 14.00) in row, column pixel indices, measured over
    # 5,000 training digits), not at the middle of the pixel grid, (H - 1) / 2, half a pixel up and left.
    mass_row, mass_col = ndimage.center_of_mass(small.astype(np.float64))
    top = int(np.clip(round(height / 2 - mass_row), 0, height - small.shape[0]))
    left = int(np.clip(round(width / 2 - mass_col), 0, width - small.shape[1]))
    field = np.zeros((height, width), np.uint8)
    field[top:top + small.shape[0], left:left + small.shape[1]] = small
    return field


def to_street(image, shape: tuple[int, int]) -> np.ndarray:
    """A PIL image -> uint8 (H, W, 3) RGB, padded to a square with its edge pixels, then resized."""
    image = _flattened(image, "RGB")
    longest = max(image.size)
    if longest ** 2 > MAX_PIXELS:  # the padded square would not fit in memory: shrink first, proportions kept
        scale = math.sqrt(MAX_PIXELS) / longest
        image = image.resize(tuple(max(1, round(side * scale)) for side in image.size), Image.Resampling.LANCZOS)
    rgb = np.asarray(image)
    h, w = rgb.shape[:2]
    side = max(h, w)
    above, left = (side - h) // 2, (side - w) // 2
    square = np.pad(rgb, ((above, side - h - above), (left, side - w - left), (0, 0)), mode="edge")
    height, width = shape
    return np.asarray(Image.fromarray(square).resize((width, height), Image.Resampling.LANCZOS))


def prepare(image, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A PIL image -> uint8 (H, W, C) as the model with this input shape was trained: C 1 or 3."""
    height, width, channels = input_shape
    if channels == 1:
        return to_handwriting(image, (height, width))[..., np.newaxis]
    if channels == 3:
        return to_street(image, (height, width))
    raise UserError(f"models with {channels} input channels are not supported; the digit models take 1 or 3.")


def prepare_number(image, input_shape: tuple[int, int, int]) -> np.ndarray:
    """A PIL photo roughly cropped around a number -> uint8 (H, W, C) as a reader of this input shape was trained.

    Colour readers (street numbers) get the RGB photo fitted as it is. Greyscale
    readers (handwriting) get MNIST's convention: bright ink on black. The paper is
    the commonest level (the median), so a photo whose median is light has dark ink
    and is inverted; the paper's level is then taken off and the ink stretched to
    the full range, which also evens out a dim or grey photo.
    """
    height, width, channels = input_shape
    if channels == 3:
        return fit_to_input(np.asarray(image.convert("RGB")), height, width)
    grey = np.asarray(image.convert("L"), np.float32)
    if np.median(grey) > 127:
        grey = 255 - grey
    ink = np.clip(grey - np.median(grey), 0, None)
    ink = ink / max(float(ink.max()), 1.0) * 255
    return fit_to_input(ink.round().astype(np.uint8)[..., np.newaxis], height, width)
