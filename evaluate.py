"""Measure a trained model on its test set, with the pictures people expect.

    python evaluate.py                            # the run in runs/convnet_mnist/
    python evaluate.py --run-dir runs/mlp_mnist
    python evaluate.py --run-dir runs/reader_svhn-numbers

    python evaluate.py --robustness               # accuracy under turns, sizes, moves, light, noise, blur, cover
    python evaluate.py --run-dir runs/convnet_mnist --robustness --compare runs/mlp_mnist runs/convnet_aug

Writes into the run directory evaluation.json, confusion_matrix.png and
mistakes.png. For a digit classifier: accuracy, per-class precision, recall and
F1, and the confusion matrix. For a number reader: whole-number accuracy (every
digit and the length right), per-digit and length accuracy, accuracy by the
number's length, and the confusion of true and read lengths (the figure in
confusion_matrix.png). Both say how well the exported SavedModel agrees with
model.keras; mistakes.png shows the most confident mistakes.

With --robustness, instead: the robustness sweep (analysis/robustness.py) on
--robustness-images test images chosen by --seed, written as robustness.json
and robustness.png into the run directory; with --compare, the same images and
changes for every run named (each gets its own files), and all runs in one
figure, robustness_compare.png in --run-dir.
"""

import sys
from dataclasses import dataclass
from pathlib import Path


from harness.quiet_keras import tf  # first: Keras loads quietly here (harness/quiet_keras.py)
from harness.cli import ArgumentParser, entry_point, positive_int, seed_value
from harness import atomic, runs
from analysis import robustness
from models.ctc import greedy_read
from analysis.drawing import results, save_figure
from serving.export import DIGIT, INPUT, PROBABILITIES, READING, SIGNATURE
from analysis.introspection import model_outputs, reads_numbers
from data import UserError
from data.numbers import MAX_DIGITS, decode, lengths, whole_numbers_right

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix

BATCH_SIZE = 1000  # test images per SavedModel call
# SavedModel and .keras run the same float32 graph; anything beyond rounding is a real difference.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class EvaluateConfig:
    run_dir: Path
    data_dir: Path | None  # None: the folder the run was trained from
    max_mistakes: int
    robustness: bool = False  # the robustness sweep instead of the standard evaluation
    robustness_images: int = 2000
    compare: tuple[Path, ...] = ()  # more runs swept on the same images
    seed: int = 0  # picks the sweep's images, and draws its noise and covers


@dataclass(frozen=True)
class Evaluation:
    """What evaluating one run gives: evaluation.json's content, the figures by file name, a line for the terminal."""

    content: dict
    figures: dict  # file name in the run folder -> matplotlib Figure
    summary: str


