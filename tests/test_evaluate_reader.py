"""evaluate.py on a number reader: a real --dry-run reader run on a tiny svhn-numbers folder drawn here.

    python -m pytest tests/test_evaluate_reader.py -q

The expected values do not come from evaluate.py or models/ctc.py: the saved
model.keras is run here and its columns are read by a few lines of numpy (the
CTC greedy rule written out), the measures are counted from digit strings, and
the metric helpers are checked against answers worked out by hand.
"""

import contextlib
import io
import json
import shutil
from collections import Counter
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.image import imread

import evaluate
from analysis import evaluation
from conftest import dry_run_reader
from data import load_dataset
from data.numbers import MAX_DIGITS, decode, encode
from analysis.drawing import results

BLANK = 10  # the reader's last class (models/ctc.py)
TILE = 32  # pixels per drawn digit, square
NUMBERS = {"train": 40, "test": 20}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- a tiny svhn-numbers folder


@pytest.fixture(scope="module")
def reader_run(tmp_path_factory):
    """(run folder, data folder, stdout, the arguments evaluate.py gave number_mistakes): trained, then evaluated."""
    run_dir, data_dir = dry_run_reader(tmp_path_factory, longest=5, counts=NUMBERS.items(), tile=TILE)
    shown = {}

    def number_mistakes(images, readings, truths, probabilities, **options):
        shown.update(images=images, readings=readings, truths=truths, probabilities=np.asarray(probabilities))
        return original(images, readings, truths, probabilities, **options)

    original = results.number_mistakes
    stdout = io.StringIO()  # capsys is per test; this run is shared by the module
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setattr(results, "number_mistakes", number_mistakes)
        assert evaluate.main(["--run-dir", str(run_dir)]) == 0
    return run_dir, data_dir, stdout.getvalue(), shown


# ----------------------------------------------------------------------------- the reading, independently


def greedy_reading(columns: np.ndarray):
    """CTC greedy reading of (N, T, 11) column probabilities: the best symbol per column, runs merged, blanks dropped.

    Returns the digit strings and each digit's probability in the column that began its run, (N, MAX_DIGITS), 0 after.
    """
    best, sure = columns.argmax(-1), columns.max(-1)
    numbers, confidences = [], np.zeros((len(columns), MAX_DIGITS), np.float32)
    for row, path in enumerate(best):
        starts = [column for column, symbol in enumerate(path)
                  if symbol != BLANK and (column == 0 or path[column - 1] != symbol)][:MAX_DIGITS]
        numbers.append("".join(str(path[column]) for column in starts))
        confidences[row, :len(starts)] = sure[row, starts]
    return numbers, confidences


def reading_here(run_dir: Path, data_dir: Path):
    """(truth, read, reading probability, digit probabilities): digit strings, (N,) and (N, MAX_DIGITS) floats,
    from model.keras run here on the run's test images."""
    config = json.loads((run_dir / "config.json").read_text())
    digits = load_dataset("svhn-numbers", data_dir).limited(config["limit"])
    model = keras.saving.load_model(run_dir / "model.keras")
    columns = np.asarray(model.predict_on_batch(digits.x_test.astype(np.float32) / 255))  # (N, T, 11)
    read, confidences = greedy_reading(columns)
    return decode(digits.y_test), read, columns.max(-1).astype(np.float64).prod(-1), confidences


def as_labels(numbers: list[str]) -> np.ndarray:
    """Digit strings, "" too (nothing read), -> (N, MAX_DIGITS) int32, -1 after the digits."""
    labels = np.full((len(numbers), MAX_DIGITS), -1, np.int32)
    for row, number in enumerate(numbers):
        labels[row, :len(number)] = [int(digit) for digit in number]
    return labels


def measures_by_hand(truth: list[str], read: list[str]) -> dict:
    """The measures evaluation.json reports, counted from digit strings."""
    right = [t == r for t, r in zip(truth, read)]
    lengths = sorted({len(t) for t in truth})
    pairs = Counter((len(t), len(r)) for t, r in zip(truth, read))
    return {
        "whole_number_accuracy": np.mean(right),
        "errors": right.count(False),
        "per_digit_accuracy": sum(place < len(r) and r[place] == digit
                                  for t, r in zip(truth, read) for place, digit in enumerate(t))
                              / sum(map(len, truth)),
        "length_accuracy": np.mean([len(t) == len(r) for t, r in zip(truth, read)]),
        "by_length": {str(n): {"numbers": sum(len(t) == n for t in truth),
                               "whole_number_accuracy": np.mean([ok for t, ok in zip(truth, right) if len(t) == n])}
                      for n in lengths},
        "length_confusion": {"true_lengths": [1, 2, 3, 4, 5, 6], "read_lengths": [0, 1, 2, 3, 4, 5, 6],
                             "counts": [[pairs[(t, r)] for r in range(7)] for t in range(1, 7)]},
    }


