"""Whole house numbers from the svhn-numbers folder: real SVHN street pixels around each number, with digit boxes;
and the street composer that adds numbers composed from the SVHN stand-in's digit crops to its training.

    from data.svhn_numbers import load_svhn_numbers
    numbers = load_svhn_numbers(data_dir)   # x_train (4031, 32, 96, 3) uint8, y_train (4031, 6) int32

data_dir/svhn-numbers/train/ and .../test/ each hold PNG pictures and a
labels.csv with the columns `file`, `number` (the digits as a string; "063"
keeps its zero) and `boxes` (per digit "x0 y0 x1 y1" in the PNG's pixels,
";"-separated, left to right; x1 and y1 are exclusive, so a box may end at the
picture's width or height). The datasets README says how the folder was made.

Each picture is fitted to the reader's input by data.framing.fit_to_input
(aspect kept, edge-padded); `read_split` also maps the digit boxes into the
fitted picture, for drawing and checking what a reader looks at. Reading is a
few seconds, so nothing is cached.

Where the data folder also holds the SVHN stand-in (STREET_DIGITS), training
also gets numbers composed from its digit crops (street_composer: the street
look of data/composer/).
"""

import csv
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from data.dataset import Dataset
from harness.errors import DataError
from data.files import DATA_DIR_ENV
from data.framing import fit_boxes, fit_to_input
from data.numbers import MAX_DIGITS, PADDING, encode

FOLDER = "svhn-numbers"
SPLITS = ("train", "test")
LABELS = "labels.csv"
COLUMNS = ("file", "number", "boxes")
INPUT_SHAPE = (32, 96, 3)  # height, width, channels: room for MAX_DIGITS digits side by side
PUT_BACK = "fix that line or put back the original labels.csv"
STREET_DIGITS = "svhn-test10k.npz"  # the SVHN stand-in (see the datasets README); its x_train are the crops composed
STREET_COMPOSED_PER_EPOCH = 4_000  # about as many composed numbers as real ones


def _parse_boxes(text: str, number: str, where: str) -> np.ndarray:
    """One labels.csv `boxes` cell -> (len(number), 4) float64, or a DataError naming `where`."""
    parts = text.split(";")
    if len(parts) != len(number):
        raise DataError(f"{where}: the number {number!r} has {len(number)} digits but {len(parts)} boxes; give one "
                        f"'x0 y0 x1 y1' box per digit, ';'-separated ({PUT_BACK}).")
    boxes = []
    for digit, part in enumerate(parts, 1):
        try:
            corners = [float(value) for value in part.split()]
        except ValueError:
            corners = []
        if len(corners) != 4 or not np.all(np.isfinite(corners)):
            raise DataError(f"{where}: box {digit} {part!r} is not four numbers x0 y0 x1 y1 ({PUT_BACK}).")
        boxes.append(corners)
    return np.array(boxes)


def _read_labels(path: Path) -> list[tuple[str, str, np.ndarray, str]]:
    """labels.csv -> (file name, number, boxes (k, 4), "path line N") per row, every cell checked."""
    if not path.is_file():
        raise DataError(f"{path.parent} has no {LABELS}; put the svhn-numbers {LABELS} (columns "
                        f"{', '.join(COLUMNS)}) there beside its PNG files.")
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(stream)
            if reader.fieldnames is None or set(COLUMNS) - set(reader.fieldnames):
                found = ", ".join(reader.fieldnames or []) or "none"
                raise DataError(f"{path} has the columns {found}, not {', '.join(COLUMNS)}; put back the "
                                f"original svhn-numbers {LABELS}.")
            for row in reader:
                where = f"{path} line {reader.line_num}"
                if None in row or None in row.values():  # too many cells, or too few
                    raise DataError(f"{where} does not have one cell per column ({', '.join(reader.fieldnames)}); "
                                    f"{PUT_BACK}.")
                name, number = row["file"], row["number"]
                if Path(name).name != name or not name:
                    raise DataError(f"{where}: {name!r} is not the name of a file in {path.parent}; {PUT_BACK}.")
                if not (0 < len(number) <= MAX_DIGITS and number.isascii() and number.isdigit()):
                    raise DataError(f"{where}: the number {number!r} is not 1 to {MAX_DIGITS} digits; {PUT_BACK}.")
                rows.append((name, number, _parse_boxes(row["boxes"], number, where), where))
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not a text CSV file ({error.reason}); put back the original svhn-numbers "
                        f"{LABELS}.") from error
    except csv.Error as error:
        raise DataError(f"{path} is not a readable CSV file ({error}); put back the original svhn-numbers "
                        f"{LABELS}.") from error
    if not rows:
        raise DataError(f"{path} lists no pictures; put back the original svhn-numbers {LABELS}.")
    return rows


