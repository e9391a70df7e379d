"""Multi-layer perceptron: flatten, hidden dense layers, logits, softmax.

The default 784-512-256-10 with ReLU is the network of the project's founding
material. Layers are named dense1, dense2, ..., logits, probabilities.
"""

import keras
from keras import layers

ACTIVATIONS = ("relu", "sigmoid", "tanh")


def build_mlp(
    input_shape: tuple[int, int, int],
    num_classes: int,
    hidden_units: tuple[int, ...] = (512, 256),
    activation: str = "relu",
    dropout: float = 0.2,
) -> keras.Model:
    """An uncompiled MLP mapping float32 images (B, H, W, C) in [0, 1] to class probabilities (B, K).

    dropout is the fraction of each hidden layer's units dropped while training.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for number, units in enumerate(hidden_units, start=1):
        x = layers.Dense(units, activation=activation, name=f"dense{number}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{number}")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    probabilities = layers.Softmax(name="probabilities")(logits)
    return keras.Model(inputs, probabilities, name="mlp")
