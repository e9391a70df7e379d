"""A model's mistakes grouped by kind, so that the next lever is chosen from what it gets wrong.

    from analysis.mistake_kinds import classifier_kinds, reader_kinds
    groups = classifier_kinds(truth, predicted, confidences)   # the commonest confusions, each a MistakeGroup
    groups = reader_kinds(truth, read, probabilities)          # length short/long, one digit (by pair), two or more
    writer_errors(wrong, writers)                              # the writers with the most mistakes

Each group counts its mistakes and names its examples (indices into the test
set, most confident first); evaluate.py draws them on one page
(mistake_kinds.png, analysis/drawing/results.py) and writes the counts into
evaluation.json.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from data.numbers import lengths

SHOWN_PAIRS = 6  # confused pairs given a row of their own
SHOWN_WRITERS = 12  # writers listed, the most mistaken first


@dataclass(frozen=True)
class MistakeGroup:
    """One kind of mistake: a title, how many test items it covers, and example indices (most confident first)."""

    key: str  # stable name in evaluation.json, e.g. "4->9" or "length_short"
    title: str
    count: int
    examples: np.ndarray  # (E,) int indices into the test set


def _most_confident(indices: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    return indices[np.argsort(-confidences[indices], kind="stable")]


def _pair_groups(pairs: list[tuple[int, int]], indices: np.ndarray, confidences: np.ndarray, what: str,
                 shown: int = SHOWN_PAIRS) -> list[MistakeGroup]:
    """The commonest (true, read) pairs among `pairs` (one per index in `indices`), each a group."""
    groups = []
    for (true, read), count in Counter(pairs).most_common(shown):
        members = np.array([index for index, pair in zip(indices, pairs, strict=True) if pair == (true, read)], int)
        groups.append(MistakeGroup(f"{true}->{read}", f"{what}{true} read as {read}: {count}", count,
                                   _most_confident(members, confidences)))
    return groups


def classifier_kinds(truth: np.ndarray, predicted: np.ndarray, confidences: np.ndarray) -> list[MistakeGroup]:
    """A classifier's mistakes (truth, predicted (N,) int) by confused pair, the commonest first."""
    wrong = np.flatnonzero(predicted != truth)
    pairs = [(int(truth[index]), int(predicted[index])) for index in wrong]
    return _pair_groups(pairs, wrong, confidences, "")


def reader_kinds(truth: np.ndarray, read: np.ndarray, probabilities: np.ndarray) -> list[MistakeGroup]:
    """A reader's wrong numbers (truth, read (N, MAX_DIGITS): digits then -1) by kind.

    Read too short, read too long, one digit wrong at the right length (then one
    group per commonest pair), two or more digits wrong at the right length.
    """
    true_lengths, read_lengths = lengths(truth), lengths(read)
    same_length = true_lengths == read_lengths
    digits_wrong = ((truth != read) & (truth >= 0)).sum(axis=1) * same_length
    kinds = [("length_short", "read with digits missing", read_lengths < true_lengths),
             ("length_long", "read with digits too many", read_lengths > true_lengths),
             ("one_digit", "one digit wrong, length right", digits_wrong == 1),
             ("several_digits", "two or more digits wrong, length right", digits_wrong >= 2)]
    groups = []
    for key, title, members in kinds:
        indices = np.flatnonzero(members)
        groups.append(MistakeGroup(key, f"{title}: {len(indices)}", len(indices),
                                   _most_confident(indices, probabilities)))
    one = np.flatnonzero(digits_wrong == 1)
    pairs = []
    for index in one:
        position = int(np.flatnonzero(truth[index] != read[index])[0])
        pairs.append((int(truth[index, position]), int(read[index, position])))
    return groups + _pair_groups(pairs, one, probabilities, "one digit: ")


def writer_errors(wrong: np.ndarray, writers: np.ndarray, shown: int = SHOWN_WRITERS) -> list[dict]:
    """The writers (ids >= 0 in `writers` (N,)) with the highest share of mistakes (`wrong` (N,) bool), as
    evaluation.json lists them: writer, items, errors, error_rate."""
    known = writers >= 0
    ids, which, items = np.unique(writers[known], return_inverse=True, return_counts=True)
    errors = np.bincount(which, weights=wrong[known], minlength=len(ids)).astype(int)
    order = np.lexsort((ids, -errors / np.maximum(items, 1)))[:shown]
    return [{"writer": int(ids[i]), "items": int(items[i]), "errors": int(errors[i]),
             "error_rate": float(errors[i] / items[i])} for i in order]


def as_json(groups: list[MistakeGroup]) -> dict:
    """evaluation.json's mistake_kinds: each group's key -> its count."""
    return {group.key: group.count for group in groups}
