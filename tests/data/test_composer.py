"""Tests of data/composer/ and the loaders that use it (mnist-numbers, the street composer) on small hand-made
digits; CPU, no network, seconds.

    python3 -m pytest tests/data/test_composer.py -q

The digits here are glyphs whose pixels say what they are: in handwriting each
class is a block of its own brightness; in street crops one class is a ring
and the others are blank. So what lies in each digit's box is checked against
its label by reading pixels, with no model. MNIST files are written here in the
IDX format with struct; one test also runs on the real data if DIGITS_DATA_DIR
holds it.
"""

import gzip
import hashlib
import os
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import data.composer.handwriting
import data.composer.layout
import data.composer.street
import data.mnist
import data.mnist_numbers
from data import DATASETS, DataError, load_dataset
from data.composer import STYLES, NumberComposer
from data.mnist_numbers import INPUT_SHAPE
from data.numbers import MAX_DIGITS, PADDING, lengths
from data.svhn_numbers import street_composer

HANDWRITING_SHAPE, STREET_SHAPE = (32, 128, 1), (32, 96, 3)
GLYPH_COUNT = 40  # hand-made digits per set: every class four times
HANDWRITTEN = ("handwriting", "amounts")  # the looks of MNIST-like digits; the others take SVHN-like crops


def brightness(digit: int) -> int:
    """The handwriting glyph's value for a class: 20 grey levels apart, all well above the ink threshold."""
    return 60 + 20 * digit


def block_digits(labels) -> np.ndarray:
    """MNIST-like (N, 28, 28, 1) uint8: each digit a solid block of brightness(label) on black."""
    images = np.zeros((len(labels), 28, 28, 1), np.uint8)
    for image, label in zip(images, labels):
        image[4:24, 8:20] = brightness(label)
    return images


def ring_crops(labels, marked: int) -> np.ndarray:
    """SVHN-like (N, 32, 32, 3) uint8: class `marked` a bright ring (a 0's shape) on grey, the others plain grey."""
    crops = np.full((len(labels), 32, 32, 3), 90, np.uint8)
    ring = np.zeros((32, 32), bool)
    ring[4:28, 10:22] = True
    ring[7:25, 13:19] = False
    crops[np.asarray(labels) == marked] = np.where(ring[..., None], 230, 90)
    return crops


def glyph_labels(count: int = GLYPH_COUNT) -> np.ndarray:
    return (np.arange(count) % 10).astype(np.int32)


def composer(style: str, output_shape=None, **lengths_range) -> NumberComposer:
    labels = glyph_labels()
    if style in HANDWRITTEN:
        return NumberComposer(block_digits(labels), labels, output_shape or HANDWRITING_SHAPE, style, **lengths_range)
    return NumberComposer(ring_crops(labels, marked=3), labels, output_shape or STREET_SHAPE, style, **lengths_range)


def digit_boxes(labels, boxes):
    """(row, label, box) for every digit of number labels (N, MAX_DIGITS) and boxes (N, MAX_DIGITS, 4)."""
    rows, slots = np.nonzero(labels >= 0)
    return [(row, labels[row, slot], boxes[row, slot]) for row, slot in zip(rows, slots)]


# ---------------------------------------------------------------- what is drawn where


def test_each_handwriting_box_holds_its_own_digit():
    ink, labels, boxes = composer("handwriting").draw_ink(300, seed=1)
    for row, label, (x0, y0, x1, y1) in digit_boxes(labels, boxes):
        # The box's centre is inside the block (a slanted, turned rectangle), away from its edges, where
        # bilinear sampling of a constant block gives the constant back; neighbours overlap less than halfway.
        centre = ink[row, int((y0 + y1) / 2), int((x0 + x1) / 2)]
        assert abs(int(centre) - brightness(label)) <= 1, (row, label, centre)


