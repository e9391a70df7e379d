"""Tests of the whole-number loaders on small files written here in the official layouts; CPU, no network.

    python3 -m pytest tests/test_svhn_numbers.py -q

svhn-numbers folders (PNGs and a labels.csv) and SVHN format-1 archives (photos
and a MATLAB v7.3 digitStruct.mat, written with h5py in MATLAB's reference
layout and packed with tarfile) are built here. Expected values do not come from
data/: each digit box is painted in its own colour and found again in the
fitted picture, a few box positions are worked out by hand, labels are spelt
out, digests come from hashlib.
"""

import csv
import hashlib
import io
import shutil
import tarfile
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

# The network guard (autouse) and the local HTTP server are test_data.py's.
from test_data import UNREACHABLE, listing, no_internet, served  # noqa: F401

import data
import data.svhn_format1
from data import DataError, default_data_dir, load_dataset
from harness import atomic
from data.files import DATA_DIR_ENV
from data.numbers import MAX_DIGITS, PADDING, decode, lengths
from data.framing import crop_box
from data.svhn_format1 import cache_path, load_split, load_svhn_format1, read_archive
from data.svhn_numbers import INPUT_SHAPE, load_svhn_numbers, read_split

BACKGROUND = np.array([90, 90, 90])
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255],
                    [255, 255, 255]])  # one per digit, up to seven for a number too long to read


def painted(rows: int, columns: int, boxes) -> np.ndarray:
    """A (rows, columns, 3) uint8 grey picture with digit box i (x0, y0, x1, y1; x1, y1 exclusive) in COLOURS[i]."""
    pixels = np.empty((rows, columns, 3), np.uint8)
    pixels[...] = BACKGROUND
    for colour, (x0, y0, x1, y1) in zip(COLOURS, boxes):
        pixels[max(y0, 0):y1, max(x0, 0):x1] = colour
    return pixels


def found_box(image: np.ndarray, colour) -> np.ndarray:
    """Where a colour is in a fitted picture: x0, y0, x1, y1 of the pixels nearer it than the background."""
    pixels = image.astype(np.float64)
    near = ((pixels - colour) ** 2).sum(-1) < ((pixels - BACKGROUND) ** 2).sum(-1)
    rows, columns = np.nonzero(near)
    assert len(rows), f"colour {colour} is not in the picture"
    return np.array([columns.min(), rows.min(), columns.max() + 1, rows.max() + 1])


def assert_boxes_where_painted(image: np.ndarray, boxes: np.ndarray, count: int) -> None:
    """The first `count` boxes lie where their colours are, to a pixel (resampling blurs edges); the rest PADDING."""
    for index in range(count):
        np.testing.assert_allclose(boxes[index], found_box(image, COLOURS[index]), atol=1.0)
    assert (boxes[count:] == PADDING).all()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def one_line_error(call) -> str:
    with pytest.raises(DataError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- svhn-numbers (PNGs and labels.csv)

# Per split: file, number, boxes in the PNG's pixels, (rows, columns). Picture 00004 is greyscale.
PICTURES = {
    "train": [
        ("00001.png", "063", [(10, 5, 30, 35), (40, 5, 60, 35), (70, 5, 90, 35)], (40, 100)),
        ("00002.png", "5", [(5, 10, 25, 50)], (60, 30)),  # taller than the input's proportions
        ("00003.png", "123456", [(5 + 40 * i, 2, 35 + 40 * i, 18) for i in range(6)], (20, 240)),  # wider
        ("00004.png", "70", [(4, 2, 28, 30), (32, 0, 60, 32)], (32, 64)),
    ],
    "test": [("00010.png", "42", [(20, 10, 60, 50), (100, 10, 140, 50)], (64, 192))],
}


def boxes_text(boxes) -> str:
    return ";".join(" ".join(map(str, box)) for box in boxes)


def write_numbers_split(folder: Path, pictures) -> None:
    folder.mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "number", "boxes"])
        for name, number, boxes, (rows, columns) in pictures:
            writer.writerow([name, number, boxes_text(boxes)])
            pixels = painted(rows, columns, boxes)
            image = Image.fromarray(pixels[..., 0]) if name == "00004.png" else Image.fromarray(pixels)
            image.save(folder / name)


