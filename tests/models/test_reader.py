"""The number reader's parts against hand-computed answers: CTC reading, CTC loss, the model's shapes.

    python -m pytest tests/test_reader.py -q
"""

import itertools

import numpy as np
import pytest

from data.framing import fit_to_input
from data.numbers import MAX_DIGITS, PADDING, decode, encode, lengths
from models import KINDS, MODELS
from models.ctc import BLANK, ctc_loss, greedy_read, whole_number_matches
from analysis.introspection import classifier_shapes
from conftest import write_number_split  # at import: tests/web's conftest.py later takes the name
from harness import kinds
from models.reader import build_reader, width_stride


def columns_from_path(path, sure=0.9):
    """Column probabilities (1, T, 11) whose most probable symbol in column t is path[t]."""
    probabilities = np.full((1, len(path), BLANK + 1), (1 - sure) / BLANK, np.float32)
    for column, symbol in enumerate(path):
        probabilities[0, column, symbol] = sure
    return probabilities


def collapse(path):
    """CTC's rule, written out: merge runs of a symbol, then drop blanks."""
    return [symbol for symbol, _ in itertools.groupby(path) if symbol != BLANK]


@pytest.mark.parametrize("path, number", [
    ([3, 3, BLANK, BLANK, 3, BLANK, 7, 7], "337"),  # a blank separates a repeated digit
    ([3, 3, 3, 7, 7, 7, BLANK, BLANK], "37"),  # runs merge
    ([BLANK] * 8, ""),  # nothing read
    ([0, BLANK, 0, BLANK, 6, 3, BLANK, BLANK], "0063"),  # leading zeros are digits
    ([1, 2, 3, 4, 5, 6, 7, 8], "123456"),  # beyond MAX_DIGITS is dropped
])
def test_greedy_read_follows_the_ctc_rule(path, number):
    reading = {key: np.asarray(value) for key, value in greedy_read(columns_from_path(path)).items()}
    assert decode(reading["digits"]) == [number]
    assert "".join(map(str, collapse(path)))[:MAX_DIGITS] == number
    count = len(number)
    assert (reading["digits"][0, count:] == PADDING).all() and (reading["columns"][0, count:] == PADDING).all()
    # Each digit's column is the first column of its run.
    starts = [column for column, symbol in enumerate(path)
              if symbol != BLANK and (column == 0 or path[column - 1] != symbol)][:MAX_DIGITS]
    assert reading["columns"][0, :count].tolist() == starts
    np.testing.assert_allclose(reading["confidences"][0, :count], 0.9, rtol=1e-6)
    np.testing.assert_allclose(reading["probability"][0], 0.9 ** len(path), rtol=1e-5)


def test_ctc_loss_equals_the_sum_over_every_path():
    """-log of the summed probability of every path that collapses to the label, enumerated by brute force."""
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(BLANK + 1), size=(1, 7)).astype(np.float32)
    label = [4, 4, 1]
    total = 0.0
    for path in itertools.product([4, 1, BLANK], repeat=7):  # other symbols cannot appear in a valid path
        if collapse(path) == label:
            total += np.prod([probabilities[0, column, symbol] for column, symbol in enumerate(path)])
    loss = float(ctc_loss(encode(["441"]), probabilities))
    assert loss == pytest.approx(-np.log(total), rel=1e-4)


def test_whole_number_matches_needs_every_digit_and_the_length():
    probabilities = np.concatenate([columns_from_path([2, BLANK, 5, BLANK, BLANK, BLANK])] * 3)
    matches = np.asarray(whole_number_matches(encode(["25", "2", "255"]), probabilities))
    assert matches.tolist() == [1.0, 0.0, 0.0]


def test_number_labels_round_trip():
    numbers = ["0", "063", "123456", "9"]
    labels = encode(numbers)
    assert labels.shape == (4, MAX_DIGITS) and labels.dtype == np.int32
    assert decode(labels) == numbers and lengths(labels).tolist() == [1, 3, 6, 1]
    for bad in ["", "12a", "1234567", "-1", "٣"]:
        with pytest.raises(ValueError):
            encode([bad])


def test_fit_to_input_keeps_the_aspect_and_repeats_the_edges():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :10] = 200  # left half bright, right half dark
    fitted = fit_to_input(image, 32, 96)
    assert fitted.shape == (32, 96, 3) and fitted.dtype == np.uint8
    # 10x20 scales to 32x64, centred: 16 columns of repeated edge on each side.
    assert (fitted[:, :16] == 200).all() and (fitted[:, -16:] == 0).all()
    assert fit_to_input(np.zeros((50, 500, 1), np.uint8), 32, 96).shape == (32, 96, 1)


@pytest.mark.parametrize("input_shape", [(32, 96, 3), (32, 128, 1)])
def test_reader_shapes_and_names(input_shape):
    model = build_reader(input_shape, 10)
    assert model.output_shape == (None, input_shape[1] // width_stride(), BLANK + 1)
    assert classifier_shapes(model, "reader") == (input_shape, 10) and kinds.of_model(model) is kinds.READER
    assert {"conv1", "conv1_relu", "columns", "sequence1", "logits", "probabilities"} <= {
        layer.name for layer in model.layers}
    sums = np.asarray(model(np.zeros((2, *input_shape), np.float32))).sum(-1)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)


def test_reader_refuses_images_too_narrow_for_six_digits():
    from data import UserError
    with pytest.raises(UserError, match="two columns per digit"):
        build_reader((32, 32, 3), 10)


def test_registry_kinds():
    assert MODELS["reader"].kind is kinds.READER and MODELS["convnet"].kind is kinds.CLASSIFIER
    assert {architecture.kind for architecture in MODELS.values()} == set(KINDS.values())


def test_train_refuses_a_model_of_the_wrong_kind_for_the_data(tmp_path, capsys):
    """A reader on single digits, or a classifier on whole numbers: one line, exit 2, nothing written."""
    import train

    assert train.main(["--model", "reader", "--dataset", "synthetic", "--run-dir", str(tmp_path / "a")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "single digits" in error and "--model reader is a reader" in error
    for split in ("train", "test"):
        write_number_split(tmp_path / "data" / "svhn-numbers" / split, 4, np.random.default_rng(0), longest=2)
    assert train.main(["--model", "convnet", "--dataset", "svhn-numbers", "--data-dir", str(tmp_path / "data"),
                       "--run-dir", str(tmp_path / "b")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "whole numbers" in error and "choose reader" in error
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
