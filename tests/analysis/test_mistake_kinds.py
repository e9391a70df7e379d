"""Mistakes grouped by kind, against counts made by hand."""

import numpy as np

from analysis.mistake_kinds import as_json, classifier_kinds, reader_kinds, writer_errors
from data.numbers import PADDING


def test_classifier_kinds_are_the_commonest_pairs_with_their_most_confident_examples():
    truth = np.array([4, 4, 4, 9, 9, 1, 1, 1, 7, 3])
    read = np.array([9, 9, 9, 4, 4, 7, 1, 7, 7, 3])
    confidence = np.array([0.5, 0.9, 0.7, 0.6, 0.8, 0.99, 1.0, 0.3, 1.0, 1.0])
    groups = classifier_kinds(truth, read, confidence)
    assert [(group.key, group.count) for group in groups] == [("4->9", 3), ("9->4", 2), ("1->7", 2)]
    assert groups[0].title == "4 read as 9: 3"
    assert groups[0].examples.tolist() == [1, 2, 0]  # most confident first
    assert groups[2].examples.tolist() == [5, 7]
    assert as_json(groups) == {"4->9": 3, "9->4": 2, "1->7": 2}


def numbers(*texts: str) -> np.ndarray:
    rows = np.full((len(texts), 6), PADDING, np.int32)
    for row, text in zip(rows, texts, strict=True):
        row[:len(text)] = [int(digit) for digit in text]
    return rows


def test_reader_kinds_split_length_one_digit_and_several_digit_mistakes():
    truth = numbers("123", "4567", "89", "100", "11", "2024", "77")
    read = numbers("123", "456", "891", "700", "17", "2204", "")
    probability = np.linspace(0.9, 0.3, 7)
    groups = {group.key: group for group in reader_kinds(truth, read, probability)}
    assert groups["length_short"].examples.tolist() == [1, 6]  # "4567" -> "456", "77" -> nothing
    assert groups["length_long"].examples.tolist() == [2]
    assert groups["one_digit"].examples.tolist() == [3, 4]  # "100" -> "700", "11" -> "17"
    assert groups["several_digits"].examples.tolist() == [5]  # "2024" -> "2204": two digits swapped
    assert groups["1->7"].count == 2 and groups["1->7"].examples.tolist() == [3, 4]
    assert groups["one_digit"].title == "one digit wrong, length right: 2"


def test_writer_errors_rank_writers_by_their_share_wrong():
    writers = np.array([-1, -1, 5, 5, 5, 5, 6, 6, 8])
    wrong = np.array([True, True, True, False, False, False, True, True, False])
    assert writer_errors(wrong, writers) == [
        {"writer": 6, "items": 2, "errors": 2, "error_rate": 1.0},
        {"writer": 5, "items": 4, "errors": 1, "error_rate": 0.25},
        {"writer": 8, "items": 1, "errors": 0, "error_rate": 0.0}]  # unknown writers (-1) are left out
