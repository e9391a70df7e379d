"""Serving export: a SavedModel that takes raw pixels, and the LiteRT (TensorFlow Lite) files made from it.

    python -m serving.export --run-dir runs/convnet_mnist   # rewrite a run's model.keras (standard layers only)
                                                           # and its serving files from it

    from serving import export, litert
    export.write_serving_files(model, run_dir, x_train)   # saved_model/, model_float32.tflite, model_int8.tflite
    litert.LiteModel("runs/convnet_mnist/model_int8.tflite")(pixels)["probabilities"]

The SavedModel's serving_default signature, as `saved_model_cli show --all` shows it,
and both .tflite files keep it:

    inputs['pixels']          uint8   (-1, H, W, C)   raw pixels, as the data set stores them
    outputs['probabilities']  float32 (-1, K)         class probabilities, each row sums to 1
    outputs['digit']          int32   (-1,)           the most probable class (int32: every runtime reads it;
                                                       LiteRT.js refuses int64)

A number reader's signature takes the same pixels and gives the number read
(models/ctc.py, greedy reading):

    outputs['digits']               int32   (-1, MAX_DIGITS)  the digits left to right, then -1
    outputs['digit_probabilities']  float32 (-1, MAX_DIGITS)  each digit's probability, 0 after the last
    outputs['columns']              int32   (-1, MAX_DIGITS)  the column where each digit was read, then -1
    outputs['probability']          float32 (-1,)             the reading's probability

The scaling to [0, 1] that training applies (data.pipeline.normalise) happens
inside the graph, so a server, a phone or predict.py sends the image bytes as
they are and can never scale them differently from training.

The int8 file is full-integer post-training quantisation: weights and
activations of every convolution, pooling, dense layer, softmax and argmax are
int8, calibrated on a sample of training images. The uint8 pixels enter through
a CAST and a QUANTIZE whose scale, 1/255, is exactly the division by 255 that
training applies, so nothing is lost at the input; the probabilities are
dequantised to float32 on the way out. (The converter is given the SavedModel,
not the Keras model: TFLiteConverter.from_keras_model does not accept Keras 3
models.)
"""

import sys
import tempfile
import warnings
from pathlib import Path

from harness.quiet_keras import keras, tf  # first: a script too (python -m serving.export)
import numpy as np

from data.pipeline import normalise
from harness.silence import silenced
from harness import atomic, model_files, runs
from harness.cli import ArgumentParser, entry_point
from models.ctc import greedy_read
from harness import kinds
from serving.litert import INPUT, SIGNATURE

PROBABILITIES = "probabilities"
DIGIT = "digit"
# A reader's outputs (the keys of models.ctc.greedy_read's result, renamed for a caller).
READING = {"digits": "digits", "confidences": "digit_probabilities", "columns": "columns",
           "probability": "probability"}


