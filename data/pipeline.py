"""The one place that turns in-memory uint8 arrays into tf.data batches for Keras.

The whole data set stays resident in memory as uint8 tensors; each step gathers
a batch by index and converts only that batch to float32. This keeps memory at
a quarter of a float copy (SVHN's extra split stays under 2 GB) and avoids
tf.data's per-image overhead.
"""

import math

import numpy as np
import tensorflow as tf

from harness.kinds import CLASSIFIER, Kind

# Augmentations by name, applied to float training batches only. Never flips:
# a mirrored 2, 3 or 7 is not a digit.
#   shift:  handwriting on black; moves of up to MAX_SHIFT, black fill.
#   street: photos of house numbers; small moves, turns and zooms with the edge
#           pixels repeated (a street has no black border), then brightness and
#           contrast changes like those of light and camera.
#   handwriting: digits written at a slant, larger or smaller, off-centre, as a
#           phone held at an angle sees them; large turns, zooms and moves, black
#           fill (evaluate.py --robustness measures what it buys).
AUGMENTATIONS = ("none", "shift", "street", "handwriting")
MAX_SHIFT = 0.08  # of the image side: about 2 pixels on 28x28, 3 on 32x32
MAX_ROTATION = 10.0  # degrees, either way
MAX_ZOOM = 0.1  # scale factors 0.9..1.1
HANDWRITING_SHIFT = 0.1  # of the side: about 3 pixels on 28x28
HANDWRITING_ROTATION = 30.0  # degrees, either way
HANDWRITING_ZOOM = 0.3  # scale factors 0.7..1.3
HANDWRITING_SHARE = 0.5  # of the images moved; the rest keep the upright, centred digits clean accuracy needs
MAX_BRIGHTNESS = 0.15  # added to pixels in [0, 1]
CONTRAST_RANGE = (0.6, 1.4)  # factor on each image's deviation from its mean


def normalise(images: tf.Tensor) -> tf.Tensor:
    """uint8 pixels (B, H, W, C) -> float32 in [0, 1], the scale every model is trained on."""
    return tf.cast(images, tf.float32) / 255.0


def random_affine(images, seed, max_shift=MAX_SHIFT, max_rotation=0.0, max_zoom=0.0, fill_mode="CONSTANT",
                  share=1.0):
    """Move, turn and zoom each image of a float batch (B, H, W, C) about its centre, by random amounts.

    Amounts are uniform in +-max_shift (of the side), +-max_rotation (degrees) and
    1 +- max_zoom, drawn from a stateless generator keyed by `seed` (shape (2,)
    int), so a pipeline that passes a fresh seed per batch is reproducible. Only a
    random `share` of the images is moved; the others pass as they are.
    Sampling is bilinear; fill_mode "CONSTANT" fills with black, "NEAREST" repeats
    the edge. This is the op keras.layers.RandomTranslation and RandomRotation
    apply; calling it directly keeps the tf.data pipeline free of the layers'
    seed-state variables (with them, one training run here hung inside fit).
    """
    shape = tf.shape(images)
    count = shape[0]
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    draws = tf.random.stateless_uniform([count, 4], seed, -1.0, 1.0)  # (B, [dx, dy, angle, zoom])
    if share < 1.0:
        draws *= tf.cast(tf.random.stateless_uniform([count, 1], seed + 3) < share, tf.float32)
    dx, dy = draws[:, 0] * max_shift * width, draws[:, 1] * max_shift * height  # pixels
    angle = draws[:, 2] * max_rotation * (3.141592653589793 / 180)
    zoom = 1.0 + draws[:, 3] * max_zoom
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    # output = zoom * R(angle) (input - centre) + centre + (dx, dy); each row below maps an
    # output pixel back to its input position, which is what the op needs.
    a0, a1 = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    b0, b1 = -tf.sin(angle) / zoom, tf.cos(angle) / zoom
    a2 = centre_x - a0 * (centre_x + dx) - a1 * (centre_y + dy)
    b2 = centre_y - b0 * (centre_x + dx) - b1 * (centre_y + dy)
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=fill_mode,
    )


def random_shift(images: tf.Tensor, seed: tf.Tensor, max_shift: float = MAX_SHIFT) -> tf.Tensor:
    """Move each image (B, H, W, C) by up to max_shift of its side, sub-pixel, filling with black."""
    return random_affine(images, seed, max_shift=max_shift)


