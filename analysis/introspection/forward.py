"""What layers output for given images: one forward pass, and the images that excite a unit most.

    [maps] = activations(model, as_floats(x_test[:100]), ["conv2_relu"])    # float32 (100, h, w, c)
    for start, [maps] in chunked_activations(model, x_test, ["conv2_relu"]):  # uint8 in, CHUNK images a step
        ...
    top_activations(maps, unit=3, k=9)                  # [(image, row, col, value)], strongest first
    model_outputs(model, x_test)                        # uint8 in; the model's own output, e.g. (N, K)

Models run in inference mode: dropout off, batch norm on its moving statistics,
so each image's result is independent of the others in its batch.
"""

import contextlib
import logging

import numpy as np
import tensorflow as tf

from data.pipeline import normalise
from analysis.introspection.graph import LayerError, feature_extractor

CHUNK = 2000  # images whose activations are held at once, so memory stays bounded whatever the data set's size
BATCH = 500  # images per forward pass (250 to 1000 ran equally fast on the 2-core CPU)
OUTPUT_BATCH = 1000  # images per call when only the model's output is wanted (evaluate.py, the robustness sweep)


def activations(model, images: np.ndarray, paths: list[str], batch_size: int = BATCH) -> list[np.ndarray]:
    """The outputs of the layers at `paths` for float images (N, H, W, C) in [0, 1], in inference mode.

    Returns one float32 array per path: (N, h, w, c) for convolutional layers,
    (N, units) for dense ones. Images go through in batches of `batch_size`.
    """
    return forward_pass(model, paths, batch_size)(float_images(images))


def chunked_activations(model, images: np.ndarray, paths: list[str]):
    """Yield (first image index, [float32 activations per path]) over uint8 images, CHUNK images at a time."""
    forward = forward_pass(model, paths)
    for start in range(0, len(images), CHUNK):
        yield start, forward(as_floats(images[start:start + CHUNK]))


def model_outputs(model, images: np.ndarray, batch_size: int = OUTPUT_BATCH) -> np.ndarray:
    """The model's own output for uint8 images (N, H, W, C), in inference mode, batch by batch: a classifier's
    probabilities (N, K), a reader's column probabilities (N, T, K + 1); float32."""
    return np.concatenate([np.asarray(model(normalise(images[start:start + batch_size]), training=False))
                           for start in range(0, len(images), batch_size)])


def forward_pass(model, paths: list[str], batch_size: int = BATCH):
    """A function from float32 images (N, H, W, C) to [float32 output per path], batch by batch.

    The layers run as one compiled graph, traced once for every batch size: on
    this project's 2-core CPU that ran the MNIST test images through conv2 in
    about half the time of eager calls (TensorFlow fuses batch norm and ReLU into
    the convolutions), with the same numbers.
    """
    extractor = feature_extractor(model, paths)
    outputs = _as_list(extractor.outputs)
    signature = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)]
    compiled = tf.function(lambda batch: _as_list(extractor(batch, training=False)), input_signature=signature)

    def forward(images: np.ndarray) -> list[np.ndarray]:
        if not len(images):
            # Shapes from the graph, not from a call: on CPUs with AVX-512, TensorFlow 2.21's
            # convolution hands an empty batch back with the input's shape.
            return [np.zeros((0, *output.shape[1:]), np.float32) for output in outputs]
        with quiet_retracing():
            batches = [compiled(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
        return [np.concatenate([np.asarray(found[number], np.float32) for found in batches])
                for number in range(len(outputs))]

    return forward


def top_activations(layer_activations: np.ndarray, unit: int,
                    k: int) -> list[tuple[int, int | None, int | None, float]]:
    """The k images where channel `unit` responds most, strongest first, as (image_index, row, col, value).

    layer_activations is (N, h, w, c) or (N, units). Each image appears at most
    once, at its strongest position; for (N, units) row and col are None.
    """
    layer_activations = np.asarray(layer_activations)
    [unit] = checked_units("this layer", [unit], layer_activations.shape[-1])
    if layer_activations.ndim == 2:
        best = layer_activations[:, unit]
        positions = [(None, None)] * len(best)
    else:
        maps = layer_activations[..., unit].reshape(len(layer_activations), -1)  # (N, h*w)
        where = maps.argmax(axis=1)
        best = maps[np.arange(len(maps)), where]
        positions = [tuple(int(i) for i in np.unravel_index(w, layer_activations.shape[1:3])) for w in where]
    order = np.argsort(-best, kind="stable")[:k]  # stable: ties go to the lower image index
    return [(int(i), *positions[i], float(best[i])) for i in order]


def as_floats(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 in [0, 1] as NumPy, through the pipeline's own normalise."""
    return np.asarray(normalise(images))


def float_images(images) -> np.ndarray:
    """images as float32, or a ValueError if they are not floats (uint8 pixels must go through as_floats)."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be float in [0, 1] (data.pipeline.normalise), not {images.dtype}")
    return images.astype(np.float32, copy=False)


def checked_units(layer_name: str, units, count: int) -> np.ndarray:
    """units as int64 (U,), or a LayerError naming the first that a layer of `count` units does not have."""
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    bad = units[(units < 0) | (units >= count)]
    if bad.size:
        raise LayerError(f"{layer_name} has {count} units (0 to {count - 1}); unit {bad[0]} does not exist.")
    return units


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@contextlib.contextmanager
def quiet_retracing():
    """Silence TensorFlow's warning about frequent retracing while the block runs.

    forward_pass and filter_patterns trace a new tf.function for every call (each
    has its own model and layers), which TensorFlow reports as excessive
    retracing after a few calls (visualize.py on a reader's five convolutions);
    here that is expected.
    """
    def keep(record):
        return "triggered tf.function retracing" not in record.getMessage()

    logger = logging.getLogger("tensorflow")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