@pytest.fixture
def numbers_dir(tmp_path):
    """A data folder holding svhn-numbers/train and svhn-numbers/test in the stand-in's layout."""
    folder = tmp_path / "data"
    for split, pictures in PICTURES.items():
        write_numbers_split(folder / "svhn-numbers" / split, pictures)
    return folder


def test_read_split_reads_labels_images_and_boxes(numbers_dir):
    images, labels, boxes = read_split(numbers_dir / "svhn-numbers" / "train")
    assert images.shape == (4, *INPUT_SHAPE) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and boxes.dtype == np.float32 and boxes.shape == (4, MAX_DIGITS, 4)
    np.testing.assert_array_equal(labels, [[0, 6, 3, -1, -1, -1], [5, -1, -1, -1, -1, -1], [1, 2, 3, 4, 5, 6],
                                           [7, 0, -1, -1, -1, -1]])
    for index, (_, number, _, _) in enumerate(PICTURES["train"][:3]):
        assert_boxes_where_painted(images[index], boxes[index], len(number))
    # Greyscale is read as RGB with three equal channels.
    grey = images[3].astype(int)
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    # 32x64 fits at scale 1 and is centred in 96 columns: shifted right by (96 - 64) / 2.
    np.testing.assert_array_equal(boxes[3, :2], [[20, 2, 44, 30], [48, 0, 76, 32]])


def test_read_split_halves_boxes_of_a_picture_twice_the_input(numbers_dir):
    images, labels, boxes = read_split(numbers_dir / "svhn-numbers" / "test")
    np.testing.assert_array_equal(boxes[0, :2], [[10, 5, 30, 25], [50, 5, 70, 25]])
    assert_boxes_where_painted(images[0], boxes[0], 2)
    assert decode(labels) == ["42"]


def test_read_split_fits_any_input_shape(numbers_dir):
    images, labels, boxes = read_split(numbers_dir / "svhn-numbers" / "train", (24, 48, 1))
    assert images.shape == (4, 24, 48, 1)
    assert decode(labels) == ["063", "5", "123456", "70"]
    assert (boxes[labels >= 0] >= 0).all() and (boxes[labels >= 0][:, [0, 2]] <= 48).all()


def test_load_svhn_numbers(numbers_dir):
    numbers = load_svhn_numbers(numbers_dir)
    assert numbers.name == "svhn-numbers" and numbers.y_train.ndim == 2 and numbers.composer is None
    assert numbers.input_shape == INPUT_SHAPE
    assert decode(numbers.y_train) == ["063", "5", "123456", "70"] and decode(numbers.y_test) == ["42"]


def replace_in_labels(old: str, new: str):
    def damage(split: Path) -> None:
        path = split / "labels.csv"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return damage