def random_light(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random brightness and contrast per image of a float batch (B, H, W, C) in [0, 1], clipped."""
    count = tf.shape(images)[0]
    brightness = tf.random.stateless_uniform([count, 1, 1, 1], seed, -MAX_BRIGHTNESS, MAX_BRIGHTNESS)
    contrast = tf.random.stateless_uniform([count, 1, 1, 1], seed + 1, *CONTRAST_RANGE)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((images - mean) * contrast + mean + brightness, 0.0, 1.0)


def augment_batch(images: tf.Tensor, seed: tf.Tensor, name: str) -> tf.Tensor:
    """Apply the named augmentation from AUGMENTATIONS to a float batch (B, H, W, C)."""
    if name == "shift":
        return random_shift(images, seed)
    if name == "street":
        moved = random_affine(images, seed, max_shift=MAX_SHIFT, max_rotation=MAX_ROTATION,
                              max_zoom=MAX_ZOOM, fill_mode="NEAREST")
        return random_light(moved, seed + 2)
    if name == "handwriting":
        return random_affine(images, seed, max_shift=HANDWRITING_SHIFT, max_rotation=HANDWRITING_ROTATION,
                             max_zoom=HANDWRITING_ZOOM, share=HANDWRITING_SHARE)
    return images


def resolve_augment(name: str, channels: int, kind: Kind = CLASSIFIER) -> str:
    """The augmentation a run uses: `name`, or for "auto" the one that suits its images.

    Street photos (3 channels) need turns, zooms and lighting to generalise from
    few images. Greyscale images get their kind's (harness/kinds.py): single
    handwritten digits "handwriting" (on MNIST it raises clean accuracy at equal
    steps and keeps a digit turned 30 degrees or scaled 0.7-1.3 readable: docs/robustness.md);
    whole handwritten numbers none (a turn of 30 degrees would carry a long
    number's ends out of the picture, and the composer already varies each
    digit's size and place, data/composer/).
    """
    if name != "auto":
        return name
    if channels == 3:
        return "street"
    return kind.greyscale_augment


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    augment: str = "none",
    epochs: range = range(1),
    composer=None,
    composed_per_batch: int = 0,
    repeats: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images (B, H, W, C), int32 labels (B,), or (B, MAX_DIGITS) for numbers).

    Without a shuffle_seed: one pass in the arrays' own order (for evaluation).
    With one: the epochs in `epochs` back to back, each in its own order drawn
    from (shuffle_seed, epoch) alone, so training resumed at epoch e sees exactly
    the batches an uninterrupted run sees from e on; fit needs
    steps_per_epoch=steps_per_epoch(len(labels), batch_size). `augment` names a
    transform from AUGMENTATIONS, applied to each float training batch with a
    seed drawn from (shuffle_seed, epoch, batch) the same way. A `composer`
    (data/composer/) adds composed_per_batch synthetic numbers to every
    training batch, drawn from the same per-batch seed, so they resume exactly too.
    `repeats` (N,) int shows each training image that many times per epoch, in
    the epoch's shuffled order (balanced sampling of a small source); fit then
    needs steps_per_epoch=steps_per_epoch(repeats.sum(), batch_size).
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, not {augment!r}")
    if augment != "none" and shuffle_seed is None:
        raise ValueError("augmentation is for training batches, which need a shuffle_seed")
    images = tf.constant(images)
    labels = tf.constant(labels, tf.int32)

    def gather(index):
        return normalise(tf.gather(images, index)), tf.gather(labels, index)

    if shuffle_seed is None:
        batched = tf.data.Dataset.range(len(labels)).batch(batch_size).map(gather)
    else:
        shown = tf.range(len(labels), dtype=tf.int64) if repeats is None else tf.constant(
            np.repeat(np.arange(len(labels), dtype=np.int64), repeats))
        batched = tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(
            lambda epoch: _one_epoch(shown, batch_size, shuffle_seed, epoch)
        ).map(lambda index, seed: _augmented(_with_composed(gather(index), seed, composer, composed_per_batch),
                                             seed, augment))
    # Multi-worker training shards this pipeline by element (each worker keeps every n-th
    # batch): it starts from indices in memory, not from files that could be divided.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batched.prefetch(tf.data.AUTOTUNE).with_options(options)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches in one pass over `count` images, the last one partial."""
    return math.ceil(count / batch_size)


def _one_epoch(shown: tf.Tensor, batch_size: int, seed: int, epoch: tf.Tensor) -> tf.data.Dataset:
    """(index batch (B,), augmentation seed (2,)) for one epoch: the image indices `shown` (S,) int64, shuffled by
    the stateless generator keyed by (seed, epoch)."""
    key = tf.stack([tf.constant(seed, tf.int64), epoch])
    order = tf.random.experimental.stateless_shuffle(shown, seed=key)
    index_batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
    # One (2,) seed per batch: (epoch * steps + batch, seed), distinct for every batch of the run.
    steps = steps_per_epoch(int(shown.shape[0]), batch_size)
    augment_seeds = tf.data.Dataset.range(epoch * steps, (epoch + 1) * steps).map(
        lambda step: tf.stack([step, tf.constant(seed, tf.int64)]))
    return tf.data.Dataset.zip(index_batches, augment_seeds)


def _with_composed(batch, seed, composer, count: int):
    """The batch with `count` numbers from `composer` appended, composed in numpy from `seed` (2,)."""
    if composer is None or count == 0:
        return batch
    images, labels = batch

    def compose(seed):
        composed_images, composed_labels, _ = composer.compose(count, tuple(int(part) for part in seed))
        return composed_images, composed_labels

    composed_images, composed_labels = tf.numpy_function(compose, [seed], [tf.uint8, tf.int32], stateful=False)
    composed_images.set_shape([count, *images.shape[1:]])
    composed_labels.set_shape([count, *labels.shape[1:]])
    return tf.concat([images, normalise(composed_images)], 0), tf.concat([labels, composed_labels], 0)


def _augmented(batch, seed, augment: str):
    images, labels = batch
    return augment_batch(images, seed, augment), labels