def classify_function(model: keras.Model):
    """A classifier's serving computation: uint8 pixels (B, H, W, C) -> {probabilities (B, K), digit (B,)}."""

    def classify(pixels):
        probabilities = model(normalise(pixels), training=False)
        return {PROBABILITIES: probabilities, DIGIT: tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return classify


def read_function(model: keras.Model):
    """A number reader's serving computation: uint8 pixels (B, H, W, C) -> the outputs in READING."""

    def read(pixels):
        reading = greedy_read(model(normalise(pixels), training=False))
        return {name: reading[key] for key, name in READING.items()}

    return read


def input_spec(model: keras.Model, batch: int | None = None) -> tf.TensorSpec:
    """uint8 (batch, H, W, C) named `pixels`, H, W, C from the model's own input; batch None: any."""
    return tf.TensorSpec((batch, *model.input_shape[1:]), tf.uint8, name=INPUT)


def export_saved_model(model: keras.Model, directory: Path, kind: kinds.Kind | None = None) -> None:
    """Write `model` as a SavedModel whose serving_default signature takes raw uint8 pixels.

    kind: what the model does; by default decided from the model (harness/kinds.py).
    """
    kind = kind or kinds.of_model(model)
    write_archive(model, kind.serving_function(model), input_spec(model), directory)


def write_archive(model: keras.Model, function, spec: tf.TensorSpec, directory: Path) -> None:
    """A SavedModel at `directory` whose serving_default signature is `function` (a serving computation of
    `model`) on inputs `spec`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, function, input_signature=[spec])
    archive.write_out(str(directory), verbose=False)


def write_serving_files(model: keras.Model, run_dir: Path, training_images: np.ndarray,
                        kind: kinds.Kind | None = None) -> None:
    """saved_model/, model_float32.tflite and model_int8.tflite into run_dir, each replaced whole.

    training_images: uint8 (N, H, W, C); an evenly spaced sample of them calibrates
    the int8 model (representative_sample).
    """
    run_dir = Path(run_dir)
    with atomic.replacing_folder(run_dir / runs.SAVED_MODEL_DIR, "another --run-dir") as saved_model:
        export_saved_model(model, saved_model, kind)
        for name, flatbuffer in [(runs.TFLITE_FLOAT32_FILE, convert_float32(saved_model)),
                                 (runs.TFLITE_INT8_FILE, convert_int8(saved_model, training_images))]:
            atomic.write_bytes(run_dir / name, flatbuffer, "another --run-dir")


def layers_function(model: keras.Model, responses: list[str]):
    """The web page's draw view: (the Keras model it runs, its serving computation: uint8 pixels (B, H, W, C)
    -> a classifier's probabilities and digit, and the output of each layer named in `responses` ((B, h, w, c)
    maps), by its name)."""
    watched = keras.Model(model.inputs, [model.get_layer(name).output for name in responses] + [model.output])

    def observe(pixels):
        *maps, probabilities = watched(normalise(pixels), training=False)
        return {PROBABILITIES: probabilities, DIGIT: tf.argmax(probabilities, axis=-1, output_type=tf.int32),
                **dict(zip(responses, maps))}

    return watched, observe


def single_image_flatbuffer(model: keras.Model, function) -> bytes:
    """A float32 .tflite flatbuffer of `function` (a serving computation of `model`) for one image at a time.

    LiteRT.js (the web page's runtime) refuses a dynamic batch size: its input must be (1, H, W, C), not
    (-1, H, W, C) as in the run's own files. The operations and weights are the run's.
    """
    with tempfile.TemporaryDirectory() as folder, silenced(2):  # the converter's C++ log lines
        write_archive(model, function, input_spec(model, batch=1), Path(folder))
        return convert_float32(Path(folder))


def page_flatbuffers(model: keras.Model, kind: kinds.Kind, responses: list[str] | None = None) -> dict[str, bytes]:
    """The web page's LiteRT files for one run: {"model": its serving signature for one image} and, given the
    responses of a classifier's layers to show, {"layers": layers_function's}."""
    files = {"model": single_image_flatbuffer(model, kind.serving_function(model))}
    if responses:
        files["layers"] = single_image_flatbuffer(*layers_function(model, responses))
    return files


REPRESENTATIVE_IMAGES = 300  # calibration images for int8: enough for stable activation ranges


def representative_sample(images: np.ndarray, count: int = REPRESENTATIVE_IMAGES) -> np.ndarray:
    """`count` images spread evenly over `images` (N, H, W, C): every class, no randomness."""
    indices = np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int)
    return images[indices]


def convert_float32(saved_model_dir: Path) -> bytes:
    """A float32 .tflite flatbuffer of the SavedModel's serving_default signature."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE])
    return converter.convert()


def convert_int8(saved_model_dir: Path, training_images: np.ndarray) -> bytes:
    """A full-integer int8 .tflite flatbuffer, calibrated on a representative sample of training_images (uint8)."""
    sample = representative_sample(training_images)

    def representative_dataset():
        for index in range(len(sample)):
            yield {INPUT: sample[index:index + 1]}  # one (1, H, W, C) uint8 image per calibration step

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # Refuse to fall back to float kernels: an op that cannot be int8 is an error, not a silent float op.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # The quantiser's C++ code prints its settings ("fully_quantize: 0, inference_type: 6, ...") on stderr, and
    # would print on stdout in other builds: neither is what the script says. Its errors still raise, as exceptions.
    with warnings.catch_warnings(), silenced(1), silenced(2):
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")  # calibration's own
        return converter.convert()



@entry_point
def main(argv: list[str] | None = None) -> int:
    """python -m serving.export: a run's files rewritten from its model.keras, for a run trained before they existed.

    model.keras itself is rewritten in the portable form (harness/model_files.py):
    an older one, holding the project's fused batch-norm class, then loads with
    plain Keras too.
    """

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
    model, run_dir = run.model, run.folder
    x_train = run.training_images()  # what train.py calibrated the int8 model with
    model_files.save_model(model, run_dir / runs.MODEL_FILE)
    write_serving_files(model, run_dir, x_train, run.kind)
    print(f"wrote {runs.MODEL_FILE} (standard Keras layers), {runs.SAVED_MODEL_DIR}/, {runs.TFLITE_FLOAT32_FILE} "
          f"and {runs.TFLITE_INT8_FILE} in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
