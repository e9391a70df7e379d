"""The one place that turns in-memory uint8 arrays into tf.data batches for Keras.

The whole data set stays resident in memory as uint8 tensors; each step gathers
a batch by index and converts only that batch to float32. This keeps memory at
a quarter of a float copy (SVHN's extra split stays under 2 GB) and avoids
tf.data's per-image overhead.
"""

import numpy as np
import tensorflow as tf

# Augmentations by name, applied to float training batches only. Never flips:
# a mirrored 2, 3 or 7 is not a digit.
AUGMENTATIONS = ("none", "shift")
MAX_SHIFT = 0.08  # of the image side: about 2 pixels on 28x28, 3 on 32x32


def normalise(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels (B, H, W, C) -> float32 in [0, 1], the scale every model is trained on."""
    return tf.cast(images, tf.float32) / 255.0


def random_shift(images: tf.Tensor, seed: tf.Tensor, max_shift: float = MAX_SHIFT) -> tf.Tensor:
    """Move each image of a float batch (B, H, W, C) by up to max_shift of its size, filling with black.

    The shifts are sub-pixel (bilinear) and drawn from a stateless generator keyed
    by `seed` (shape (2,) int), so a pipeline that passes a fresh seed per batch
    is reproducible. This is the transform keras.layers.RandomTranslation applies;
    calling it without the layer's seed-state variable keeps tf.data free of
    stateful ops, which made the pipeline stall and once hang on this machine.
    """
    shape = tf.shape(images)
    count, height, width = shape[0], shape[1], shape[2]
    size = tf.cast(tf.stack([width, height]), tf.float32)
    offsets = tf.random.stateless_uniform([count, 2], seed, -max_shift, max_shift) * size  # (B, [dx, dy]) pixels
    ones, zeros = tf.ones([count, 1]), tf.zeros([count, 1])
    # Each row maps an output pixel (x, y) to the input pixel (x - dx, y - dy).
    transforms = tf.concat([ones, zeros, -offsets[:, :1], zeros, ones, -offsets[:, 1:], zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT",
    )


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    augment: str = "none",
) -> tf.data.Dataset:
    """Batches of (float32 images (B, H, W, C), int32 labels (B,)).

    With a shuffle_seed the order is reshuffled every epoch, reproducibly for that
    seed; without one the order is the arrays' own (for evaluation). `augment`
    names a transform from AUGMENTATIONS, applied to each float training batch
    with a fresh seed per batch, reproducibly for the shuffle_seed.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, not {augment!r}")
    if augment != "none" and shuffle_seed is None:
        raise ValueError("augmentation is for training batches, which need a shuffle_seed")
    images = tf.constant(images)
    labels = tf.constant(labels, tf.int32)
    indices = tf.data.Dataset.range(len(labels))
    if shuffle_seed is not None:
        indices = indices.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    batched = indices.batch(batch_size).map(lambda index: (normalise(tf.gather(images, index)), tf.gather(labels, index)))
    if augment == "shift":
        # One (2,) seed per batch, drawn afresh every epoch.
        seeds = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True).batch(2)
        batched = tf.data.Dataset.zip(batched, seeds).map(
            lambda batch, seed: (random_shift(batch[0], seed), batch[1]))
    return batched.prefetch(tf.data.AUTOTUNE)