def parse_args(argv: list[str] | None) -> EvaluateConfig:
    parser = ArgumentParser(
        description="Evaluate a trained run on its test set and draw its confusion matrix (a number reader's: "
                    "true against read lengths) and mistakes.")
    parser.add_argument("--run-dir", type=Path, default=runs.default_run_dir("convnet", "mnist"),
                        help="run directory written by train.py")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the data files (default: the one the run was trained from)")
    parser.add_argument("--max-mistakes", type=positive_int, default=48,
                        help="misclassified images (or wrongly read numbers) shown in mistakes.png")
    parser.add_argument("--robustness", action="store_true",
                        help="instead: accuracy under graded turns, sizes, moves, light, inversion, noise, blur and "
                             f"cover, into {runs.ROBUSTNESS_FILE} and {runs.ROBUSTNESS_FIGURE}")
    parser.add_argument("--robustness-images", type=positive_int, default=2000,
                        help="test images in the robustness sweep")
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="RUN_DIR",
                        help=f"with --robustness: more runs swept on the same images, all drawn in "
                             f"{runs.ROBUSTNESS_COMPARE_FIGURE}")
    parser.add_argument("--seed", type=seed_value, default=0,
                        help="with --robustness: picks the test images and draws the noise and covers")
    args = parser.parse_args(argv)
    if args.compare and not args.robustness:
        parser.error("--compare goes with --robustness")
    return EvaluateConfig(args.run_dir, args.data_dir, args.max_mistakes, args.robustness,
                          args.robustness_images, tuple(args.compare), args.seed)


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

    wrong = np.flatnonzero(predicted != truth)
    # Most confident mistakes first: those are the ones worth a look.
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:max_mistakes]
    evaluation = {
        "dataset": run.settings["dataset"],
        "test_images": len(truth),
        "accuracy": float((predicted == truth).mean()),
        "errors": int((predicted != truth).sum()),
        "per_class": {name: report[name] for name in names},
        "macro_avg": report["macro avg"],
        "confusion_matrix": matrix.tolist(),
        "savedmodel_parity": parity,
    }
    figures = {
        runs.CONFUSION_FILE: results.confusion_matrix(matrix, names),
        runs.MISTAKES_FILE: results.mistakes(digits.x_test[wrong], truth[wrong], predicted[wrong],
                                             probabilities[wrong, predicted[wrong]]),
    }
    summary = f"test accuracy {evaluation['accuracy']:.4f} ({evaluation['errors']} of {len(truth)} wrong)"
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
    evaluation = {
        "dataset": run.settings["dataset"],
        "test_images": len(truth),
        **reading_measures(truth, read),
        "savedmodel_parity": reading_parity(run.folder / runs.SAVED_MODEL_DIR, digits.x_test, reading),
    }
    wrong = np.flatnonzero(~whole_numbers_right(truth, read))
    # Most confident mistakes first: those are the ones worth a look.
    wrong = wrong[np.argsort(-reading["probability"][wrong], kind="stable")][:max_mistakes]
    confusion = evaluation["length_confusion"]
    figures = {
        runs.CONFUSION_FILE: results.length_confusion(np.array(confusion["counts"]), confusion["true_lengths"],
                                                      confusion["read_lengths"]),
        runs.MISTAKES_FILE: results.number_mistakes(digits.x_test[wrong], decode(read[wrong]), decode(truth[wrong]),
                                                    reading["probability"][wrong]),
    }
    summary = (f"whole-number accuracy {evaluation['whole_number_accuracy']:.4f} ({evaluation['errors']} of "
               f"{len(truth)} numbers read wrong; per digit {evaluation['per_digit_accuracy']:.4f})")
    return Evaluation(evaluation, figures, summary)


# What a refusal to replace a file in a run tells the user to do instead.
ELSEWHERE = "another --run-dir (or train the run again)"
# What evaluating means for each kind of model (models.KINDS).
EVALUATIONS = {"classifier": evaluate_classifier, "reader": evaluate_reader}


def evaluate(config: EvaluateConfig) -> Evaluation:
    """Evaluate the run in config.run_dir and write evaluation.json and its figures there."""
    run = runs.open_run(config.run_dir, config.data_dir)
    kind = "reader" if reads_numbers(run.model) else "classifier"
    if run.digits.reads_numbers != reads_numbers(run.model):
        raise UserError(f"{run.folder / runs.MODEL_FILE} is a {kind}, but {run.settings['dataset']} holds "
                        f"{'whole numbers' if run.digits.reads_numbers else 'single digits'}; the run is "
                        f"inconsistent (train it again).")
    outputs = (runs.EVALUATION_FILE, runs.CONFUSION_FILE, runs.MISTAKES_FILE)
    for name in outputs:  # all refused before anything is computed or written
        atomic.check_replaceable(run.folder / name, ELSEWHERE)
    evaluation = EVALUATIONS[kind](run, config.max_mistakes)
    atomic.write_json(run.folder / runs.EVALUATION_FILE, evaluation.content)
    for name, figure in evaluation.figures.items():
        save_figure(figure, run.folder / name, ELSEWHERE)
    return evaluation


# ----------------------------------------------------------------------------- the robustness sweep


JUDGES = {"classifier": robustness.classifier_judge, "reader": robustness.reader_judge}


