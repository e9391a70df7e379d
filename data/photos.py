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
"""

from pathlib import Path

import numpy as np

from data.errors import UserError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (about 200 MB as RGB)
DIGIT_SHARE = 20 / 28  # MNIST: the digit's longer side fills 20 of the 28 pixels
INK_FLOOR = 0.15  # ink below this share of the strongest stroke is paper texture or noise, set to black
MIN_CONTRAST = 12  # grey levels between paper and the strongest ink; less is a blank picture


class PhotoError(UserError):
    """One image cannot be used; the message says why (the file name is added by the caller)."""


def read_image(path: Path):
    """A fully decoded PIL image, upright as the camera saw it (EXIF orientation applied).

    Raises PhotoError for a missing, unreadable, empty, damaged, non-image or huge file.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        if path.is_dir():
            raise PhotoError("is a folder, not an image file")
        if path.stat().st_size == 0:
            raise PhotoError("the file is empty")
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise PhotoError(f"{width}x{height} pixels is too large (at most {MAX_PIXELS:,} pixels); "
                                 f"crop or shrink it")
            if width == 0 or height == 0:
                raise PhotoError("the image has no pixels")
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise PhotoError("no such file") from None
    except PermissionError:
        raise PhotoError("permission denied") from None
    except UnidentifiedImageError:
        raise PhotoError("not an image Pillow can read (give a PNG or JPEG)") from None
    except Image.DecompressionBombError as error:
        raise PhotoError(f"too large to decode safely ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data inside a known format
        raise PhotoError(f"the image data is damaged ({error})") from None


def _flattened(image, mode: str):
    """`image` in mode "L" or "RGB", transparent parts shown over white paper."""
    from PIL import Image

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
    from PIL import Image
    from scipy import ndimage

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
    from PIL import Image

    rgb = np.asarray(_flattened(image, "RGB"))
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
