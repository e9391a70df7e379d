"""A LiteRT (.tflite) file written by models/export.py, run without TensorFlow or Keras.

    from models.litert import LiteModel
    model = LiteModel("runs/convnet_mnist/model_float32.tflite")
    model.input_shape                # (28, 28, 1)
    model(pixels)["probabilities"]   # uint8 pixels (B, H, W, C) -> float32 (B, K)

The file's serving_default signature takes raw uint8 pixels and gives what
models/export.py lists (a classifier's probabilities and digit, or a reader's
digits, digit_probabilities, columns and probability). Importing this module
loads only numpy and the LiteRT interpreter (ai-edge-litert): a fraction of a
second, where TensorFlow takes seconds, which is why predict.py prefers it.
"""

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from data.errors import UserError
from models import quiet_stderr

SIGNATURE = "serving_default"
INPUT = "pixels"
READER_OUTPUT = "digits"  # only a number reader's signature has it
COLUMN_PROBABILITIES = "/probabilities"  # in the name of a reader's (1, T, K + 1) softmax tensor (models/reader.py)


class LiteModel:
    """A .tflite model run by the LiteRT interpreter, through its serving_default signature."""

    def __init__(self, path: Path, threads: int = 1):
        try:
            with quiet_stderr(True):  # LiteRT announces its CPU delegate (XNNPACK) on stderr as it allocates
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
                self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"cannot load {path} as a LiteRT model ({error}); rewrite it "
                            f"with python -m models.export.") from error

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the pixels the model takes."""
        return tuple(int(side) for side in self.runner.get_input_details()[INPUT]["shape_signature"][1:])

    @property
    def reads_numbers(self) -> bool:
        """Whether the model is a number reader (its outputs are a reading, not class probabilities)."""
        return READER_OUTPUT in self.runner.get_output_details()

    def column_width(self) -> float:
        """A reader's input pixels per column: its input width over the columns T of its probabilities tensor,
        which the file keeps under the layer's name."""
        for tensor in self.interpreter.get_tensor_details():
            if COLUMN_PROBABILITIES in tensor["name"] and len(tensor["shape"]) == 3:
                return self.input_shape[1] / int(tensor["shape"][1])
        raise UserError("this LiteRT file has no column probabilities; is it a number reader's?")

    def __call__(self, pixels: np.ndarray) -> dict:
        """uint8 pixels (B, H, W, C) -> the signature's outputs by name, each with B rows."""
        return self.runner(**{INPUT: np.ascontiguousarray(pixels, dtype=np.uint8)})
