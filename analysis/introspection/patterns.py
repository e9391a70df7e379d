"""Filter patterns: input images grown by gradient ascent to excite one unit each.

    patterns, start, end = filter_patterns(model, "conv2_relu", units=[0, 5, 7])   # (3, H, W, C) in [0, 1]
"""

import keras
import numpy as np
import tensorflow as tf

from analysis.introspection.forward import checked_units, quiet_retracing
from analysis.introspection.graph import LayerError, identity, inputs_of, output_tensor, resolve

RELU_LEAK = 0.01  # slope of the ascent's leaky ReLU below zero; the gradient is normalised, so small is enough


def filter_patterns(
    model: keras.Model,
    path: str,
    units: list[int],
    steps: int = 64,
    step_size: float = 0.05,
    seed: int = 0,
    jitter: int = 2,
    blur_every: int = 4,
    noise: float = 0.1,
    start_level: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input images that maximise the mean activation of each unit, by gradient ascent.

    Unit i is image i of one batch, optimised together in one tf.function.
    Each image starts at `start_level` (mid-grey leaves room to move both ways)
    plus uniform noise of total width `noise`, and takes `steps` steps of
    `step_size` (root mean square change per pixel: the gradient is normalised
    per image), on a copy rolled by up to `jitter` pixels, clipped to [0, 1],
    with a light 3x3 blur every `blur_every` steps. Jitter and blur keep the
    pattern from becoming pixel-level noise that only this exact alignment excites.

    The objective is the channel mean over positions for a convolutional layer,
    the unit itself for a dense one. Returns (patterns float32 (U, H, W, C) in
    [0, 1], start_activation float32 (U,), end_activation float32 (U,)), the
    activations measured without jitter. A unit that no image in [0, 1] can
    excite ends where it started.
    """
    chain = resolve(model, path)
    # Where a ReLU's output is zero it has no gradient, so a unit silent all over
    # the start image could never move. For a layer that ends in a plain ReLU
    # (a ReLU layer, or a dense or convolution layer with activation="relu"), the
    # ascent follows a leaky ReLU of what the ReLU receives instead: the same
    # direction wherever the unit is active, a small push up where it is not.
    # Activations reported are the layer's own.
    before_relu = _before_relu(chain[-1])
    leaky = before_relu is not None
    extractor = keras.Model(inputs_of(model), output_tensor(model, chain, feeding=leaky))
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        raise LayerError(f"{model.name} leaves its input size open; filter_patterns needs a fixed one.")
    channels = output_tensor(model, chain).shape[-1]
    units = tf.constant(checked_units(path, units, channels), tf.int32)
    count = int(units.shape[0])

    def unit_maps(images):  # (U, H, W, C) -> (U, positions): image i's unit i; a dense layer has one position
        values = extractor(images, training=False)
        if leaky:
            values = before_relu(values)
        return tf.gather(tf.reshape(values, (count, -1, channels)), units, axis=2, batch_dims=1)

    def activation(images):  # (U,) each unit's mean activation, as the layer computes it
        values = unit_maps(images)
        return tf.reduce_mean(tf.nn.relu(values) if leaky else values, axis=1)

    def ascent_objective(images):
        values = unit_maps(images)
        return tf.reduce_mean(tf.nn.leaky_relu(values, RELU_LEAK) if leaky else values, axis=1)

    blur_kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    blur_kernel = tf.constant(np.tile(blur_kernel[:, :, None, None], (1, 1, shape[-1], 1)))  # (3, 3, C, 1)

    def blur(images):
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # edges stay bright
        return tf.nn.depthwise_conv2d(padded, blur_kernel, strides=[1, 1, 1, 1], padding="VALID")

    @tf.function
    def ascend(images):
        for step in tf.range(steps):
            shift = tf.random.stateless_uniform([2], seed=tf.stack([seed, step]), minval=-jitter,
                                                maxval=jitter + 1, dtype=tf.int32)
            with tf.GradientTape() as tape:
                tape.watch(images)
                value = tf.reduce_sum(ascent_objective(tf.roll(images, shift, axis=[1, 2])))
            # The images do not interact (inference mode), so the sum's gradient
            # with respect to image i is that of unit i alone.
            gradient = tape.gradient(value, images)
            gradient /= tf.sqrt(tf.reduce_mean(tf.square(gradient), axis=[1, 2, 3], keepdims=True)) + 1e-8
            images = tf.clip_by_value(images + step_size * gradient, 0.0, 1.0)
            if (step + 1) % blur_every == 0:
                images = blur(images)
        return images

    start = np.random.default_rng(seed).uniform(start_level - noise / 2, start_level + noise / 2, (count, *shape))
    start = tf.constant(start, tf.float32)
    with quiet_retracing():
        patterns = ascend(start)
    return patterns.numpy(), activation(start).numpy(), activation(patterns).numpy()


def _before_relu(layer):
    """A function from the layer's input to what its final plain ReLU receives; None if it ends otherwise."""
    if isinstance(layer, keras.layers.ReLU):
        plain = not layer.max_value and not layer.negative_slope and not layer.threshold
        return identity if plain else None
    if getattr(layer, "activation", None) is not keras.activations.relu:
        return None
    if isinstance(layer, keras.layers.Activation):
        return identity
    if isinstance(layer, keras.layers.Dense):  # as Dense.call computes it, without the activation
        return lambda inputs: inputs @ layer.kernel + (0 if layer.bias is None else layer.bias)
    if isinstance(layer, keras.layers.Conv2D) and layer.data_format == "channels_last":
        return lambda inputs: layer.convolution_op(inputs, layer.kernel) + (layer.bias if layer.use_bias else 0)
    return None

