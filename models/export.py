"""Serving export: a SavedModel that takes raw pixels, and the LiteRT files made from it.

    python -m models.export --run-dir runs/convnet_mnist   # rewrite a run's model.keras (standard layers only)
                                                           # and its serving files from it

    from models import export
    export.export_saved_model(model, "runs/convnet_mnist/saved_model")
    export.write_serving_files(model, run_dir, x_train)   # saved_model/, model_float32.tflite, model_int8.tflite

The SavedModel's serving_default signature, as `saved_model_cli show --all` shows it:

    inputs['pixels']          uint8   (-1, H, W, C)   raw pixels, as the data set stores them
    outputs['probabilities']  float32 (-1, K)         class probabilities, each row sums to 1
    outputs['digit']          int64   (-1,)           the most probable class

The scaling to [0, 1] that training applies (data.pipeline.normalise) happens
inside the graph, so a server, a phone or predict.py sends the image bytes as
they are and can never scale them differently from training.
"""

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's start-up chatter (no-GPU notices)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data.cli import entry_point  # noqa: E402
from data.pipeline import normalise  # noqa: E402

SIGNATURE = "serving_default"
INPUT = "pixels"
PROBABILITIES = "probabilities"
DIGIT = "digit"


def serving_function(model: keras.Model):
    """The serving computation: uint8 pixels (B, H, W, C) -> {probabilities (B, K), digit (B,)}."""

    def serve(pixels):
        probabilities = model(normalise(pixels), training=False)
        return {PROBABILITIES: probabilities, DIGIT: tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    return serve


def input_spec(model: keras.Model) -> tf.TensorSpec:
    """uint8 (None, H, W, C) named `pixels`, H, W, C from the model's own input."""
    return tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name=INPUT)


def export_saved_model(model: keras.Model, directory: Path) -> None:
    """Write `model` as a SavedModel whose serving_default signature takes raw uint8 pixels."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serving_function(model), input_signature=[input_spec(model)])
    archive.write_out(str(directory), verbose=False)


def write_serving_files(model: keras.Model, run_dir: Path, training_images: np.ndarray) -> None:
    """saved_model/, model_float32.tflite and model_int8.tflite into run_dir, each replaced whole.

    training_images: uint8 (N, H, W, C); an evenly spaced sample of them calibrates
    the int8 model (models.lite.representative_sample).
    """
    from models import lite, runs

    run_dir = Path(run_dir)
    final = run_dir / runs.SAVED_MODEL_DIR
    staging, previous = final.with_name(f".{final.name}.tmp"), final.with_name(f".{final.name}.previous")
    for leftover in (staging, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        export_saved_model(model, staging)
        lite.write_tflite_files(staging, run_dir, training_images)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if final.exists():
        os.replace(final, previous)
    os.replace(staging, final)
    shutil.rmtree(previous, ignore_errors=True)


@entry_point
def main(argv: list[str] | None = None) -> int:
    """python -m models.export: a run's files rewritten from its model.keras, for a run trained before they existed.

    model.keras itself is rewritten in the portable form (models/model_files.py):
    an older one, holding the project's fused batch-norm class, then loads with
    plain Keras too.
    """
    from data import UserError, carve_validation
    from data.cli import ArgumentParser
    from models import lite, model_files, runs

    parser = ArgumentParser(
        description="Rewrite a run's model.keras with standard Keras layers only (loadable without this "
                    "project), and its saved_model/ (raw-pixel signature) and float32 and int8 LiteRT models "
                    "from it.")
    parser.add_argument("--run-dir", type=Path, default=runs.default_run_dir("convnet", "mnist"),
                        help="run directory written by train.py")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the data files, for the int8 calibration images (default: the run's)")
    args = parser.parse_args(argv)
    run = runs.open_run(args.run_dir, args.data_dir)
    fraction = run.settings.get("validation_fraction", 0.1)
    if type(fraction) not in (int, float) or not 0 <= fraction < 1:  # type(): True is no number
        raise UserError(f"{run.folder / runs.CONFIG_FILE} records the validation fraction {fraction!r}, not a number "
                        f"from 0 to below 1; it is damaged (train the run again).")
    # The training images train.py calibrated with: the same validation carve-out.
    x_train = carve_validation(run.digits.x_train, run.digits.y_train, fraction)[0]
    model, run_dir = run.model, run.folder
    model_files.save_model(model, run_dir / runs.MODEL_FILE)
    write_serving_files(model, run_dir, x_train)
    print(f"wrote {runs.MODEL_FILE} (standard Keras layers), {runs.SAVED_MODEL_DIR}/, {lite.FLOAT32_FILE} and "
          f"{lite.INT8_FILE} in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
