"""The CVL digits, the dark-ink rule that brings scans to MNIST's convention, and the handwriting data set."""

import functools

import numpy as np
import pytest
from scipy import ndimage

import data.handwriting
from data import load_dataset
from data.conventions import dark_ink_dataset, dark_ink_to_mnist
from data.cvl import FILE_NAME, KEYS, load_cvl_digits
from data.dataset import Dataset
from data.mnist import load_mnist
from harness.errors import DataError
from tests.data.test_data import md5, write_idx

PAPER, INK = 230, 40  # grey levels of the scans below: dark ink on light grey paper, as the CVL file holds them


def scan(digit_box: tuple[int, int, int, int], side: int = 28, paper: int = PAPER) -> np.ndarray:
    """A (side, side) uint8 scan: light paper with a dark filled rectangle (top, left, bottom, right) of ink."""
    picture = np.full((side, side), paper, np.uint8)
    top, left, bottom, right = digit_box
    picture[top:bottom, left:right] = INK
    return picture


def write_cvl(folder, writers_train=(7, 7, 8, 8, 9, 9), writers_test=(1, 1, 2, 2), **replaced) -> dict:
    """A small cvl-digits.npz in the file's layout (dark on light, writer ids); returns the arrays written."""
    rng = np.random.default_rng(4)

    def split(writers):
        boxes = [(2 + int(rng.integers(0, 4)), 8 + int(rng.integers(0, 4)), 26, 18) for _ in writers]
        return (np.stack([scan(box) for box in boxes]), rng.integers(0, 10, len(writers)).astype(np.uint8),
                np.array(writers, np.int32))

    arrays = dict(zip(("x_train", "y_train", "writers_train"), split(writers_train), strict=True))
    arrays.update(zip(("x_test", "y_test", "writers_test"), split(writers_test), strict=True))
    arrays.update(replaced)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / FILE_NAME, **arrays)
    return arrays


def test_the_dark_ink_rule_frames_a_scanned_box_as_mnist_frames_a_digit():
    """Independent check: a dark 24x10 box on paper becomes a bright box 20 tall (MNIST's 20 of 28), its width
    scaled alike, its centre of mass at the field's centre, the paper black."""
    converted = dark_ink_to_mnist(scan((2, 9, 26, 19))[np.newaxis])[0]
    assert converted.shape == (28, 28) and converted.dtype == np.uint8
    rows, cols = np.nonzero(converted > 127)
    assert rows.max() - rows.min() + 1 == 20
    assert 8 <= cols.max() - cols.min() + 1 <= 9  # 10 * 20 / 24, antialiased
    assert converted.max() >= 250 and converted[0].max() == 0 and converted[:, 0].max() == 0
    centre = ndimage.center_of_mass(converted.astype(float))
    assert abs(centre[0] - 14) <= 0.5 and abs(centre[1] - 14) <= 0.5  # where MNIST's digits have it


def test_the_rule_does_not_depend_on_the_papers_level():
    """The paper's level is measured (the median), so a darker scan of the same digit converts the same."""
    light, dim = scan((3, 6, 25, 16), paper=240), scan((3, 6, 25, 16), paper=180)
    dim[dim == INK] = INK - 30  # the same contrast between ink and paper
    np.testing.assert_array_equal(dark_ink_to_mnist(light[np.newaxis]), dark_ink_to_mnist(dim[np.newaxis]))


def test_a_blank_scan_becomes_a_black_field():
    assert dark_ink_to_mnist(np.full((1, 28, 28), 200, np.uint8)).max() == 0


def test_load_cvl_digits_converts_every_picture_and_keeps_labels_and_writers(tmp_path):
    arrays = write_cvl(tmp_path)
    digits = load_cvl_digits(tmp_path)
    assert digits.name == "cvl-digits" and digits.input_shape == (28, 28, 1)
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(digits, f"x_{split}")[..., 0], dark_ink_to_mnist(arrays[f"x_{split}"]))
        np.testing.assert_array_equal(getattr(digits, f"y_{split}"), arrays[f"y_{split}"])
        assert getattr(digits, f"y_{split}").dtype == np.int32
        np.testing.assert_array_equal(getattr(digits, f"writers_{split}"), arrays[f"writers_{split}"])
    assert load_dataset("cvl-digits", tmp_path).x_test.shape == (4, 28, 28, 1)  # by name, through the registry


