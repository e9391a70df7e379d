"""Measure a trained model on its test set, with the pictures people expect.

    python evaluate.py                            # the run in runs/convnet_mnist/
    python evaluate.py --run-dir runs/mlp_mnist

Writes into the run directory: evaluation.json (accuracy, per-class precision,
recall and F1, the confusion matrix, and how well the exported SavedModel agrees
with model.keras), confusion_matrix.png and mistakes.png.
"""

import sys
from dataclasses import dataclass
from pathlib import Path


from models.cli import ArgumentParser, entry_point, positive_int
from models import atomic, runs
from models.drawing import results, save_figure
from models.export import DIGIT, INPUT, PROBABILITIES, SIGNATURE
from data import UserError
from data.pipeline import normalise

import numpy as np  # noqa: E402 (after models, which quiets TensorFlow's start-up)
import tensorflow as tf  # noqa: E402
from sklearn.metrics import classification_report, confusion_matrix  # noqa: E402

BATCH_SIZE = 1000  # test images per forward pass
# SavedModel and .keras run the same float32 graph; anything beyond rounding is a real difference.
PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class EvaluateConfig:
    run_dir: Path
    data_dir: Path | None  # None: the folder the run was trained from
    max_mistakes: int


def parse_args(argv: list[str] | None) -> EvaluateConfig:
    parser = ArgumentParser(
        description="Evaluate a trained run on its test set and draw its confusion matrix and mistakes.")
    parser.add_argument("--run-dir", type=Path, default=runs.default_run_dir("convnet", "mnist"),
                        help="run directory written by train.py")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the data files (default: the one the run was trained from)")
    parser.add_argument("--max-mistakes", type=positive_int, default=48, help="misclassified images shown in mistakes.png")
    args = parser.parse_args(argv)
    return EvaluateConfig(args.run_dir, args.data_dir, args.max_mistakes)


def predict_probabilities(predict, images, batch_size: int = BATCH_SIZE):
    """Class probabilities (N, K) float32 from `predict`, a function of a float32 batch."""
    return np.concatenate([
        np.asarray(predict(normalise(images[start:start + batch_size])))
        for start in range(0, len(images), batch_size)
    ])


def savedmodel_parity(saved_model_dir: Path, images, keras_probabilities) -> dict:
    """How the exported SavedModel's serving_default signature agrees with model.keras.

    The signature gets the raw uint8 test images (it scales them itself); its
    probabilities and its `digit` output are compared with the Keras model's.
    """
    try:
        serving = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE]
    except (OSError, KeyError, ValueError) as error:
        raise UserError(f"cannot load the SavedModel in {saved_model_dir} ({type(error).__name__}); "
                        f"rewrite it with python -m models.export.") from error
    inputs = serving.structured_input_signature[1]
    if INPUT not in inputs or inputs[INPUT].dtype != tf.uint8:
        raise UserError(f"the SavedModel in {saved_model_dir} does not take raw uint8 pixels (it predates them); "
                        f"rewrite it with python -m models.export.")
    outputs = [serving(**{INPUT: images[start:start + BATCH_SIZE]}) for start in range(0, len(images), BATCH_SIZE)]
    exported = np.concatenate([np.asarray(output[PROBABILITIES]) for output in outputs])
    digits = np.concatenate([np.asarray(output[DIGIT]) for output in outputs])
    expected = keras_probabilities.argmax(1)
    disagreements = int(((exported.argmax(1) != expected) | (digits != expected)).sum())
    difference = float(np.abs(exported - keras_probabilities).max())
    return {
        "images": len(images),
        "prediction_disagreements": disagreements,
        "max_probability_difference": difference,
        "agrees": disagreements == 0 and difference <= PARITY_TOLERANCE,
    }


def evaluate(config: EvaluateConfig) -> dict:
    run = runs.open_run(config.run_dir, config.data_dir)
    run_dir, settings, model, digits = run.folder, run.settings, run.model, run.digits

    probabilities = predict_probabilities(lambda batch: model(batch, training=False), digits.x_test)
    predicted = probabilities.argmax(axis=1)
    truth = digits.y_test
    labels = list(range(digits.num_classes))
    names = [str(label) for label in labels]
    report = classification_report(truth, predicted, labels=labels, target_names=names,
                                   output_dict=True, zero_division=0)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    parity = savedmodel_parity(run_dir / runs.SAVED_MODEL_DIR, digits.x_test, probabilities)

    wrong = np.flatnonzero(predicted != truth)
    # Most confident mistakes first: those are the ones worth a look.
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:config.max_mistakes]
    evaluation = {
        "dataset": settings["dataset"],
        "test_images": len(truth),
        "accuracy": float((predicted == truth).mean()),
        "errors": int((predicted != truth).sum()),
        "per_class": {name: report[name] for name in names},
        "macro_avg": report["macro avg"],
        "confusion_matrix": matrix.tolist(),
        "savedmodel_parity": parity,
    }
    atomic.write_json(run_dir / runs.EVALUATION_FILE, evaluation)
    save_figure(results.confusion_matrix(matrix, names), run_dir / runs.CONFUSION_FILE)
    save_figure(
        results.mistakes(digits.x_test[wrong], truth[wrong], predicted[wrong], probabilities[wrong, predicted[wrong]]),
        run_dir / runs.MISTAKES_FILE,
    )
    return evaluation


@entry_point
def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    evaluation = evaluate(config)
    parity = evaluation["savedmodel_parity"]
    print(f"test accuracy {evaluation['accuracy']:.4f} ({evaluation['errors']} of "
          f"{evaluation['test_images']} wrong); figures and evaluation.json in {config.run_dir}")
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
