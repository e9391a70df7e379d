"""A trained run measured on its test set, for each kind: evaluation.json's content and its figures.

    from harness import runs
    run = runs.open_run("runs/convnet_mnist")
    evaluation = run.kind.evaluate(run, max_mistakes=48)   # evaluate_classifier or evaluate_reader
    evaluation.content["test_accuracy"], evaluation.figures["confusion_matrix.png"]

Each evaluation also checks the exported SavedModel against model.keras on every
test image (savedmodel_parity, reading_parity): the served model must agree.
Computation and figures only; evaluate.py writes them into the run.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from sklearn.metrics import classification_report, confusion_matrix

from analysis import mistake_kinds
from analysis.drawing import results
from analysis.introspection import model_outputs
from data.numbers import MAX_DIGITS, decode, lengths, whole_numbers_right
from harness import runs
from harness.errors import UserError
from models.ctc import greedy_read
from serving.export import DIGIT, INPUT, PROBABILITIES, READING, SIGNATURE

BATCH_SIZE = 1000  # test images per SavedModel call
# SavedModel and .keras run the same float32 graph; anything beyond rounding is a real difference.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one run gives: evaluation.json's content, the figures by file name, a line for the terminal."""

    content: dict
    figures: dict  # role (runs.CONFUSION_FILE, MISTAKES_FILE, MISTAKE_KINDS_FILE) -> matplotlib Figure
    summary: str


def by_part(digits, right: np.ndarray) -> dict:
    """evaluation.json's parts: for a data set of several sources (Dataset.test_parts), each one's share right."""
    parts, start = {}, 0
    for name, count in digits.test_parts:
        hits = right[start:start + count]
        parts[name] = {"test_images": int(count), "accuracy": float(hits.mean()) if count else 0.0,
                       "errors": int(count - hits.sum())}
        start += count
    return parts


def parts_summary(parts: dict) -> str:
    return "".join(f"; {name} {part['accuracy']:.4f}" for name, part in parts.items())


def writer_content(digits, wrong: np.ndarray) -> dict:
    """evaluation.json's writers, where the data set knows who wrote each test item: the most mistaken ones."""
    if digits.writers_test is None:
        return {}
    return {"writers": mistake_kinds.writer_errors(wrong, digits.writers_test)}



def serving_outputs(saved_model_dir: Path, images, names) -> dict:
    """The SavedModel's serving_default outputs `names` for the raw uint8 images (N, H, W, C), each (N, ...) numpy.

    A UserError if the SavedModel cannot be loaded, does not take raw uint8 pixels,
    or lacks one of the outputs (each means: rewrite it with python -m serving.export).
    """
    try:
        serving = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE]
    except (OSError, KeyError, ValueError) as error:
        raise UserError(f"cannot load the SavedModel in {saved_model_dir} ({type(error).__name__}); "
                        f"rewrite it with python -m serving.export.") from error
    inputs = serving.structured_input_signature[1]
    if INPUT not in inputs or inputs[INPUT].dtype != tf.uint8:
        raise UserError(f"the SavedModel in {saved_model_dir} does not take raw uint8 pixels (it predates them); "
                        f"rewrite it with python -m serving.export.")
    missing = sorted(set(names) - set(serving.structured_outputs))
    if missing:
        raise UserError(f"the SavedModel in {saved_model_dir} gives no {', '.join(missing)} (it was exported for "
                        f"another kind of model); rewrite it with python -m serving.export.")
    outputs = [serving(**{INPUT: images[start:start + BATCH_SIZE]}) for start in range(0, len(images), BATCH_SIZE)]
    return {name: np.concatenate([np.asarray(output[name]) for output in outputs]) for name in names}