@pytest.mark.parametrize("marked", [3, 8])
def test_each_street_box_holds_its_own_digit(marked):
    labels = glyph_labels()
    street = NumberComposer(ring_crops(labels, marked), labels, STREET_SHAPE, "street")
    ink, labels, boxes = street.draw_ink(300, seed=2)
    seen = 0
    for row, label, (x0, y0, x1, y1) in digit_boxes(labels, boxes):
        # The middle two fifths of a box's columns: a ring's top and bottom cross them; no neighbour reaches them.
        middle = ink[row, int(y0):int(np.ceil(y1)), int(x0 + 0.3 * (x1 - x0)):int(np.ceil(x1 - 0.3 * (x1 - x0)))]
        if label == marked:
            assert middle.max() > 150, (row, label)
            seen += 1
        else:
            assert middle.max() < 30, (row, label)
    assert seen > 20


@pytest.mark.parametrize("style", STYLES)
def test_boxes_lie_inside_the_image_left_to_right(style):
    numbers = composer(style)
    height, width, _ = numbers.output_shape
    _, labels, boxes = numbers.compose(400, seed=3)
    digits = labels >= 0
    assert np.all(boxes[~digits] == PADDING)
    x0, y0, x1, y1 = np.moveaxis(boxes[digits], -1, 0)
    assert np.all((0 <= x0) & (x0 < x1) & (x1 <= width)) and np.all((0 <= y0) & (y0 < y1) & (y1 <= height))
    centres = (boxes[..., 0] + boxes[..., 2]) / 2
    following = digits[:, 1:]  # digit i + 1 exists, so digit i does too
    assert np.all(centres[:, 1:][following] > centres[:, :-1][following])


@pytest.mark.parametrize("style", STYLES)
def test_digits_fill_most_of_the_height(style):
    _, labels, boxes = composer(style).compose(400, seed=4)
    height = composer(style).output_shape[0]
    shares = ((boxes[..., 3] - boxes[..., 1]) / height)[labels >= 0]
    # Digit heights of 60-90 % of the output, each digit's own size jitter, shrunk when a number is too wide.
    assert 0.6 <= np.median(shares) <= 0.9
    assert shares.max() <= 1.0 and np.percentile(shares, 5) >= 0.4


@pytest.mark.parametrize("style", STYLES)
def test_digits_touch_or_overlap_at_some_rate(style):
    _, labels, boxes = composer(style).compose(1000, seed=5)
    pairs = labels[:, 1:] >= 0
    touching = (boxes[:, :-1, 2] >= boxes[:, 1:, 0])[pairs]
    assert 0.05 < touching.mean() < 0.7
    assert (~touching).mean() > 0.3  # and most of the time there is a gap


# ---------------------------------------------------------------- labels, lengths, seeds, shapes


@pytest.mark.parametrize("style", STYLES)
def test_labels_are_padded_numbers_matching_the_boxes(style):
    _, labels, boxes = composer(style).compose(200, seed=6)
    assert labels.dtype == np.int32 and labels.shape == (200, MAX_DIGITS)
    assert boxes.dtype == np.float32 and boxes.shape == (200, MAX_DIGITS, 4)
    count = lengths(labels)
    assert np.array_equal(labels >= 0, np.arange(MAX_DIGITS) < count[:, None])  # digits, then only padding
    assert np.all(labels[labels < 0] == PADDING) and labels.max() <= 9


def test_lengths_cover_the_range_evenly():
    _, labels, _ = composer("handwriting", min_length=2, max_length=5).compose(800, seed=7)
    counts = np.bincount(lengths(labels), minlength=MAX_DIGITS + 1)
    assert set(np.nonzero(counts)[0]) == {2, 3, 4, 5}
    assert np.all(np.abs(counts[2:6] / 800 - 0.25) < 0.06)  # uniform: 200 each, binomial spread about 12


@pytest.mark.parametrize("style", STYLES)
def test_same_seed_same_numbers_other_seed_other_numbers(style):
    numbers = composer(style)
    first = numbers.compose(30, seed=(8, 1))
    again = numbers.compose(30, seed=(8, 1))
    other = numbers.compose(30, seed=(8, 2))
    for one, two in zip(first, again):
        assert np.array_equal(one, two)
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])
    assert np.array_equal(numbers.compose(30, seed=9)[0], numbers.compose(30, seed=9)[0])  # a plain int too
    _, labels, boxes = numbers.draw_ink(30, seed=(8, 1))  # the layout compose drew
    assert np.array_equal(labels, first[1]) and np.array_equal(boxes, first[2])


