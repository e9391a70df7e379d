"""The number reader: a convolutional trunk that turns an image into columns, and a CTC head that reads them.

    from models.reader import build_reader
    model = build_reader((32, 96, 3), 10)   # image (B, 32, 96, 3) -> column probabilities (B, 24, 11)

The trunk is the classifier's idea at a number's proportions: conv{i}, conv{i}_bn,
conv{i}_relu blocks with "same" padding, so every column of the image keeps a
column of features; pooling halves the height more often than the width. Then
`columns` squeezes each column's remaining height into one feature vector, a
short stack of 1-D convolutions (`sequence{i}`) lets each column see its
neighbours (a 1 beside a 7 looks different from a lone 1), and `logits` gives
each column probabilities over the digits and the CTC blank (models/ctc.py).
One column covers `width_stride` input pixels; a number needs about two columns
per digit (a repeated digit needs a blank between its copies).
"""

import keras
from keras import layers

from harness.errors import UserError
from data.numbers import MAX_DIGITS
from models.convnet import BN_MOMENTUM
from models.ctc import DIGITS
from models.fused_batch_norm import FusedBatchNormalization

# Per block: filters and the (height, width) pooling after it (None: no pooling).
TRUNK = ((32, (2, 2)), (64, (2, 2)), (128, None), (128, (2, 1)), (192, None))
SEQUENCE_LAYERS = 2  # 1-D convolutions over the columns; each widens a column's view by two columns
SEQUENCE_WIDTH = 192
DROPOUT = 0.2


def strides(trunk=TRUNK) -> tuple[int, int]:
    """(height, width): input pixels per output row and column, the products of the trunk's poolings."""
    height = width = 1
    for _, pool in trunk:
        if pool:
            height, width = height * pool[0], width * pool[1]
    return height, width


def width_stride(trunk=TRUNK) -> int:
    """Input pixels per output column."""
    return strides(trunk)[1]


def build_reader(input_shape: tuple[int, int, int], num_classes: int = DIGITS, trunk=TRUNK) -> keras.Model:
    """An uncompiled reader: float32 images (B, H, W, C) in [0, 1] -> column probabilities (B, W / stride, K + 1)."""
    height, width, _ = input_shape
    if num_classes != DIGITS:
        raise UserError(f"the reader reads digits 0-9, and this data set has {num_classes} classes.")
    row_pixels, column_pixels = strides(trunk)
    columns = width // column_pixels
    if height < row_pixels or columns < 2 * MAX_DIGITS - 1:
        raise UserError(f"the reader needs images at least {row_pixels} pixels tall and "
                        f"{(2 * MAX_DIGITS - 1) * column_pixels} wide (two columns per digit), and these "
                        f"are {height}x{width}.")
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for number, (filters, pool) in enumerate(trunk, start=1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{number}")(x)
        x = FusedBatchNormalization(momentum=BN_MOMENTUM, name=f"conv{number}_bn")(x)
        x = layers.ReLU(name=f"conv{number}_relu")(x)
        if pool:
            x = layers.MaxPooling2D(pool, name=f"pool{number}")(x)
    # (B, h, T, F) -> (B, 1, T, F): a kernel as tall as what is left sees a whole column at once,
    # keeping where in the column a stroke is (an average would not).
    x = layers.Conv2D(SEQUENCE_WIDTH, (x.shape[1], 1), padding="valid", use_bias=False, name="columns")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="columns_bn")(x)
    x = layers.ReLU(name="columns_relu")(x)
    x = layers.Reshape((columns, SEQUENCE_WIDTH), name="column_features")(x)  # (B, T, F)
    for number in range(1, SEQUENCE_LAYERS + 1):
        x = layers.Conv1D(SEQUENCE_WIDTH, 3, padding="same", activation="relu", name=f"sequence{number}")(x)
    x = layers.Dropout(DROPOUT, name="dropout")(x)
    logits = layers.Dense(DIGITS + 1, name="logits")(x)  # digits 0-9, then the blank
    probabilities = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="reader")