def savedmodel_parity(saved_model_dir: Path, images, keras_probabilities) -> dict:
    """How the exported SavedModel's serving_default signature agrees with model.keras.

    The signature gets the raw uint8 test images (it scales them itself); its
    probabilities and its `digit` output are compared with the Keras model's
    probabilities (N, K).
    """
    outputs = serving_outputs(saved_model_dir, images, [PROBABILITIES, DIGIT])
    exported, digits = outputs[PROBABILITIES], outputs[DIGIT]
    expected = keras_probabilities.argmax(1)
    disagreements = int(((exported.argmax(1) != expected) | (digits != expected)).sum())
    difference = float(np.abs(exported - keras_probabilities).max())
    return parity_summary(len(images), disagreements, difference)


def reading_parity(saved_model_dir: Path, images, keras_reading: dict) -> dict:
    """How a reader's SavedModel agrees with model.keras's greedy reading (models.ctc.greedy_read, numpy).

    The signature gets the raw uint8 test images; a number counts as a disagreement
    when its digits (N, MAX_DIGITS) differ anywhere. The difference is the largest
    of the reading probabilities (N,) and of each digit's (N, MAX_DIGITS): a
    reading's probability is a product over every column, tiny for an unsure
    reader, where a digit's is one column's.
    """
    names = {key: READING[key] for key in ("digits", "confidences", "probability")}
    outputs = serving_outputs(saved_model_dir, images, list(names.values()))
    disagreements = int((outputs[names["digits"]] != keras_reading["digits"]).any(axis=1).sum())
    difference = max(float(np.abs(outputs[names[key]] - keras_reading[key]).max())
                     for key in ("confidences", "probability"))
    return parity_summary(len(images), disagreements, difference)


def parity_summary(images: int, disagreements: int, difference: float) -> dict:
    """evaluation.json's savedmodel_parity: agreement needs no disagreement and a difference within PARITY_TOLERANCE."""
    return {
        "images": images,
        "prediction_disagreements": disagreements,
        "max_probability_difference": difference,
        "agrees": disagreements == 0 and difference <= PARITY_TOLERANCE,
    }


# ----------------------------------------------------------------------------- a digit classifier


def evaluate_classifier(run: runs.Run, max_mistakes: int) -> Evaluation:
    """Accuracy, per-class report, confusion matrix and parity of a classifier (labels (N,)) on its test set."""
    model, digits = run.model, run.digits
    probabilities = model_outputs(model, digits.x_test)  # (N, K)
    predicted = probabilities.argmax(axis=1)
    truth = digits.y_test
    labels = list(range(digits.num_classes))
    names = [str(label) for label in labels]
    report = classification_report(truth, predicted, labels=labels, target_names=names,
                                   output_dict=True, zero_division=0)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    parity = savedmodel_parity(run.folder / runs.SAVED_MODEL_DIR, digits.x_test, probabilities)

    confidences = probabilities[np.arange(len(predicted)), predicted]
    wrong = np.flatnonzero(predicted != truth)
    # Most confident mistakes first: those are the ones worth a look.
    wrong = wrong[np.argsort(-confidences[wrong])][:max_mistakes]
    kinds = mistake_kinds.classifier_kinds(truth, predicted, confidences)
    evaluation = {
        "dataset": run.dataset,
        "test_images": len(truth),
        "accuracy": float((predicted == truth).mean()),
        "errors": int((predicted != truth).sum()),
        "parts": by_part(digits, predicted == truth),
        "per_class": {name: report[name] for name in names},
        "macro_avg": report["macro avg"],
        "confusion_matrix": matrix.tolist(),
        "mistake_kinds": mistake_kinds.as_json(kinds),
        **writer_content(digits, predicted != truth),
        "savedmodel_parity": parity,
    }
    captions = [f"{true}→{read} ({confidence:.0%})" for true, read, confidence in zip(truth, predicted, confidences)]
    figures = {
        runs.CONFUSION_FILE: results.confusion_matrix(matrix, names),
        runs.MISTAKES_FILE: results.mistakes(digits.x_test[wrong], truth[wrong], predicted[wrong], confidences[wrong]),
        runs.MISTAKE_KINDS_FILE: results.mistake_kinds(
            kinds, digits.x_test, captions, f"{run.dataset}: the commonest confusions (true→read, confidence)",
            evaluation.get("writers")),
    }
    summary = (f"test accuracy {evaluation['accuracy']:.4f} ({evaluation['errors']} of {len(truth)} wrong"
               f"{parts_summary(evaluation['parts'])})")
    return Evaluation(evaluation, figures, summary)