def assert_measures(measured: dict, expected: dict) -> None:
    for key, value in expected.items():
        if key == "by_length":
            assert measured[key].keys() == value.keys()
            for length, row in value.items():
                assert measured[key][length]["numbers"] == row["numbers"]
                assert measured[key][length]["whole_number_accuracy"] == pytest.approx(row["whole_number_accuracy"])
        elif key in ("errors", "length_confusion"):
            assert measured[key] == value, key
        else:
            assert measured[key] == pytest.approx(value), key


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    height, width, _ = imread(path).shape
    assert height > 100 and width > 100


# ----------------------------------------------------------------------------- the run


def test_evaluation_of_a_reader_matches_a_reading_made_here(reader_run):
    run_dir, data_dir, _, _ = reader_run
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    truth, read, _, _ = reading_here(run_dir, data_dir)
    assert evaluation["dataset"] == "svhn-numbers"
    assert evaluation["test_images"] == len(truth) == NUMBERS["test"]
    assert_measures(evaluation, measures_by_hand(truth, read))
    assert sum(map(sum, evaluation["length_confusion"]["counts"])) == NUMBERS["test"]
    assert set(evaluation) == {"dataset", "test_images", "whole_number_accuracy", "errors", "per_digit_accuracy",
                               "length_accuracy", "by_length", "length_confusion", "parts", "mistake_kinds",
                               "savedmodel_parity"}
    kinds = evaluation["mistake_kinds"]  # counted by hand from the digit strings
    assert kinds["length_short"] == sum(len(r) < len(t) for t, r in zip(truth, read))
    assert kinds["length_long"] == sum(len(r) > len(t) for t, r in zip(truth, read))
    wrong_digits = [sum(a != b for a, b in zip(t, r)) for t, r in zip(truth, read) if len(t) == len(r)]
    assert kinds["one_digit"] == wrong_digits.count(1)
    assert kinds["several_digits"] == sum(count >= 2 for count in wrong_digits)
    assert evaluation["parts"] == {}  # one source


def test_the_savedmodel_reads_what_model_keras_reads(reader_run):
    run_dir, _, stdout, _ = reader_run
    parity = json.loads((run_dir / "evaluation.json").read_text())["savedmodel_parity"]
    assert parity["agrees"] and parity["prediction_disagreements"] == 0 and parity["images"] == NUMBERS["test"]
    assert 0 <= parity["max_probability_difference"] <= evaluation.PARITY_TOLERANCE
    lines = stdout.strip().splitlines()
    assert lines[-2].startswith("whole-number accuracy ") and f"of {NUMBERS['test']} numbers read wrong" in lines[-2]
    assert lines[-1].startswith(f"SavedModel agrees with model.keras on all {NUMBERS['test']} test images")


def test_figures_are_pngs_and_the_gallery_shows_the_most_confident_mistakes_first(reader_run):
    run_dir, data_dir, _, shown = reader_run
    for name in ["confusion_matrix.png", "mistakes.png", "mistake_kinds.png"]:
        assert_png(run_dir / name)
    truth, read, probability, _ = reading_here(run_dir, data_dir)
    wrong = [index for index in range(len(truth)) if truth[index] != read[index]]
    assert sorted(shown["truths"]) == sorted(truth[index] for index in wrong)
    assert sorted(shown["readings"]) == sorted(read[index] for index in wrong)
    assert len(shown["images"]) == len(wrong)
    assert np.all(np.diff(shown["probabilities"]) <= 0)
    np.testing.assert_allclose(sorted(shown["probabilities"]), sorted(probability[wrong]), rtol=1e-4, atol=1e-30)


def test_a_savedmodel_that_reads_differently_exits_1(reader_run, monkeypatch, capsys, tmp_path):
    run_dir, _, _, _ = reader_run
    monkeypatch.setattr(evaluation, "PARITY_TOLERANCE", -1.0)  # any difference, even none, is too much
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    assert evaluate.main(["--run-dir", str(copy), "--max-mistakes", "2"]) == 1
    assert "warning: the SavedModel disagrees with model.keras" in capsys.readouterr().err