def test_chunks_continue_one_seeded_stream(monkeypatch):
    monkeypatch.setattr(data.composer.layout, "CHUNK", 7)
    numbers = composer("street")
    images, labels, boxes = numbers.compose(20, seed=10)
    assert images.shape == (20, *STREET_SHAPE) and lengths(labels).min() >= 1
    _, ink_labels, ink_boxes = numbers.draw_ink(20, seed=10)
    assert np.array_equal(labels, ink_labels) and np.array_equal(boxes, ink_boxes)
    assert not np.array_equal(labels[:7], labels[7:14])  # each chunk draws new numbers


@pytest.mark.parametrize("style, output_shape", [("handwriting", (32, 128, 1)), ("handwriting", (24, 64, 3)),
                                                 ("street", (32, 96, 3)), ("street", (32, 80, 1))])
def test_every_style_gives_its_output_shape(style, output_shape):
    images, labels, boxes = composer(style, output_shape).compose(12, seed=11)
    assert images.dtype == np.uint8 and images.shape == (12, *output_shape)
    assert labels.shape == (12, MAX_DIGITS) and boxes.shape == (12, MAX_DIGITS, 4)
    assert images.std() > 5  # not a blank picture
    assert composer(style, output_shape).compose(0, seed=11)[0].shape == (0, *output_shape)


def test_handwriting_keeps_the_ink_bright():
    images, labels, boxes = composer("handwriting").compose(200, seed=12)
    inside = np.zeros(images.shape[:3], bool)
    for row, _, (x0, y0, x1, y1) in digit_boxes(labels, boxes):
        inside[row, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
    assert images[..., 0][inside].mean() > 2 * images[..., 0][~inside].mean()  # the paper is the dim part


@pytest.mark.parametrize("change, message", [
    ({"style": "print"}, "style"),
    ({"labels": np.full(GLYPH_COUNT, 10)}, "labels"),
    ({"digits": np.zeros((GLYPH_COUNT, 28, 28, 1), np.float32)}, "uint8"),
    ({"output_shape": (32, 128, 2)}, "output_shape"),
    ({"min_length": 3, "max_length": 2}, "min_length"),
    ({"max_length": MAX_DIGITS + 1}, "max_length"),
])
def test_bad_arguments_are_refused(change, message):
    labels = glyph_labels()
    arguments = {"digits": block_digits(labels), "labels": labels, "output_shape": HANDWRITING_SHAPE,
                 "style": "handwriting"} | change
    with pytest.raises(ValueError, match=message):
        NumberComposer(**arguments)


def test_halved_colour_keeps_each_pixels_brightness_and_each_blocks_colour():
    images = np.random.default_rng(13).random((2, 5, 6, 3), np.float32)  # an odd last row keeps its own colour
    out = data.composer.street.halve_colour(images)
    weights = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601
    assert np.allclose(out @ weights, images @ weights, atol=1e-5)
    assert np.array_equal(out[:, 4], images[:, 4])
    for top in (0, 2):
        for left in (0, 2, 4):
            block = images[:, top:top + 2, left:left + 2].reshape(2, 4, 3).mean(axis=1)  # (2, 3)
            colour = out[:, top:top + 2, left:left + 2] - (out[:, top:top + 2, left:left + 2] @ weights)[..., None]
            assert np.allclose(colour, (block - (block @ weights)[:, None])[:, None, None], atol=1e-5)


# ---------------------------------------------------------------- mnist-numbers and the street composer


def write_idx(path: Path, array: np.ndarray):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.fixture
def marked_mnist(tmp_path, monkeypatch):
    """A small MNIST folder whose training digits are classes 0..4 and whose test digits are 5..9.

    A number's labels come from the digits drawn into it (checked above), so its labels say which split's
    digits it was drawn from. The published digests are swapped for these files' own.
    """
    train_labels = np.arange(30) % 5
    test_labels = 5 + np.arange(20) % 5
    files = {"train-images-idx3-ubyte.gz": block_digits(train_labels)[..., 0],
             "train-labels-idx1-ubyte.gz": train_labels,
             "t10k-images-idx3-ubyte.gz": block_digits(test_labels)[..., 0],
             "t10k-labels-idx1-ubyte.gz": test_labels}
    for name, array in files.items():
        write_idx(tmp_path / name, array)
        monkeypatch.setitem(data.mnist.IDX_MD5, name, hashlib.md5((tmp_path / name).read_bytes()).hexdigest())
    monkeypatch.setattr(data.mnist_numbers, "TRAIN_COUNT", 60)
    monkeypatch.setattr(data.mnist_numbers, "TEST_COUNT", 50)
    return tmp_path


def test_mnist_numbers_never_mixes_training_and_test_digits(marked_mnist):
    numbers = load_dataset("mnist-numbers", marked_mnist)
    assert "mnist-numbers" in DATASETS and numbers.name == "mnist-numbers"
    assert numbers.input_shape == INPUT_SHAPE and numbers.y_train.ndim == 2
    assert numbers.x_train.shape == (60, *INPUT_SHAPE) and numbers.x_test.shape == (50, *INPUT_SHAPE)
    assert numbers.y_train.dtype == numbers.y_test.dtype == np.int32
    assert set(np.unique(numbers.y_train)) == {PADDING, 0, 1, 2, 3, 4}
    assert set(np.unique(numbers.y_test)) == {PADDING, 5, 6, 7, 8, 9}
    assert numbers.composer.style == "handwriting" and numbers.composer.output_shape == INPUT_SHAPE
    assert numbers.composed_per_epoch == data.mnist_numbers.COMPOSED_PER_EPOCH > 0
    _, composed, _ = numbers.composer.compose(100, seed=(0, 1))
    assert set(np.unique(composed)) <= {PADDING, 0, 1, 2, 3, 4}


def test_mnist_numbers_is_the_same_at_every_load(marked_mnist):
    first, again = load_dataset("mnist-numbers", marked_mnist), load_dataset("mnist-numbers", marked_mnist)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(first, key), getattr(again, key))


