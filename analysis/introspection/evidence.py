"""Per-digit evidence: for each digit a number reader read, where in the image it came from.

    evidence = digit_evidence(reader, as_floats(x_test[:8]), "conv5_relu")
    evidence.digits      # int32 (8, MAX_DIGITS): the greedy reading (models/ctc.py), digits then PADDING
    evidence.heatmaps    # float32 (8, MAX_DIGITS, H, W) in [0, 1]: where each digit's evidence lies

A reader reads digit d at column c when d is that column's most probable
symbol (models/ctc.py). The evidence for it is measured on a feature map A
(h, w, channels) of the reader's trunk, for the target y = log p(d at column c),
the log-softmax of the logits in inference mode:

    contribution(i, j) = sum over channels k of A_k(i, j) * dy / dA_k(i, j)

that is, how fast y changes when the features at position (i, j) are scaled
up together: per unit of relative change, to first order. It is Grad-CAM with
each position's own gradient. Grad-CAM proper averages the gradient over the
whole map first; for one column's output that would spread the weight of the
channels that column uses onto every place they fire, the number's other digits
included. The heatmap is the contribution's positive part, upsampled
bilinearly to the image and divided by its largest value per digit.
"""

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from data.numbers import PADDING
from models.ctc import greedy_read
from analysis.introspection.forward import float_images
from analysis.introspection.graph import LayerError, feature_extractor


@dataclass(frozen=True)
class DigitEvidence:
    """The digits explained and where each one's evidence lies; N images, L = MAX_DIGITS slots per image."""

    digits: np.ndarray  # int32 (N, L): the digits, left to right, then PADDING
    columns: np.ndarray  # int32 (N, L): the column (0..T-1) each digit was read at, PADDING after
    probabilities: np.ndarray  # float32 (N, L): p(digit at its column), 0 after the digits
    contributions: np.ndarray  # float32 (N, L, h, w): sum_k A_k dy/dA_k at the map's resolution, 0 after the digits
    heatmaps: np.ndarray  # float32 (N, L, H, W) in [0, 1]: the positive contributions upsampled, 0 after the digits
    column_width: float  # input pixels per column: column c covers pixels [c, c + 1) * column_width across


def digit_evidence(
    model: keras.Model,
    images: np.ndarray,
    layer_path: str,
    logits_path: str = "logits",
    targets: tuple[np.ndarray, np.ndarray] | None = None,
    batch_size: int = 32,
) -> DigitEvidence:
    """Where in each image the evidence for each digit read lies, measured at the map of `layer_path`.

    images: float32 (N, H, W, C) in [0, 1]. logits_path: the layer giving the
    column scores (N, T, K + 1) before the softmax. targets: (columns, digits),
    int (N, L) each with PADDING after the last, to explain other digits than
    the reader's greedy reading (say, the true ones). Images are independent
    (inference mode), so one gradient of a batch's sum serves every image.
    Raises LayerError when the layers do not fit (no spatial map, no columns).
    """
    images = float_images(images)
    extractor = feature_extractor(model, [layer_path, logits_path])
    maps_tensor, logits_tensor = extractor.outputs
    if len(maps_tensor.shape) != 4:
        raise LayerError(f"digit_evidence needs a layer with a spatial map; {layer_path} gives "
                         f"{tuple(maps_tensor.shape)}.")
    if len(logits_tensor.shape) != 3:
        raise LayerError(f"digit_evidence needs a number reader's column scores (B, T, K + 1) from {logits_path}, "
                         f"which gives {tuple(logits_tensor.shape)}.")
    columns_count = int(logits_tensor.shape[1])
    found = {"digits": [], "columns": [], "probabilities": [], "contributions": [], "heatmaps": []}
    for start in range(0, len(images), batch_size):
        chosen = None if targets is None else tuple(np.asarray(part)[start:start + batch_size] for part in targets)
        for key, value in _batch(extractor, images[start:start + batch_size], chosen).items():
            found[key].append(value)
    if not found["digits"]:
        raise ValueError("digit_evidence needs at least one image")
    return DigitEvidence(**{key: np.concatenate(parts) for key, parts in found.items()},
                         column_width=images.shape[2] / columns_count)


def _batch(extractor: keras.Model, images: np.ndarray, targets) -> dict:
    """DigitEvidence's arrays for one batch of images, as a dict."""
    height, width = images.shape[1:3]
    with tf.GradientTape(persistent=True) as tape:
        maps, logits = extractor(tf.constant(images), training=False)
        log_p = tf.nn.log_softmax(logits, axis=-1)  # (B, T, K + 1)
        if targets is None:
            reading = greedy_read(tf.exp(log_p))
            columns, digits = np.asarray(reading["columns"]), np.asarray(reading["digits"])
        else:
            columns, digits = (np.asarray(part, np.int32) for part in targets)
        present = columns != PADDING  # (B, L) bool
        weights = present.astype(np.float32)
        rows = np.broadcast_to(np.arange(len(images))[:, None], columns.shape)
        where = np.stack([rows, np.maximum(columns, 0), np.maximum(digits, 0)], axis=-1)  # (B, L, 3)
        chosen = tf.gather_nd(log_p, where) * weights  # (B, L): log p of each digit, 0 where none
        # One target per slot, summed over the batch: each image's gradient is that of its own digit.
        slots = [int(slot) for slot in np.flatnonzero(present.any(axis=0))]
        sums = {slot: tf.reduce_sum(chosen[:, slot]) for slot in slots}
    contributions = np.zeros((*columns.shape, *maps.shape[1:3]), np.float32)  # (B, L, h, w)
    for slot in slots:
        gradient = tape.gradient(sums[slot], maps)  # (B, h, w, c)
        contributions[:, slot] = tf.reduce_sum(gradient * maps, axis=-1).numpy()
    del tape
    # (B, L, h, w) -> (B, h, w, L) for the resize, half-pixel centres as in grad_cam.
    positive = tf.transpose(tf.nn.relu(contributions), [0, 2, 3, 1])
    upsampled = tf.transpose(tf.image.resize(positive, (height, width), method="bilinear"), [0, 3, 1, 2])
    peaks = tf.reduce_max(upsampled, axis=[2, 3], keepdims=True)
    return {
        "digits": np.where(present, digits, PADDING).astype(np.int32),
        "columns": np.where(present, columns, PADDING).astype(np.int32),
        "probabilities": np.exp(chosen.numpy()) * weights,
        "contributions": contributions,
        "heatmaps": tf.math.divide_no_nan(upsampled, peaks).numpy().astype(np.float32),
    }