def test_reading_parity_counts_numbers_read_differently(reader_run):
    run_dir, data_dir, _, _ = reader_run
    digits = load_dataset("svhn-numbers", data_dir)
    _, read, probability, confidences = reading_here(run_dir, data_dir)
    keras_reading = {"digits": as_labels(read), "probability": probability, "confidences": confidences}
    parity = evaluation.reading_parity(run_dir / "saved_model", digits.x_test, keras_reading)
    assert parity["prediction_disagreements"] == 0 and parity["agrees"]
    keras_reading["digits"][[3, 7], 0] = (keras_reading["digits"][[3, 7], 0] + 1) % 10  # two numbers read otherwise
    keras_reading["probability"] = probability + np.arange(len(probability)) * 1e-3
    parity = evaluation.reading_parity(run_dir / "saved_model", digits.x_test, keras_reading)
    assert parity["prediction_disagreements"] == 2 and not parity["agrees"]
    assert parity["max_probability_difference"] == pytest.approx((len(probability) - 1) * 1e-3, rel=1e-3)


# ----------------------------------------------------------------------------- the measures, by hand


def test_reading_measures_by_hand():
    measures = evaluation.reading_measures(encode(["12", "345", "6"]), encode(["12", "34", "7"]))
    assert measures["whole_number_accuracy"] == pytest.approx(1 / 3)
    assert measures["errors"] == 2
    assert measures["per_digit_accuracy"] == pytest.approx(4 / 6)  # 1, 2, 3, 4 right; 5 missing; 7 for 6
    assert measures["length_accuracy"] == pytest.approx(2 / 3)
    assert measures["by_length"] == {"1": {"numbers": 1, "whole_number_accuracy": 0.0},
                                     "2": {"numbers": 1, "whole_number_accuracy": 1.0},
                                     "3": {"numbers": 1, "whole_number_accuracy": 0.0}}
    counts = np.zeros((6, 7), int)
    counts[0, 1] = counts[1, 2] = counts[2, 2] = 1  # rows: true length 1..6; columns: read length 0..6
    assert measures["length_confusion"] == {"true_lengths": [1, 2, 3, 4, 5, 6],
                                            "read_lengths": [0, 1, 2, 3, 4, 5, 6], "counts": counts.tolist()}


def test_digits_count_at_their_place_and_nothing_read_is_length_0():
    measures = evaluation.reading_measures(encode(["063", "123456", "9"]), as_labels(["63", "123456", ""]))
    # 063 read as 63: every digit is off by a place, so none is right; 123456 all six; 9 none.
    assert measures["per_digit_accuracy"] == pytest.approx(6 / 10)
    assert measures["whole_number_accuracy"] == pytest.approx(1 / 3) and measures["errors"] == 2
    counts = np.array(measures["length_confusion"]["counts"])
    assert counts[0, 0] == counts[2, 2] == counts[5, 6] == 1 and counts.sum() == 3
    # Any negative value pads: a reading padded with -7 is the same reading.
    assert evaluation.whole_numbers_right(encode(["5"]), np.array([[5, -7, -7, -7, -7, -7]])).tolist() == [True]


def test_reading_measures_are_strict_json():
    measures = evaluation.reading_measures(encode(["1", "22"]), encode(["1", "2"]))
    json.dumps(measures, allow_nan=False)  # numpy scalars or NaN would fail here
    assert list(measures["by_length"]) == ["1", "2"]


# ----------------------------------------------------------------------------- the figures


def titles(figure) -> list[str]:
    return [axis.get_title() for axis in figure.axes if axis.get_title()]


def test_number_mistakes_titles_each_reading():
    images = np.zeros((3, 32, 96, 3), np.uint8)
    figure = results.number_mistakes(images, ["12", "", "7"], ["13", "4", "77"], [0.91, 0.3, 1e-9])
    assert titles(figure) == ["read 12, truth 13 (91%)", "read nothing, truth 4 (30%)", "read 7, truth 77 (<1%)"]
    assert figure.get_suptitle() == "wrongly read test numbers, most confident first"
    plt.close(figure)
    empty = results.number_mistakes(images[:0], [], [], [])
    assert empty.get_suptitle() == "no wrongly read test numbers"
    plt.close(empty)


def test_length_confusion_figure_writes_every_count():
    counts = np.zeros((6, 7), int)
    counts[0, 1], counts[1, 2], counts[2, 2] = 5, 7, 2
    figure = results.length_confusion(counts, list(range(1, 7)), list(range(7)))
    axis = figure.axes[0]
    assert sorted(text.get_text() for text in axis.texts) == ["2", "5", "7"]
    assert axis.get_title() == "2 of 14 test numbers read at the wrong length"
    plt.close(figure)
