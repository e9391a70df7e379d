"""Photos and scans into the pixels a model was trained on: MNIST-style handwriting or SVHN-style street digits.

    from data.photos import read_image, prepare
    pixels = prepare(read_image("bus.jpg"), (28, 28, 1))   # uint8 (28, 28, 1), white digit on black

Handwriting (one channel), as the original MNIST was prepared: greyscale; dark
ink on light paper is inverted so the digit is white on black; the paper's
level is subtracted; the digit's bounding box is scaled, aspect kept and
antialiased, so its longer side is 20 of 28 pixels; then it is placed so that
its centre of mass sits at the centre of the 28x28 field.

Street digits (three channels): RGB; the shorter side is padded by repeating
the edge pixels to make a square (the SVHN crops are squares around the digit,
and the street augmentation fills with edge pixels too), then resized to 32x32.
A picture whose square would exceed MAX_PIXELS (a long thin strip) is shrunk
first, so the square stays small.
"""

import math
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from data.errors import UserError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (about 200 MB as RGB)
MIN_SIDE = 8  # pixels: a narrower strip cannot show a digit
DIGIT_SHARE = 20 / 28  # MNIST: the digit's longer side fills 20 of the 28 pixels
INK_FLOOR = 0.15  # ink below this share of the strongest stroke is paper texture or noise, set to black
MIN_CONTRAST = 12  # grey levels between paper and the strongest ink; less is a blank picture


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


def border_mean(grey: np.ndarray) -> float:
    """Mean of the outer frame (about 5 % of the side, at least one pixel) of a 2-D array: the background."""
    frame = max(1, round(0.05 * min(grey.shape)))
    mask = np.ones(grey.shape, bool)
    mask[frame:-frame, frame:-frame] = False
    return float(grey[mask].mean())


def to_handwriting(image, shape: tuple[int, int]) -> np.ndarray:
    """A PIL image -> uint8 (H, W) white digit on black, MNIST-style (see the module docstring)."""
    grey = np.asarray(_flattened(image, "L"), np.float32)  # (h, w) in 0..255
    # The border is background; ink pulls the mean away from it. A border brighter
    # than the mean is light paper with dark ink, which MNIST stores inverted.
    if border_mean(grey) > grey.mean():
        grey = 255.0 - grey
    paper = border_mean(grey)
    ink = np.clip(grey - paper, 0, None)
    if ink.max() < MIN_CONTRAST:
        raise PhotoError("no digit found: the picture is blank or has almost no contrast")
    ink /= ink.max()
    ink[ink < INK_FLOOR] = 0.0
    rows, cols = np.nonzero(ink)
    glyph = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]

    height, width = shape
    box = max(1, round(DIGIT_SHARE * min(height, width)))
    scale = box / max(glyph.shape)
    size = (max(1, round(glyph.shape[1] * scale)), max(1, round(glyph.shape[0] * scale)))  # PIL: (width, height)
    small = Image.fromarray((glyph * 255).round().astype(np.uint8)).resize(size, Image.Resampling.LANCZOS)
    small = np.asarray(small)
    # Integer move that puts the centre of mass at the field's centre, kept inside the field.
    mass_row, mass_col = ndimage.center_of_mass(small.astype(np.float64))
    top = int(np.clip(round((height - 1) / 2 - mass_row), 0, height - small.shape[0]))
    left = int(np.clip(round((width - 1) / 2 - mass_col), 0, width - small.shape[1]))
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