@pytest.mark.parametrize("damage, words", [
    (None, ("is not there", "not downloadable", "--data-dir")),
    ("no writers", ("lacks writers_test",)),
    ("shared writer", ("writer 7 is in both splits",)),
    ("label 10", ("y_test holds labels outside 0..9",)),
    ("float pictures", ("x_train is float64",)),
    ("short labels", ("y_train is uint8 (5,)",)),
    ("not a zip", ("not a readable .npz",)),
])
def test_a_missing_or_damaged_cvl_file_is_a_data_error_saying_what(tmp_path, damage, words):
    if damage == "no writers":
        arrays = write_cvl(tmp_path)
        np.savez(tmp_path / FILE_NAME, **{key: arrays[key] for key in KEYS if key != "writers_test"})
    elif damage == "shared writer":
        write_cvl(tmp_path, writers_test=(1, 7, 2, 2))
    elif damage == "label 10":
        write_cvl(tmp_path, y_test=np.array([1, 2, 3, 10], np.uint8))
    elif damage == "float pictures":
        write_cvl(tmp_path, x_train=np.zeros((6, 28, 28)))
    elif damage == "short labels":
        write_cvl(tmp_path, y_train=np.zeros(5, np.uint8))
    elif damage == "not a zip":
        (tmp_path / FILE_NAME).write_bytes(b"not an archive at all")
    with pytest.raises(DataError) as raised:
        load_cvl_digits(tmp_path)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_dark_ink_dataset_converts_both_splits_and_refuses_colour():
    pictures = np.stack([scan((4, 8, 24, 20)), scan((2, 2, 12, 26))])[..., np.newaxis]
    digits = Dataset("scans", pictures, np.array([1, 7], np.int32), pictures[:1], np.array([1], np.int32))
    converted = dark_ink_dataset(digits)
    np.testing.assert_array_equal(converted.x_train[..., 0], dark_ink_to_mnist(pictures[..., 0]))
    np.testing.assert_array_equal(converted.x_test[..., 0], dark_ink_to_mnist(pictures[:1, ..., 0]))
    colour = Dataset("photos", np.zeros((2, 28, 28, 3), np.uint8), np.array([1, 7], np.int32),
                     np.zeros((1, 28, 28, 3), np.uint8), np.array([1], np.int32))
    with pytest.raises(DataError, match="holds colour pictures; the dark-ink rule is for greyscale single digits"):
        dark_ink_dataset(colour)


@pytest.fixture
def handwriting_dir(tmp_path, monkeypatch):
    """A data folder with small MNIST IDX files and a small cvl-digits.npz; load_mnist is given their digests."""
    rng = np.random.default_rng(5)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 20, dtype=np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 10, dtype=np.uint8)}
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
    checksums = {name: md5(tmp_path / name) for name in arrays}
    monkeypatch.setattr(data.handwriting, "load_mnist", functools.partial(load_mnist, checksums=checksums))
    write_cvl(tmp_path)
    return tmp_path


def test_handwriting_is_mnist_then_cvl_with_its_test_parts_and_writers(handwriting_dir):
    mnist, cvl = data.handwriting.load_mnist(handwriting_dir), load_cvl_digits(handwriting_dir)
    digits = load_dataset("handwriting", handwriting_dir)
    for split in ("train", "test"):
        np.testing.assert_array_equal(getattr(digits, f"x_{split}"),
                                      np.concatenate([getattr(mnist, f"x_{split}"), getattr(cvl, f"x_{split}")]))
        np.testing.assert_array_equal(getattr(digits, f"y_{split}"),
                                      np.concatenate([getattr(mnist, f"y_{split}"), getattr(cvl, f"y_{split}")]))
    assert digits.test_parts == (("mnist", 10), ("cvl-digits", 4))
    np.testing.assert_array_equal(digits.writers_test, [-1] * 10 + [1, 1, 2, 2])
    np.testing.assert_array_equal(digits.writers_train, [-1] * 20 + [7, 7, 8, 8, 9, 9])
    # The test writers are none of the training writers.
    assert not set(digits.writers_test[digits.writers_test >= 0]) & set(digits.writers_train)
    limited = digits.limited(12)
    assert limited.test_parts == (("mnist", 10), ("cvl-digits", 2))
    np.testing.assert_array_equal(limited.writers_test, [-1] * 10 + [1, 1])
    assert len(limited.writers_train) == 12
