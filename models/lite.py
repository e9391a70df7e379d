"""LiteRT (TensorFlow Lite) models for phones, converted from a run's SavedModel, and a runner for them.

    from models import lite
    lite.write_tflite_files("runs/convnet_mnist/saved_model", "runs/convnet_mnist", x_train)
    lite.LiteModel("runs/convnet_mnist/model_int8.tflite")(pixels)["probabilities"]

Both files keep the SavedModel's serving_default signature: raw uint8 pixels
(B, H, W, C) in, float32 `probabilities` (B, K) and int64 `digit` (B,) out.

The int8 file is full-integer post-training quantisation: weights and
activations of every convolution, pooling, dense layer, softmax and argmax are
int8, calibrated on a sample of training images. The uint8 pixels enter through
a CAST and a QUANTIZE whose scale, 1/255, is exactly the division by 255 that
training applies, so nothing is lost at the input; the probabilities are
dequantised to float32 on the way out. (The converter is given the SavedModel,
not the Keras model: TFLiteConverter.from_keras_model does not accept Keras 3
models.)
"""

import os
import warnings
from pathlib import Path

import numpy as np

REPRESENTATIVE_IMAGES = 300  # calibration images for int8: enough for stable activation ranges
FLOAT32_FILE = "model_float32.tflite"  # the same names as models.runs.TFLITE_FLOAT32_FILE, TFLITE_INT8_FILE
INT8_FILE = "model_int8.tflite"


def representative_sample(images: np.ndarray, count: int = REPRESENTATIVE_IMAGES) -> np.ndarray:
    """`count` images spread evenly over `images` (N, H, W, C): every class, no randomness."""
    indices = np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int)
    return images[indices]


def convert_float32(saved_model_dir: Path) -> bytes:
    """A float32 .tflite flatbuffer of the SavedModel's serving_default signature."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    return converter.convert()


def convert_int8(saved_model_dir: Path, training_images: np.ndarray) -> bytes:
    """A full-integer int8 .tflite flatbuffer, calibrated on a representative sample of training_images (uint8)."""
    import tensorflow as tf

    from models.export import INPUT

    sample = representative_sample(training_images)

    def representative_dataset():
        for index in range(len(sample)):
            yield {INPUT: sample[index:index + 1]}  # one (1, H, W, C) uint8 image per calibration step

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=["serving_default"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # Refuse to fall back to float kernels: an op that cannot be int8 is an error, not a silent float op.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with warnings.catch_warnings():  # calibration runs the converter's own tf.lite.Interpreter, which warns
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


def write_tflite_files(saved_model_dir: Path, out_dir: Path, training_images: np.ndarray) -> None:
    """model_float32.tflite and model_int8.tflite into out_dir, each written atomically."""
    for name, flatbuffer in [(FLOAT32_FILE, convert_float32(saved_model_dir)),
                             (INT8_FILE, convert_int8(saved_model_dir, training_images))]:
        path = Path(out_dir) / name
        staging = path.with_name(f".{name}.tmp")
        staging.write_bytes(flatbuffer)
        os.replace(staging, path)


class LiteModel:
    """A .tflite model run by the LiteRT interpreter (ai-edge-litert), through its serving_default signature."""

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        from data.errors import UserError

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.runner = self.interpreter.get_signature_runner("serving_default")
        except (ValueError, RuntimeError) as error:
            raise UserError(f"cannot load {path} as a LiteRT model ({error}); rewrite it "
                            f"with python -m models.export.") from error

    def __call__(self, pixels: np.ndarray) -> dict:
        """uint8 pixels (B, H, W, C) -> {"probabilities": float32 (B, K), "digit": int64 (B,)}."""
        return self.runner(pixels=np.ascontiguousarray(pixels, dtype=np.uint8))
