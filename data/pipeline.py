"""The one place that turns in-memory uint8 arrays into tf.data batches for Keras.

The whole data set stays resident in memory as uint8 tensors; each step gathers
a batch by index and converts only that batch to float32. This keeps memory at
a quarter of a float copy (SVHN's extra split stays under 2 GB) and avoids
tf.data's per-image overhead.
"""

import numpy as np
import tensorflow as tf


def normalise(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels (B, H, W, C) -> float32 in [0, 1], the scale every model is trained on."""
    return tf.cast(images, tf.float32) / 255.0


def batches(images: np.ndarray, labels: np.ndarray, batch_size: int, shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Batches of (float32 images (B, H, W, C), int32 labels (B,)).

    With a shuffle_seed the order is reshuffled every epoch, reproducibly for that
    seed; without one the order is the arrays' own (for evaluation).
    """
    images = tf.constant(images)
    labels = tf.constant(labels, tf.int32)
    indices = tf.data.Dataset.range(len(labels))
    if shuffle_seed is not None:
        indices = indices.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    return (
        indices.batch(batch_size)
        .map(lambda index: (normalise(tf.gather(images, index)), tf.gather(labels, index)))
        .prefetch(tf.data.AUTOTUNE)
    )
