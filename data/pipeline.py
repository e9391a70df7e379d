"""The one place that turns in-memory uint8 arrays into tf.data batches for Keras.

The whole data set stays resident in memory as uint8 tensors; each step gathers
a batch by index and converts only that batch to float32. This keeps memory at
a quarter of a float copy (SVHN's extra split stays under 2 GB) and avoids
tf.data's per-image overhead.
"""

import keras
import numpy as np
import tensorflow as tf

# Augmentations by name, applied to float training batches only. Never flips:
# a mirrored 2, 3 or 7 is not a digit.
AUGMENTATIONS = ("none", "shift")
MAX_SHIFT = 0.08  # of the image side: about 2 pixels on 28x28, 3 on 32x32


def normalise(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels (B, H, W, C) -> float32 in [0, 1], the scale every model is trained on."""
    return tf.cast(images, tf.float32) / 255.0


def augmenter(name: str, seed: int) -> keras.layers.Layer | None:
    """A Keras preprocessing stage for float batches (B, H, W, C), or None for "none".

    "shift" moves each image by up to MAX_SHIFT of its size in each direction,
    filling with black; it is what lets the convnet pass 99.4 % on MNIST instead
    of memorising pixel positions (see README, Results).
    """
    if name == "none":
        return None
    if name == "shift":
        return keras.layers.RandomTranslation(MAX_SHIFT, MAX_SHIFT, fill_mode="constant", seed=seed, name="shift")
    raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, not {name!r}")


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    augment: keras.layers.Layer | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images (B, H, W, C), int32 labels (B,)).

    With a shuffle_seed the order is reshuffled every epoch, reproducibly for that
    seed; without one the order is the arrays' own (for evaluation). `augment`,
    for training batches only, is applied to each float batch.
    """
    images = tf.constant(images)
    labels = tf.constant(labels, tf.int32)
    indices = tf.data.Dataset.range(len(labels))
    if shuffle_seed is not None:
        indices = indices.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    batched = indices.batch(batch_size).map(lambda index: (normalise(tf.gather(images, index)), tf.gather(labels, index)))
    if augment is not None:
        batched = batched.map(lambda pixels, digits: (augment(pixels, training=True), digits))
    return batched.prefetch(tf.data.AUTOTUNE)
