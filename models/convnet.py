"""A small modern convnet: conv-batchnorm-ReLU blocks, max pooling between them, global pooling, logits.

One builder serves any input shape (28x28x1 MNIST, 32x32x3 SVHN). Each block i
has layers conv{i}, conv{i}_bn, conv{i}_relu and, except after the last block,
pool{i}; then global_pool, dropout, logits and probabilities. `conv{i}_relu` is
what a user means by "what conv{i} detects".
"""

import keras
from keras import layers


def build_convnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, ...] = (32, 64, 128),
    dropout: float = 0.0,
) -> keras.Model:
    """An uncompiled convnet mapping float32 images (B, H, W, C) in [0, 1] to probabilities (B, K).

    filters gives each block's channel count; every block but the last halves the
    height and width with a 2x2 max pool.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for number, width in enumerate(filters, start=1):
        # No bias: the batch norm that follows has its own shift.
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{number}")(x)
        x = layers.BatchNormalization(name=f"conv{number}_bn")(x)
        x = layers.ReLU(name=f"conv{number}_relu")(x)
        if number < len(filters):
            x = layers.MaxPooling2D(2, name=f"pool{number}")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    probabilities = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="convnet")
