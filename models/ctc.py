"""Connectionist temporal classification (CTC): how a reader's per-column guesses become a number, and its loss.

A reader looks at an image as T columns, left to right, and for each column
gives probabilities over the digits 0..9 and BLANK (nothing new here). A number
is read by the greedy path: the most probable symbol of every column, runs of
the same symbol merged, blanks dropped. "3 3 _ _ 3 _ 7 7" reads 337: the blank
between the two 3s is what separates a repeated digit from a wide one.

Everything here is keras.ops, so the same code runs in training metrics, in the
exported SavedModel and in the LiteRT files.
"""

import keras
from keras import ops

from data.numbers import MAX_DIGITS, PADDING

DIGITS = 10
BLANK = DIGITS  # the last class of every column; keras.losses.CTC assumes 0, which is why it is not used
TINY = 1e-7  # keeps log() of a probability finite


def ctc_loss(labels, column_probabilities):
    """Mean CTC loss of a batch: labels (B, L) int, digits then PADDING; probabilities (B, T, DIGITS + 1).

    Each label's real length is passed (keras.losses.CTC would treat the padded
    width as every label's length; keras-team/keras#21876). The op wants logits
    and applies a log-softmax; the log of probabilities that sum to 1 is already
    normalised, so it passes through unchanged.
    """
    labels = ops.cast(labels, "int32")
    label_lengths = ops.sum(ops.cast(labels >= 0, "int32"), axis=1)
    batch, columns = ops.shape(column_probabilities)[0], ops.shape(column_probabilities)[1]
    column_counts = ops.full((batch,), columns, "int32")
    losses = ops.ctc_loss(ops.maximum(labels, 0), ops.log(column_probabilities + TINY), label_lengths,
                          column_counts, mask_index=BLANK)
    return ops.mean(losses)


def greedy_read(column_probabilities, max_digits: int = MAX_DIGITS) -> dict:
    """The greedy reading of (B, T, DIGITS + 1) column probabilities.

    Returns a dict of tensors:
      digits         int32 (B, max_digits): the digits read, left to right, then PADDING
      confidences    float32 (B, max_digits): each digit's probability in the column that emitted it, 0 after
      columns        int32 (B, max_digits): the column (0..T-1) where each digit was read, PADDING after
      probability    float32 (B,): the greedy path's probability, the product of every column's best
    Digits beyond max_digits are dropped.
    """
    best_probability = ops.max(column_probabilities, axis=-1)  # (B, T)
    # The first most probable symbol per column. (keras.ops.argmax guards against -0.0 with bit
    # operations that LiteRT cannot run; probabilities are never negative.)
    symbols = ops.shape(column_probabilities)[-1]
    is_best = ops.equal(column_probabilities, ops.expand_dims(best_probability, -1))
    best = ops.min(ops.where(is_best, ops.arange(symbols, dtype="int32"), symbols), axis=-1)  # (B, T) int32
    previous = ops.pad(best[:, :-1], [[0, 0], [1, 0]], constant_values=BLANK)
    # Masks are 0/1 floats, combined by multiplication: LiteRT has no kernel for TensorFlow's
    # logical ops on booleans as Keras lowers them.
    emitted = (ops.cast(ops.not_equal(best, BLANK), "float32")
               * ops.cast(ops.not_equal(best, previous), "float32"))  # (B, T): column t starts a digit
    slot = ops.cast(ops.cumsum(emitted, axis=1), "int32") - 1  # the digit's place in the number, per column
    # (B, T, max_digits): 1 where column t emits the number's digit j.
    places = ops.arange(max_digits, dtype="int32")
    here = ops.expand_dims(emitted, -1) * ops.cast(ops.equal(ops.expand_dims(slot, -1), places), "float32")
    found = ops.max(here, axis=1) > 0  # (B, max_digits)
    digits = ops.sum(here * ops.cast(ops.expand_dims(best, -1), "float32"), axis=1)
    column_index = ops.cast(ops.arange(ops.shape(best)[1]), "float32")[None, :, None]
    columns = ops.sum(here * column_index, axis=1)
    confidences = ops.sum(here * ops.expand_dims(best_probability, -1), axis=1)
    return {
        "digits": ops.where(found, ops.cast(ops.round(digits), "int32"), PADDING),
        "confidences": confidences,
        "columns": ops.where(found, ops.cast(ops.round(columns), "int32"), PADDING),
        "probability": ops.exp(ops.sum(ops.log(best_probability + TINY), axis=1)),
    }


class WholeNumberAccuracy(keras.metrics.MeanMetricWrapper):
    """Share of numbers read exactly: every digit and the length right (the standard measure)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(whole_number_matches, name=name, dtype=dtype)


def whole_number_matches(labels, column_probabilities):
    """1.0 where the greedy reading equals the label (B, L) exactly, else 0.0: (B,) float32."""
    labels = ops.cast(labels, "int32")
    read = greedy_read(column_probabilities, ops.shape(labels)[1])["digits"]
    wrong = ops.cast(ops.not_equal(read, ops.where(labels >= 0, labels, PADDING)), "float32")
    return 1.0 - ops.max(wrong, axis=1)