def test_street_composer_reads_the_stand_ins_training_crops(tmp_path):
    labels = glyph_labels()
    np.savez(tmp_path / "svhn-test10k.npz", x_train=ring_crops(labels, marked=3), y_train=labels,
             x_test=ring_crops(labels[:10], marked=3), y_test=labels[:10])
    street = street_composer(tmp_path)
    assert street.style == "street" and street.output_shape == STREET_SHAPE
    assert street.compose(5, seed=0)[0].shape == (5, *STREET_SHAPE)
    assert street_composer(tmp_path, (24, 72, 1)).compose(3, seed=0)[0].shape == (3, 24, 72, 1)


def test_street_composer_says_what_is_missing_or_damaged(tmp_path):
    with pytest.raises(DataError) as caught:
        street_composer(tmp_path)
    message = str(caught.value)
    assert "svhn-test10k.npz" in message and "missing" in message and "\n" not in message
    (tmp_path / "svhn-test10k.npz").write_bytes(b"PK not really a zip")
    with pytest.raises(DataError, match="not a readable"):
        street_composer(tmp_path)


# ---------------------------------------------------------------- real digits, when the data folder has them


REAL = Path(os.environ.get("DIGITS_DATA_DIR", "/nonexistent"))


@pytest.mark.skipif(not all((REAL / name).is_file() for name in data.mnist.IDX_MD5),
                    reason="DIGITS_DATA_DIR does not hold MNIST's IDX files")
