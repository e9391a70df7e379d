"""Grad-CAM: where in each image a convolutional layer found the evidence for a class.

    heatmaps, classes = grad_cam(model, images, "conv3_relu")      # float32 (N, H, W) in [0, 1], int64 (N,)
"""

import keras
import numpy as np
import tensorflow as tf

from analysis.introspection.forward import float_images
from analysis.introspection.graph import (
    LayerError, call_in, calls_of, find_layer, inputs_of, output_tensor, resolve, single, submodel,
)


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    conv_path: str,
    class_indices: np.ndarray | None = None,
    logits_path: str = "logits",
    batch_size: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heatmaps: where in each image the layer at conv_path found evidence for a class.

    With A the layer's (h, w, c) map and y the class's logit (pre-softmax, so a
    confident prediction does not flatten the gradient): weights_c = mean over
    positions of dy/dA_c, cam = relu(sum_c weights_c A_c), upsampled bilinearly
    to the image size, then divided by its maximum (an all-zero map stays zero).
    class_indices (N,) int defaults to each image's predicted class. The logits
    layer must be in the outer model or in the same nested model as conv_path
    (a classifier wrapped in another model). Returns (heatmaps float32 (N, H, W)
    in [0, 1], class_indices int64 (N,)).
    """
    images = float_images(images)
    conv_chain, logits_chain = resolve(model, conv_path), resolve(model, logits_path)
    # Where both layers sit in the same nested model, work inside it, on what the outer graph feeds it.
    feeds = []  # models, each from one level's inputs to what it feeds the nested model below
    while len(conv_chain) > 1 and len(logits_chain) > 1 and conv_chain[0] is logits_chain[0]:
        feeding = call_in(model, conv_chain[0]).inputs
        feeds.append(submodel(inputs_of(model), feeding[0] if len(feeding) == 1 else feeding))
        model, conv_chain, logits_chain = conv_chain[0], conv_chain[1:], logits_chain[1:]
    maps_tensor = output_tensor(model, conv_chain)
    if len(maps_tensor.shape) != 4:
        raise LayerError(f"grad_cam needs a layer with a spatial map; {conv_path} has none.")
    if len(logits_chain) > 1:
        raise LayerError(f"grad_cam needs {logits_path} in the outer model or in the same nested model as {conv_path}.")
    logits = output_tensor(model, logits_chain)
    if len(logits.shape) != 2:  # a number reader's columns (B, T, K + 1): see analysis/introspection/evidence.py
        raise LayerError(f"grad_cam needs class scores (B, K) from {logits_path}, which gives "
                         f"{tuple(logits.shape)}; explain a number reader's digits with digit_evidence.")
    if len(conv_chain) == 1:
        # One model computes both, so the gradient flows through the real graph, skips included.
        both = keras.Model(inputs_of(model), [maps_tensor, logits])
        bottom, head = None, None
    else:
        bottom = keras.Model(inputs_of(model), maps_tensor)
        head = _head(model, conv_chain, logits, conv_path)

    heatmaps, chosen_classes = [], []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size])
        for feed in feeds:
            batch = feed(batch, training=False)
        chosen = None if class_indices is None else np.asarray(class_indices[start:start + batch_size], np.int64)
        with tf.GradientTape() as tape:
            if bottom is None:
                tape.watch(batch)
                maps, scores = both(batch, training=False)
            else:
                maps = bottom(batch, training=False)
                tape.watch(maps)
                scores = head(maps)
            if chosen is None:
                chosen = np.argmax(scores.numpy(), axis=1)
            target = tf.gather(scores, chosen, axis=1, batch_dims=1)  # (B,)
        gradients = tape.gradient(target, maps)  # (B, h, w, c); images are independent
        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)  # (B, 1, 1, c)
        cams = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1, keepdims=True))  # (B, h, w, 1)
        cams = tf.image.resize(cams, images.shape[1:3], method="bilinear")[..., 0]  # half-pixel centres
        peaks = tf.reduce_max(cams, axis=[1, 2], keepdims=True)
        heatmaps.append(tf.math.divide_no_nan(cams, peaks).numpy())
        chosen_classes.append(chosen)
    if not heatmaps:
        return np.zeros((0, *images.shape[1:3]), np.float32), np.zeros(0, np.int64)
    return np.concatenate(heatmaps).astype(np.float32), np.concatenate(chosen_classes).astype(np.int64)


def _head(model, chain, target, path):
    """A function from chain[-1]'s output to `target` (a tensor of model's graph), in inference mode."""
    layer, call = chain[0], call_in(model, chain[0])
    start = single(call.outputs, layer)
    try:
        outer = submodel(start, target)
        inner = _head(layer, chain[1:], single(layer.outputs, layer), path) if len(chain) > 1 else None
    except ValueError as error:  # Keras: "Graph disconnected"
        raise LayerError(f"cannot compute Grad-CAM at {path}: other layers bypass it on the way to the "
                         "logits; choose a layer that all of the image's information passes through.") from error
    if inner is None:
        return lambda maps: outer(maps, training=False)
    return lambda maps: outer(inner(maps), training=False)


def gradcam_model(model: keras.Model, conv_path: str, logits_path: str):
    """(model, conv path, logits path) for grad_cam: `model` itself, or a nested model that computes the same.

    When both layers sit in a nested model that the outer one feeds the image
    unchanged (a wrapper), that nested model computes the same thing: use it.
    None when no such model exists.
    """
    if "/" not in logits_path:
        return model, conv_path, logits_path
    parent, _, inner_logits = logits_path.partition("/")
    conv_parent, _, inner_conv = conv_path.partition("/")
    inner = find_layer(model, parent)
    feeds = [call.inputs for call in calls_of(inner)]
    fed_the_image = len(feeds) == 1 and [id(tensor) for tensor in feeds[0]] == [id(tensor) for tensor in model.inputs]
    if conv_parent != parent or not fed_the_image:
        return None
    return gradcam_model(inner, inner_conv, inner_logits)