def _read_picture(path: Path, mode: str, where: str) -> np.ndarray:
    """A PNG as (rows, columns, channels) uint8 in `mode` ("RGB" or "L"; greyscale is widened to RGB)."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert(mode), np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}, listed on {where}, is missing; put the picture back or remove its line.") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:  # not an image, truncated, a folder, ...
        raise DataError(f"{path}, listed on {where}, is not a readable PNG ({type(error).__name__}); put back the "
                        f"original picture or remove its line.") from error
    return pixels.reshape(*pixels.shape[:2], -1)


def read_split(folder: Path, input_shape: tuple[int, int, int] = INPUT_SHAPE):
    """One svhn-numbers folder (PNGs and labels.csv) -> (images, labels, boxes), in labels.csv's order.

    images: (N, H, W, C) uint8, each picture fitted to input_shape.
    labels: (N, MAX_DIGITS) int32, the digits left to right, then PADDING.
    boxes: (N, MAX_DIGITS, 4) float32, each digit's x0, y0, x1, y1 in the fitted
    picture's pixels (x1, y1 exclusive), then PADDING rows.
    Raises DataError, naming the file and line, for anything missing or malformed.
    """
    folder = Path(folder)
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise DataError(f"svhn-numbers pictures can be read with 1 or 3 channels, not {channels}.")
    rows = _read_labels(folder / LABELS)
    images = np.empty((len(rows), height, width, channels), np.uint8)
    boxes = np.full((len(rows), MAX_DIGITS, 4), PADDING, np.float32)
    for index, (name, number, digit_boxes, where) in enumerate(rows):
        pixels = _read_picture(folder / name, "RGB" if channels == 3 else "L", where)
        picture_rows, picture_columns = pixels.shape[:2]
        for digit, (x0, y0, x1, y1) in enumerate(digit_boxes, 1):
            if not (0 <= x0 < x1 <= picture_columns and 0 <= y0 < y1 <= picture_rows):
                raise DataError(f"{where}: box {digit} ({x0:g} {y0:g} {x1:g} {y1:g}) is empty or outside {name}'s "
                                f"{picture_columns}x{picture_rows} pixels; {PUT_BACK}.")
        images[index] = fit_to_input(pixels, height, width)
        boxes[index, :len(number)] = fit_boxes(digit_boxes, (picture_rows, picture_columns), input_shape)
    return images, encode([number for _, number, _, _ in rows]), boxes


def load_svhn_numbers(data_dir: Path, input_shape: tuple[int, int, int] = INPUT_SHAPE) -> Dataset:
    """The svhn-numbers stand-in: images (N, H, W, C) uint8 fitted to input_shape, labels (N, MAX_DIGITS) int32.

    Not the official SVHN protocol (that is data/svhn_format1.py); label figures
    measured on it "SVHN numbers stand-in".
    """
    root = Path(data_dir) / FOLDER
    for split in SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"{root / split} is not there; put svhn-numbers' {' and '.join(SPLITS)} folders (PNG "
                            f"files and {LABELS} each) in {root}, or point --data-dir (or {DATA_DIR_ENV}) at the "
                            f"folder that holds {FOLDER}/.")
    x_train, y_train, _ = read_split(root / "train", input_shape)
    x_test, y_test, _ = read_split(root / "test", input_shape)
    # 4,031 numbers are few: where the stand-in's digit crops are at hand (they come from the same
    # training photos, never from test ones), training also gets numbers composed from them.
    if not (Path(data_dir) / STREET_DIGITS).is_file():
        return Dataset("svhn-numbers", x_train, y_train, x_test, y_test)
    return Dataset("svhn-numbers", x_train, y_train, x_test, y_test,
                   composer=street_composer(data_dir, input_shape), composed_per_epoch=STREET_COMPOSED_PER_EPOCH)


def street_composer(data_dir: Path, output_shape=INPUT_SHAPE):
    """A street-style NumberComposer over the SVHN stand-in's training crops (data_dir/STREET_DIGITS)."""
    from data.composer import NumberComposer  # imported on use: without the crops no composer (nor scipy) loads

    path = Path(data_dir) / STREET_DIGITS
    if not path.is_file():
        raise DataError(f"{path} is missing; put the SVHN stand-in {STREET_DIGITS} in the data folder "
                        f"(--data-dir) to compose street numbers.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            crops, labels = archive["x_train"], archive["y_train"]
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path} is not a readable SVHN stand-in ({error}); put back the original file.") from error
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (32, 32, 3) or labels.shape != crops.shape[:1] \
            or not len(labels) or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path} holds x_train {crops.dtype} {crops.shape} and y_train {labels.shape}, not uint8 "
                        f"32x32 colour crops with digits 0..9; put back the original file.")
    return NumberComposer(crops, labels, output_shape, "street")