def truncate_png(split: Path) -> None:
    content = (split / "00002.png").read_bytes()
    (split / "00002.png").write_bytes(content[:len(content) // 2])


NUMBERS_DAMAGE = {
    "no-svhn-numbers-folder": (lambda split: shutil.rmtree(split.parent),
                               ["svhn-numbers", "train", "--data-dir", DATA_DIR_ENV]),
    "no-test-folder": (lambda split: shutil.rmtree(split.parent / "test"), ["test", "--data-dir", DATA_DIR_ENV]),
    "no-labels-csv": (lambda split: (split / "labels.csv").unlink(), ["labels.csv", "file, number, boxes"]),
    "wrong-columns": (replace_in_labels("file,number,boxes", "file,label,boxes"),
                      ["columns file, label, boxes", "not file, number, boxes"]),
    "header-only": (lambda split: (split / "labels.csv").write_text("file,number,boxes\n"), ["lists no pictures"]),
    "not-text": (lambda split: (split / "labels.csv").write_bytes(b"\xff\xfe\x00\x81garbage"), ["not a text CSV"]),
    "cell-missing": (replace_in_labels("00002.png,5,5 10 25 50", "00002.png,5"), ["line 3", "one cell per column"]),
    "number-too-long": (replace_in_labels(",5,", ",1234567,"), ["line 3", "'1234567'", "1 to 6 digits"]),
    "number-not-digits": (replace_in_labels(",5,", ",5a,"), ["line 3", "'5a'", "1 to 6 digits"]),
    "number-empty": (replace_in_labels(",5,", ",,"), ["line 3", "''", "1 to 6 digits"]),
    "fewer-boxes-than-digits": (replace_in_labels(";70 5 90 35", ""), ["line 2", "'063' has 3 digits but 2 boxes"]),
    "box-not-four-numbers": (replace_in_labels("5 10 25 50", "5 10 25"), ["line 3", "box 1 '5 10 25'", "four"]),
    "box-outside-picture": (replace_in_labels("70 5 90 35", "70 5 101 35"), ["line 2", "box 3", "100x40"]),
    "box-empty": (replace_in_labels("5 10 25 50", "5 10 5 50"), ["line 3", "box 1", "empty"]),
    "file-in-another-folder": (replace_in_labels("00002.png,", "../00002.png,"), ["line 3", "'../00002.png'"]),
    "png-missing": (lambda split: (split / "00002.png").unlink(), ["00002.png", "line 3", "missing"]),
    "png-not-an-image": (lambda split: (split / "00002.png").write_bytes(b"not a png"),
                         ["00002.png", "not a readable PNG"]),
    "png-truncated": (truncate_png, ["00002.png", "not a readable PNG"]),
}


@pytest.mark.parametrize("damage, keywords", list(NUMBERS_DAMAGE.values()), ids=list(NUMBERS_DAMAGE))
def test_load_svhn_numbers_rejects_a_damaged_folder_in_one_line(numbers_dir, damage, keywords):
    damage(numbers_dir / "svhn-numbers" / "train")
    message = one_line_error(lambda: load_svhn_numbers(numbers_dir))
    for keyword in keywords:
        assert keyword in message


@pytest.mark.slow  # reads the real stand-in's 5,032 PNGs: a few seconds
def test_real_svhn_numbers_has_the_counts_its_readme_gives():
    root = default_data_dir() / "svhn-numbers"
    if not root.is_dir():
        pytest.skip(f"no svhn-numbers in {default_data_dir()} (set {DATA_DIR_ENV})")
    numbers = load_svhn_numbers(default_data_dir())
    assert (len(numbers.y_train), len(numbers.y_test)) == (4031, 1001)
    # Digits per number, 1..5, as the datasets README tabulates them.
    assert np.bincount(lengths(numbers.y_train), minlength=6)[1:].tolist() == [758, 2621, 610, 41, 1]
    assert np.bincount(lengths(numbers.y_test), minlength=6)[1:].tolist() == [197, 621, 172, 11, 0]
    with open(root / "test" / "labels.csv", newline="") as stream:
        assert decode(numbers.y_test) == [row["number"] for row in csv.DictReader(stream)]
    _, labels, boxes = read_split(root / "test")
    digit_boxes = boxes[labels >= 0]
    assert (boxes[labels < 0] == PADDING).all()
    assert (digit_boxes[:, :2] >= 0).all() and (digit_boxes[:, 2] <= INPUT_SHAPE[1]).all()
    assert (digit_boxes[:, 3] <= INPUT_SHAPE[0]).all()


# ---------------------------------------------------------------- SVHN format 1 (tar.gz of photos and digitStruct.mat)

FIELDS = ("height", "left", "top", "width", "label")  # a bbox struct's fields, as MATLAB stores them
MATLAB_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2011 HDF5 schema 1.00 ."


def digit(label: int, left: int, top: int, width: int, height: int) -> dict:
    return {"label": label, "left": left, "top": top, "width": width, "height": height}


def row_of(*digits, left=30, top=25, width=20, height=30, gap=10) -> list[dict]:
    """Digits side by side, each `width` wide."""
    return [digit(label, left + i * (width + gap), top, width, height) for i, label in enumerate(digits)]


# Per archive: photo name -> (rows, columns), digits. Label 10 is the digit 0.
PHOTOS = {
    "train": [
        ("1.png", (80, 160), [digit(10, 50, 20, 20, 30)]),  # one digit: every field a 1x1 number
        ("2.png", (80, 160), row_of(1, 2, 3)),  # several: columns of references
        ("3.png", (60, 300), row_of(1, 2, 3, 4, 5, 6, 7, left=5, top=10, width=30, gap=10)),  # too long to read
        ("4.png", (70, 120), [digit(4, 40, -6, 20, 30), digit(5, 70, 4, 20, 30)]),  # a box sticks out at the top
    ],
    "test": [("1.png", (80, 160), row_of(7, 10)), ("2.png", (50, 60), [digit(9, 20, 10, 20, 30)])],
    "extra": [("1.png", (80, 160), row_of(8, 8))],
}
EXPECTED = {"train": ["0", "123", "45"], "test": ["70", "9"], "extra": ["88"]}


def boxes_of(digits) -> list[tuple[int, int, int, int]]:
    return [(d["left"], d["top"], d["left"] + d["width"], d["top"] + d["height"]) for d in digits]


def write_digit_struct(path: Path, photos) -> None:
    """digitStruct.mat as MATLAB v7.3 saves a 1xN struct array with fields name and bbox.

    HDF5 after a 512-byte MATLAB header; `digitStruct/name` and `digitStruct/bbox`
    are (N, 1) columns of references into `#refs#`: names as (length, 1) uint16
    characters, each bbox a struct group whose fields are a (1, 1) double for one
    digit and a (k, 1) column of references to (1, 1) doubles for k digits.
    """
    with h5py.File(path, "w", userblock_size=512) as content:
        refs = content.create_group("#refs#")

        def stored(array, matlab_class, parent=refs, key=None):
            dataset = parent.create_dataset(key or f"r{len(refs)}", data=array)
            dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            return dataset

        names, structs = [], []
        for name, _, digits in photos:
            characters = stored(np.array([[ord(c)] for c in name], np.uint16), "char")
            characters.attrs["MATLAB_int_decode"] = np.int32(2)
            names.append(characters.ref)
            struct = refs.create_group(f"r{len(refs)}")
            struct.attrs["MATLAB_class"] = np.bytes_("struct")
            for field in FIELDS:
                values = [float(d[field]) for d in digits]
                if len(values) == 1:
                    stored(np.array([[values[0]]]), "double", struct, field)
                else:
                    column = [[stored(np.array([[value]]), "double").ref] for value in values]
                    stored(np.array(column, dtype=h5py.ref_dtype), "cell", struct, field)
            structs.append(struct.ref)
        group = content.create_group("digitStruct")
        group.attrs["MATLAB_class"] = np.bytes_("struct")
        for key, column in (("name", names), ("bbox", structs)):
            stored(np.array([[reference] for reference in column], dtype=h5py.ref_dtype), "cell", group, key)
    with open(path, "r+b") as stream:  # the header MATLAB writes into the user block
        stream.write(MATLAB_HEADER.ljust(116) + bytes(8) + b"\x00\x02IM")


def add_file(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def write_archive(path: Path, photos, struct_first: bool = False, leave_out: tuple = (),
                  replace: dict | None = None, tamper=None) -> None:
    """An official-layout archive: folder/N.png photos (last listed first), folder/digitStruct.mat, see_bboxes.m.

    `tamper`, if given, is called with the open digitStruct.mat before it is packed.
    """
    folder = path.name.removesuffix(".tar.gz")
    struct_file = path.parent / f"{folder}-digitStruct.mat"
    write_digit_struct(struct_file, photos)
    if tamper:
        with h5py.File(struct_file, "r+") as content:
            tamper(content)
    struct = struct_file.read_bytes()
    struct_file.unlink()
    with tarfile.open(path, "w:gz") as tar:
        if struct_first:
            add_file(tar, f"{folder}/digitStruct.mat", struct)
        for name, (rows, columns), digits in reversed(photos):  # the reader must not rely on the archive's order
            if name not in leave_out:
                content = (replace or {}).get(name) or png_bytes(painted(rows, columns, boxes_of(digits)))
                add_file(tar, f"{folder}/{name}", content)
        if not struct_first:
            add_file(tar, f"{folder}/digitStruct.mat", struct)
        add_file(tar, f"{folder}/see_bboxes.m", b"% draws the boxes\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def archives_dir(tmp_path):
    """A data folder with train.tar.gz, test.tar.gz and extra.tar.gz; returns (folder, sha256 by file name)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for split, photos in PHOTOS.items():
        write_archive(folder / f"{split}.tar.gz", photos, struct_first=split == "test")
    return folder, {f"{split}.tar.gz": sha256(folder / f"{split}.tar.gz") for split in PHOTOS}


def test_read_archive_reads_labels_and_skips_numbers_too_long(archives_dir):
    folder, _ = archives_dir
    images, labels, boxes, skipped = read_archive(folder / "train.tar.gz")
    assert images.shape == (3, *INPUT_SHAPE) and images.dtype == np.uint8
    assert labels.dtype == np.int32 and labels.shape == (3, MAX_DIGITS)
    assert boxes.dtype == np.float32 and boxes.shape == (3, MAX_DIGITS, 4)
    assert decode(labels) == EXPECTED["train"]
    assert skipped == {"too_long": 1, "unusable": 0}


@pytest.mark.parametrize("split", list(PHOTOS))
def test_read_archive_boxes_are_where_the_digits_are_in_the_crop(archives_dir, split):
    folder, _ = archives_dir
    images, labels, boxes, _ = read_archive(folder / f"{split}.tar.gz")
    for image, label, box in zip(images, labels, boxes):
        # Every digit, in its own colour, is inside the fitted crop, where its box says.
        assert_boxes_where_painted(image, box, int((label >= 0).sum()))


def test_crop_contains_the_digits_with_half_a_digit_of_context():
    for _, (rows, columns), digits in [photo for photos in PHOTOS.values() for photo in photos]:
        boxes = np.array(boxes_of(digits), np.float64)
        x0, y0, x1, y1 = crop_box(boxes, (rows, columns))
        union = boxes[:, 0].min(), max(boxes[:, 1].min(), 0), boxes[:, 2].max(), boxes[:, 3].max()
        assert 0 <= x0 <= union[0] and 0 <= y0 <= union[1] and union[2] <= x1 <= columns and union[3] <= y1 <= rows
        width = np.median(boxes[:, 2] - boxes[:, 0])
        for margin, room in ((union[0] - x0, union[0]), (x1 - union[2], columns - union[2])):
            assert margin == pytest.approx(min(width / 2, room), abs=1)  # half a digit, unless the photo ends
        assert union[1] - y0 <= 0.1 * (union[3] - union[1]) + 1  # a little above and below
    assert crop_box(np.array([[200.0, 10, 220, 40]]), (80, 160)) is None  # entirely beside the photo


def test_load_svhn_format1(archives_dir):
    folder, checksums = archives_dir
    numbers = load_svhn_format1(folder, checksums=checksums)
    assert numbers.name == "svhn-numbers-official" and numbers.input_shape == INPUT_SHAPE
    assert decode(numbers.y_train) == EXPECTED["train"] and decode(numbers.y_test) == EXPECTED["test"]
    with_extra = load_svhn_format1(folder, include_extra=True, checksums=checksums)
    assert with_extra.name == "svhn-numbers-official-extra"
    assert decode(with_extra.y_train) == EXPECTED["train"] + EXPECTED["extra"]
    np.testing.assert_array_equal(with_extra.x_train[:3], numbers.x_train)


@pytest.mark.parametrize("name, splits", [("svhn-numbers-official", ("train",)),
                                          ("svhn-numbers-official-extra", ("train", "extra"))])
def test_registry_loads_official_numbers(archives_dir, monkeypatch, name, splits):
    folder, checksums = archives_dir
    for file_name, digest in checksums.items():
        monkeypatch.setitem(data.svhn_format1.SHA256, file_name, digest)
    numbers = load_dataset(name, str(folder))
    assert numbers.name == name and numbers.y_train.ndim == 2
    assert decode(numbers.y_train) == [number for split in splits for number in EXPECTED[split]]


def test_registry_loads_svhn_numbers(numbers_dir):
    assert decode(load_dataset("svhn-numbers", numbers_dir).y_test) == ["42"]


def test_cache_is_used_the_second_time(archives_dir, monkeypatch):
    folder, checksums = archives_dir
    first = load_split("train.tar.gz", folder, checksums=checksums)
    assert cache_path("train.tar.gz", folder, INPUT_SHAPE).name == "svhn-train-numbers-32x96x3.npz"
    assert (folder / "svhn-train-numbers-32x96x3.npz").is_file()

    def refuse(*args):
        raise AssertionError("the archive was processed again despite a current cache")

    monkeypatch.setattr(data.svhn_format1, "read_archive", refuse)
    second = load_split("train.tar.gz", folder, checksums=checksums)
    for before, after in zip(first[:3], second[:3]):
        np.testing.assert_array_equal(before, after)
    assert second[3] == first[3]  # the skipped counts
    # Another input shape is another cache.
    monkeypatch.undo()
    assert load_split("train.tar.gz", folder, (16, 48, 3), checksums)[0].shape == (3, 16, 48, 3)
    assert sorted(name for name in listing(folder) if name.endswith(".npz")) == [
        "svhn-train-numbers-16x48x3.npz", "svhn-train-numbers-32x96x3.npz"]  # no temporary file left


def test_cache_is_rebuilt_when_the_archive_changes(archives_dir):
    folder, checksums = archives_dir
    assert decode(load_split("train.tar.gz", folder, checksums=checksums)[1]) == EXPECTED["train"]
    changed = [("1.png", (80, 160), [digit(3, 50, 20, 20, 30)])] + PHOTOS["train"][1:]
    write_archive(folder / "train.tar.gz", changed)
    checksums = {**checksums, "train.tar.gz": sha256(folder / "train.tar.gz")}
    assert decode(load_split("train.tar.gz", folder, checksums=checksums)[1]) == ["3"] + EXPECTED["train"][1:]
    with np.load(cache_path("train.tar.gz", folder, INPUT_SHAPE)) as cache:
        assert str(cache["digest"]) == checksums["train.tar.gz"]


@pytest.mark.parametrize("content", [b"PK\x03\x04 cut short", b"my own notes", "npz"])
def test_a_file_the_project_did_not_write_is_never_replaced(archives_dir, content):
    # A cache is written whole or not at all, so a damaged file, or any other file, at the cache's name is a
    # user's: it stays as it was, the numbers still load, and a warning says why they are not cached.
    folder, checksums = archives_dir
    path = cache_path("test.tar.gz", folder, INPUT_SHAPE)
    if content == "npz":
        np.savez(path, images=np.zeros((1, *INPUT_SHAPE), np.uint8))  # an .npz, but not one of ours
        content = path.read_bytes()
    else:
        path.write_bytes(content)
    with pytest.warns(UserWarning, match="not written by this project"):
        assert decode(load_split("test.tar.gz", folder, checksums=checksums)[1]) == EXPECTED["test"]
    assert path.read_bytes() == content


def test_a_stale_cache_of_ours_is_replaced(archives_dir):
    folder, checksums = archives_dir
    load_split("test.tar.gz", folder, checksums=checksums)
    path = cache_path("test.tar.gz", folder, INPUT_SHAPE)
    with np.load(path) as cache:
        arrays = dict(cache)
    with atomic.replacing(path) as temporary, open(temporary, "wb") as stream:  # ours, of an older version
        np.savez(stream, **{**arrays, "version": np.int64(0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: it is ours
        assert decode(load_split("test.tar.gz", folder, checksums=checksums)[1]) == EXPECTED["test"]
    with np.load(path) as cache:
        assert int(cache["version"]) == data.svhn_format1.CACHE_VERSION


def test_an_unwritable_cache_warns_and_still_loads(archives_dir, monkeypatch):
    folder, checksums = archives_dir

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", no_space)
    with pytest.warns(UserWarning, match="read again next time"):
        labels = load_split("test.tar.gz", folder, checksums=checksums)[1]
    assert decode(labels) == EXPECTED["test"]


def test_an_archive_failing_its_checksum_is_one_error(archives_dir):
    folder, checksums = archives_dir
    message = one_line_error(lambda: load_svhn_format1(folder, checksums={**checksums, "train.tar.gz": "0" * 64}))
    assert str(folder / "train.tar.gz") in message and "corrupt" in message and "download it again" in message


def test_a_missing_archive_without_network_is_one_error(tmp_path, monkeypatch):
    monkeypatch.setattr(data.svhn_format1, "BASE_URL", UNREACHABLE)
    folder = tmp_path / "empty"
    message = one_line_error(lambda: load_svhn_format1(folder))
    assert "train.tar.gz" in message and UNREACHABLE + "train.tar.gz" in message
    assert "--data-dir" in message and DATA_DIR_ENV in message
    assert listing(folder) == []  # no partial download left behind


def test_missing_archives_are_downloaded_and_checked(tmp_path, request, archives_dir, monkeypatch):
    source, checksums = archives_dir
    server_folder, url = request.getfixturevalue("served")  # a parameter named so would shadow the import
    for name in ("train.tar.gz", "test.tar.gz"):
        shutil.copy(source / name, server_folder / name)
    monkeypatch.setattr(data.svhn_format1, "BASE_URL", url)
    folder = tmp_path / "downloads"
    numbers = load_svhn_format1(folder, checksums=checksums)
    assert decode(numbers.y_test) == EXPECTED["test"]
    assert (folder / "train.tar.gz").read_bytes() == (source / "train.tar.gz").read_bytes()
    # A download that fails its checksum is not kept.
    (folder / "test.tar.gz").unlink()
    message = one_line_error(lambda: load_svhn_format1(folder, checksums={**checksums, "test.tar.gz": "0" * 64}))
    assert url + "test.tar.gz" in message
    assert not (folder / "test.tar.gz").exists()


def second_struct(content: h5py.File) -> h5py.Group:
    return content[content["digitStruct/bbox"][1, 0]]  # photo 2.png: three digits, columns of references


def drop_label(content: h5py.File) -> None:
    del second_struct(content)["label"]


def short_top(content: h5py.File) -> None:
    del second_struct(content)["top"]
    second_struct(content).create_dataset("top", data=np.array([[25.0], [25.0]]))


def point_column_at(column: str, content: h5py.File) -> None:
    """Make the first entry of digitStruct/<column> refer to a 1x1 double: no name, no struct."""
    references = content["digitStruct"][column][()]
    references[0, 0] = content["#refs#"].create_dataset("stray", data=np.array([[1.5]])).ref
    content["digitStruct"][column][...] = references


def tampered(tamper):
    return lambda path: write_archive(path, PHOTOS["train"], tamper=tamper)


ARCHIVE_DAMAGE = {
    "no-digitStruct": (lambda path: rewrite(path, drop="digitStruct.mat"), ["no train/digitStruct.mat"]),
    "digitStruct-not-hdf5": (lambda path: rewrite(path, swap=("digitStruct.mat", b"MATLAB 5.0 MAT-file")),
                             ["digitStruct.mat cannot be read"]),
    "photo-missing": (lambda path: write_archive(path, PHOTOS["train"], leave_out=("2.png",)),
                      ["lacks 1 of the photos", "train/2.png"]),
    "photo-unreadable": (lambda path: write_archive(path, PHOTOS["train"], replace={"2.png": b"\x89PNG\r\n\x1a\nno"}),
                         ["train/2.png", "not a readable PNG"]),
    "label-11": (lambda path: write_archive(path, [("1.png", (80, 160), [digit(11, 50, 20, 20, 30)])]),
                 ["outside 1..10"]),
    "no-bbox": (lambda path: rewrite(path, swap=("digitStruct.mat", struct_without_bbox())), ["name and bbox"]),
    "bbox-without-label": (tampered(drop_label), ["digitStruct.mat cannot be read"]),
    "bbox-fields-of-different-lengths": (tampered(short_top), ["different lengths"]),
    "name-not-text": (tampered(lambda content: point_column_at("name", content)), ["not text"]),
    "bbox-not-a-struct": (tampered(lambda content: point_column_at("bbox", content)), ["not a struct"]),
    "not-gzip": (lambda path: path.write_bytes(b"<html>moved</html>"), ["cannot be read"]),
    "cut-short": (lambda path: path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2]), ["cannot be read"]),
}


def rewrite(path: Path, drop: str | None = None, swap: tuple | None = None) -> None:
    """The archive with one member left out, or one member's content swapped."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(member.name, tar.extractfile(member).read()) for member in tar if member.isfile()]
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members:
            if drop and name.endswith(drop):
                continue
            add_file(tar, name, swap[1] if swap and name.endswith(swap[0]) else content)


def struct_without_bbox() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as content:
        content.create_group("digitStruct").create_dataset("name", data=np.zeros((1, 1)))
    return buffer.getvalue()


@pytest.mark.parametrize("damage, keywords", list(ARCHIVE_DAMAGE.values()), ids=list(ARCHIVE_DAMAGE))
def test_a_damaged_archive_is_one_error(archives_dir, damage, keywords):
    folder, checksums = archives_dir
    path = folder / "train.tar.gz"
    damage(path)
    message = one_line_error(lambda: load_svhn_format1(folder, checksums={**checksums, "train.tar.gz": sha256(path)}))
    assert str(path) in message and "download it again" in message
    for keyword in keywords:
        assert keyword in message
    assert not cache_path("train.tar.gz", folder, INPUT_SHAPE).exists()