# ----------------------------------------------------------------------------- a number reader


def length_counts(truth, read) -> np.ndarray:
    """Counts (MAX_DIGITS, MAX_DIGITS + 1) int64: row i is the numbers of i + 1 digits, column j those read as j."""
    counts = np.zeros((MAX_DIGITS, MAX_DIGITS + 1), np.int64)
    np.add.at(counts, (lengths(truth) - 1, lengths(read)), 1)
    return counts


def reading_measures(truth, read) -> dict:
    """evaluation.json's measures of readings read (N, L) against labels truth (N, L), both digits then PADDING."""
    truth, read = np.asarray(truth), np.asarray(read)
    right = whole_numbers_right(truth, read)
    true_digits = truth >= 0
    true_lengths = lengths(truth)
    return {
        "whole_number_accuracy": float(right.mean()),
        "errors": int((~right).sum()),
        "per_digit_accuracy": float((read[true_digits] == truth[true_digits]).mean()),
        "length_accuracy": float((lengths(read) == true_lengths).mean()),
        "by_length": {str(length): {"numbers": int((true_lengths == length).sum()),
                                    "whole_number_accuracy": float(right[true_lengths == length].mean())}
                      for length in np.unique(true_lengths)},
        "length_confusion": {"true_lengths": list(range(1, MAX_DIGITS + 1)),
                             "read_lengths": list(range(MAX_DIGITS + 1)),
                             "counts": length_counts(truth, read).tolist()},
    }


def evaluate_reader(run: runs.Run, max_mistakes: int) -> Evaluation:
    """Whole-number and per-digit accuracy, lengths and parity of a reader (labels (N, MAX_DIGITS)) on its test set."""
    model, digits = run.model, run.digits
    columns = model_outputs(model, digits.x_test)  # (N, T, K + 1)
    reading = {key: np.asarray(value) for key, value in greedy_read(columns).items()}
    truth, read = digits.y_test, reading["digits"]
    right = whole_numbers_right(truth, read)
    kinds = mistake_kinds.reader_kinds(truth, read, reading["probability"])
    evaluation = {
        "dataset": run.dataset,
        "test_images": len(truth),
        **reading_measures(truth, read),
        "parts": by_part(digits, right),
        "mistake_kinds": mistake_kinds.as_json(kinds),
        **writer_content(digits, ~right),
        "savedmodel_parity": reading_parity(run.folder / runs.SAVED_MODEL_DIR, digits.x_test, reading),
    }
    wrong = np.flatnonzero(~right)
    # Most confident mistakes first: those are the ones worth a look.
    wrong = wrong[np.argsort(-reading["probability"][wrong], kind="stable")][:max_mistakes]
    confusion = evaluation["length_confusion"]
    figures = {
        runs.CONFUSION_FILE: results.length_confusion(np.array(confusion["counts"]), confusion["true_lengths"],
                                                      confusion["read_lengths"]),
        runs.MISTAKES_FILE: results.number_mistakes(digits.x_test[wrong], decode(read[wrong]), decode(truth[wrong]),
                                                    reading["probability"][wrong]),
        runs.MISTAKE_KINDS_FILE: results.mistake_kinds(
            kinds, digits.x_test, [f"read {reading or 'nothing'}, truth {true}" for reading, true in
                                   zip(decode(read), decode(truth), strict=True)],
            f"{run.dataset}: wrongly read numbers by kind, most confident first", evaluation.get("writers")),
    }
    summary = (f"whole-number accuracy {evaluation['whole_number_accuracy']:.4f} ({evaluation['errors']} of "
               f"{len(truth)} numbers read wrong; per digit {evaluation['per_digit_accuracy']:.4f}"
               f"{parts_summary(evaluation['parts'])})")
    return Evaluation(evaluation, figures, summary)
