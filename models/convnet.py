"""A small modern convnet: conv-pool-batchnorm-ReLU blocks, then a dense head.

One builder serves any input shape (28x28x1 MNIST, 32x32x3 SVHN). Each block i
has layers conv{i}, then (except in the last block) pool{i}, then conv{i}_bn and
conv{i}_relu; the head is flatten, dense1 (+ dense1_bn, dense1_relu), dropout,
logits and probabilities. `conv{i}_relu` is what a user means by "what conv{i}
detects".

Every convolution is "valid" (no padding), so each one trims a pixel from every
edge: 28x28 -> conv1 26 -> pool1 13 -> conv2 11 -> pool2 5 -> conv3 3x3.
On a CPU the time of a step follows its multiply-accumulates, and most of them
sit in the full-resolution layers; valid padding cuts them 2.6-fold against
"same" padding for the same widths, and loses no accuracy: the digits' borders
are empty. The first block is the narrowest (conv2, the costliest layer, does
work in proportion to conv1's channels), and each block pools before its batch
norm and ReLU: max pooling commutes with any non-decreasing function of a
channel (batch norm with a positive scale, then ReLU, is one), so this is much
the usual conv-BN-ReLU-pool block, with statistics taken after pooling, at a
quarter of the normalisation's cost on the largest maps. See docs/speed.md.
"""

import keras
from keras import layers

from harness.errors import UserError
from models.fused_batch_norm import FusedBatchNormalization

# Momentum 0.9 (Keras: 0.99) lets the inference statistics catch up within a few
# dozen steps, so short runs and small data sets evaluate correctly.
BN_MOMENTUM = 0.9


def smallest_side(blocks: int) -> int:
    """The fewest pixels an image side needs for `blocks` blocks to leave at least one pixel.

    Worked backwards from the last block: its 3x3 convolution needs 3 pixels, and
    every block before it doubles what the next one needs (its pooling) and adds 2
    (its convolution).
    """
    side = 3
    for _ in range(blocks - 1):
        side = 2 * side + 2
    return side


def build_convnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, ...] = (16, 32, 96),
    dense_units: int = 256,
    dropout: float = 0.3,
    batch_norm: type[layers.BatchNormalization] = FusedBatchNormalization,
) -> keras.Model:
    """An uncompiled convnet mapping float32 images (B, H, W, C) in [0, 1] to probabilities (B, K).

    filters gives each block's channel count; each 3x3 convolution trims one pixel
    from every edge, and every block but the last halves what is left with a 2x2 max
    pool before its batch norm (28x28 -> 13x13 -> 5x5 -> 3x3 for MNIST).
    dropout is the fraction of dense1's units dropped while training.
    batch_norm is the convolutions' batch norm class: bench/speed.py's ours-convnet-keras-bn passes
    keras.layers.BatchNormalization, to time the fused layer against it.
    """
    smallest = smallest_side(len(filters))
    if min(input_shape[:2]) < smallest:
        raise UserError(f"the convnet needs images of at least {smallest}x{smallest} pixels, and these are "
                        f"{input_shape[0]}x{input_shape[1]}; use --model mlp, or larger images.")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for number, width in enumerate(filters, start=1):
        # No bias: the batch norm that follows has its own shift.
        x = layers.Conv2D(width, 3, padding="valid", use_bias=False, name=f"conv{number}")(x)
        if number < len(filters):
            x = layers.MaxPooling2D(2, name=f"pool{number}")(x)
        x = batch_norm(momentum=BN_MOMENTUM, name=f"conv{number}_bn")(x)
        x = layers.ReLU(name=f"conv{number}_relu")(x)
    # Flatten keeps where each part was found (global pooling would lose it, and cost
    # 0.7 points of accuracy in our runs).
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, use_bias=False, name="dense1")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="dense1_bn")(x)
    x = layers.ReLU(name="dense1_relu")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    probabilities = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="convnet")
