"""A LiteRT (.tflite) file written by serving/export.py, run without TensorFlow or Keras.

    from serving.litert import LiteModel
    model = LiteModel("runs/convnet_mnist/model_float32.tflite")
    model.input_shape                # (28, 28, 1)
    model(pixels)["probabilities"]   # uint8 pixels (B, H, W, C) -> float32 (B, K)

The file's serving_default signature takes raw uint8 pixels and gives what
serving/export.py lists (a classifier's probabilities and digit, or a reader's
digits, digit_probabilities, columns and probability). Importing this module
loads only numpy and the LiteRT interpreter (ai-edge-litert): a fraction of a
second, where TensorFlow takes seconds, which is why predict.py prefers it.
"""

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from harness import kinds
from harness.errors import UserError
from harness.silence import silenced

SIGNATURE = "serving_default"
INPUT = "pixels"
COLUMN_PROBABILITIES = "/probabilities"  # in the name of a reader's (1, T, K + 1) softmax tensor (models/reader.py)


class LiteModel:
    """A .tflite model run by the LiteRT interpreter, through its serving_default signature."""

    def __init__(self, path: Path, threads: int = 1):
        try:
            with silenced(2):  # LiteRT announces its CPU delegate (XNNPACK) on stderr as it allocates
                self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self.interpreter.allocate_tensors()
                self.runner = self.interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"cannot load {path} as a LiteRT model ({error}); rewrite it "
                            f"with python -m serving.export.") from error
        # Read from the file once: predict.py asks for them for every photo, and every zoom.
        self.input_shape = tuple(int(side) for side in self.runner.get_input_details()[INPUT]["shape_signature"][1:])
        self.kind = kinds.of_outputs(self.runner.get_output_details())
        self.columns = self._column_count()  # a reader's columns T, None for a classifier

    def column_width(self) -> float:
        """A reader's input pixels per column: its input width over the columns T of its probabilities tensor."""
        if self.columns is None:
            raise UserError("this LiteRT file has no column probabilities; is it a number reader's?")
        return self.input_shape[1] / self.columns

    def _column_count(self) -> int | None:
        """T of a reader's (1, T, K + 1) probabilities tensor, which the file keeps under the layer's name."""
        for tensor in self.interpreter.get_tensor_details():
            if COLUMN_PROBABILITIES in tensor["name"] and len(tensor["shape"]) == 3:
                return int(tensor["shape"][1])
        return None

    def __call__(self, pixels: np.ndarray) -> dict:
        """uint8 pixels (B, H, W, C) -> the signature's outputs by name, each with B rows."""
        return self.runner(**{INPUT: np.ascontiguousarray(pixels, dtype=np.uint8)})