def sweep_runs(config: EvaluateConfig) -> dict[str, dict]:
    """The robustness sweep of --run-dir and every --compare run on the same test images: each run's
    robustness.json and robustness.png written into its folder, robustness_compare.png into --run-dir's if
    there is more than one run. Returns run folder -> robustness.json content."""
    opened = [runs.open_run(run_dir, config.data_dir) for run_dir in (config.run_dir, *config.compare)]
    first = opened[0]
    for run in opened[1:]:
        if (run.settings["dataset"], run.digits.input_shape) != (first.settings["dataset"], first.digits.input_shape):
            raise UserError(f"{run.folder} was trained on {run.settings['dataset']} "
                            f"({'x'.join(map(str, run.digits.input_shape))}) and {first.folder} on "
                            f"{first.settings['dataset']} ({'x'.join(map(str, first.digits.input_shape))}); "
                            f"--compare needs runs on the same test images.")
    for run in opened:  # all refused before the sweep, which takes a minute, and before anything is written
        for name in (runs.ROBUSTNESS_FILE, runs.ROBUSTNESS_FIGURE, runs.ROBUSTNESS_COMPARE_FIGURE):
            atomic.check_replaceable(run.folder / name, ELSEWHERE)
    picked = robustness.pick(len(first.digits.y_test), config.robustness_images, config.seed)
    images, labels = first.digits.x_test[picked], first.digits.y_test[picked]
    sweeps = {}
    for run in opened:
        kind = "reader" if reads_numbers(run.model) else "classifier"
        result = {"dataset": run.settings["dataset"], "kind": kind,
                  **robustness.sweep(JUDGES[kind](run.model, labels), images, config.seed)}
        atomic.write_json(run.folder / runs.ROBUSTNESS_FILE, result, ELSEWHERE)
        save_figure(results.robustness({run.folder.name: result}, f"{run.folder.name} on {len(images)} "
                                       f"{run.settings['dataset']} test images"), run.folder / runs.ROBUSTNESS_FIGURE)
        sweeps[str(run.folder)] = result
    if len(opened) > 1:
        figure = results.robustness({Path(folder).name: result for folder, result in sweeps.items()},
                                    f"{len(images)} {first.settings['dataset']} test images")
        save_figure(figure, first.folder / runs.ROBUSTNESS_COMPARE_FIGURE)
    return sweeps


def sweep_summary(folder: str, result: dict) -> str:
    """One line: the clean accuracy and the accuracy at a few telling strengths."""
    def at(name, strength):
        curve = result[name]
        return curve["accuracy"][curve["strengths"].index(strength)]
    return (f"{folder}: clean {result['clean']:.4f}; turned 30 degrees {at('rotation', 30):.4f}, -30 "
            f"{at('rotation', -30):.4f}; scaled 0.7 {at('scale', 0.7):.4f}, 1.3 {at('scale', 1.3):.4f}; "
            f"inverted {at('inversion', 1.0):.4f}")


@entry_point
def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.robustness:
        for folder, result in sweep_runs(config).items():
            print(sweep_summary(folder, result))
        print(f"{runs.ROBUSTNESS_FILE} and {runs.ROBUSTNESS_FIGURE} in each run folder"
              + (f", {runs.ROBUSTNESS_COMPARE_FIGURE} in {config.run_dir}" if config.compare else ""))
        return 0
    evaluation = evaluate(config)
    parity = evaluation.content["savedmodel_parity"]
    print(f"{evaluation.summary}; figures and evaluation.json in {config.run_dir}")
    if not parity["agrees"]:
        print(f"warning: the SavedModel disagrees with model.keras on {parity['prediction_disagreements']} "
              f"test images (largest probability difference {parity['max_probability_difference']:.2e})",
              file=sys.stderr)
        return 1
    print(f"SavedModel agrees with model.keras on all {parity['images']} test images "
          f"(largest probability difference {parity['max_probability_difference']:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