def test_real_mnist_digits_compose_bright_numbers_in_their_boxes():
    digits = data.mnist.load_mnist(REAL)
    numbers = NumberComposer(digits.x_test, digits.y_test, HANDWRITING_SHAPE, "handwriting")
    ink, labels, boxes = numbers.draw_ink(64, seed=0)
    images, labels_again, _ = numbers.compose(64, seed=0)
    assert np.array_equal(labels, labels_again)
    inside = np.zeros(ink.shape, bool)
    for row, _, (x0, y0, x1, y1) in digit_boxes(labels, boxes):
        inside[row, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
        # Every real digit leaves ink inside its own box.
        assert ink[row, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))].max() > 128
    assert images[..., 0][inside].mean() > 1.5 * images[..., 0][~inside].mean()


# ---------------------------------------------------------------- groups (one hand per number) and the amounts look


def test_groups_keep_each_number_in_one_group_and_weights_set_the_groups_shares():
    labels = glyph_labels()
    groups = labels // 5  # group 0 holds the glyphs of 0..4, group 1 those of 5..9
    weights = np.where(groups == 1, 3.0, 1.0)  # group 1: 3 * 20 of the 80 weight units, so 3/4 of the numbers
    numbers = NumberComposer(block_digits(labels), labels, HANDWRITING_SHAPE, "amounts", groups=groups,
                             weights=weights)
    _, drawn, _, sources = numbers.compose_with_sources(800, seed=21)
    present = drawn >= 0
    assert np.array_equal(sources >= 0, present) and np.array_equal(labels[np.maximum(sources, 0)][present],
                                                                     drawn[present])
    group = np.where(present, groups[np.maximum(sources, 0)], -1)
    assert np.all((group == group[:, :1]) | ~present)
    assert abs((group[:, 0] == 1).mean() - 0.75) < 0.05  # binomial spread about 0.015


@pytest.mark.parametrize("groups, weights, message", [
    (np.zeros(GLYPH_COUNT - 1, np.int64), None, "groups"),
    (np.zeros(GLYPH_COUNT, np.float32), None, "groups"),
    (np.zeros(GLYPH_COUNT, np.int64), -np.ones(GLYPH_COUNT), "weights"),
    (np.zeros(GLYPH_COUNT, np.int64), np.zeros(GLYPH_COUNT), "weights"),
])
def test_bad_groups_or_weights_are_refused(groups, weights, message):
    labels = glyph_labels()
    with pytest.raises(ValueError, match=message):
        NumberComposer(block_digits(labels), labels, HANDWRITING_SHAPE, "amounts", groups=groups, weights=weights)


def test_a_number_cut_close_repeats_the_columns_at_its_cuts():
    look = replace(data.composer.handwriting.AMOUNTS, cut_share=1, cut_rows_share=0, cut_margin=(0.5, 0.5))
    images = np.random.default_rng(22).random((3, 32, 128), np.float32)
    extents = np.array([[40, 4, 80, 28, 20]] * 3, np.float32)  # x0 y0 x1 y1 digit height: cuts at 30 and 90
    out = look._cut(images, extents, np.random.default_rng(23))
    assert np.array_equal(out[:, :, 30:90], images[:, :, 30:90])
    assert np.array_equal(out[:, :, :30], np.repeat(images[:, :, 30:31], 30, axis=2))
    assert np.array_equal(out[:, :, 90:], np.repeat(images[:, :, 89:90], 38, axis=2))


def test_closing_marks_are_ink_right_of_the_last_digit(monkeypatch):
    look = replace(data.composer.handwriting.AMOUNTS, closings=(("dash", 0.5), ("flourish", 0.5)),
                   separators=tuple((name, 0.0) for name, _ in data.composer.handwriting.AMOUNTS.separators),
                   opening_share=0)
    monkeypatch.setitem(data.composer.layout.LOOKS, "amounts", look)
    ink, labels, boxes = composer("amounts").draw_ink(100, seed=24)
    last = lengths(labels) - 1
    right = boxes[np.arange(100), last, 2]  # each number's last digit's right edge
    beyond = np.arange(ink.shape[2])[None] >= np.ceil(right)[:, None] + 1  # (100, W)
    marked = (ink.max(axis=1) * beyond).max(axis=1) > 128
    assert marked.mean() > 0.9  # every number but those whose mark ran out of the picture
