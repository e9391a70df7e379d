"""Lesson 2: the first recogniser, a 12-3-2 network telling 0 from 1 in 4x3-pixel images, backprop by hand.

    python -m lessons.pixels                       # figures in runs/lessons/pixels/
    python -m lessons.pixels --iterations 2000 --learning-rate 0.2

The story's images are 4 rows of 3 black-or-white pixels: a 0 (a ring) and a
1 (a bar), each also with one or two pixels flipped, 64 training images in all.
Twelve pixels feed three hidden sigmoid units, which feed two sigmoid outputs,
"it is a 0" and "it is a 1". The cost is the squared error summed over the 64
images, C = sum 1/2 ((a1 - t1)^2 + (a2 - t2)^2), and plain gradient descent
moves every weight against the cost's gradient, all 64 images at once.

The gradient is worked out by backpropagation through each unit's error
delta = dC/dz (z: the unit's weighted sum): the outputs' deltas come from the
cost's derivative (a - t) times the sigmoid's a (1 - a); the hidden units'
deltas from the outputs' deltas sent back through the weights, times their own
a (1 - a). Each weight's gradient is its input times the delta of the unit it
feeds. numpy does it here by hand, and Keras's GradientTape checks it on the
same weights.

Figures: images.png (the 64 training images), cost.png (the cost falling),
hidden_units.png (what each hidden unit looks for) and outputs.png (both
outputs on every training image and on noisy images never seen).
"""

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lessons import lesson_main, lesson_parser, output_folder, save_figures
from harness.cli import positive_float, positive_int

# 4 rows x 3 columns, 1 = black (ink). Read top to bottom: a ring, and a bar.
ZERO = np.array([[1, 1, 1],
                 [1, 0, 1],
                 [1, 0, 1],
                 [1, 1, 1]])
ONE = np.array([[0, 1, 0],
                [1, 1, 0],
                [0, 1, 0],
                [0, 1, 0]])
SHAPE = ZERO.shape
PIXELS = ZERO.size
PER_DIGIT = 32  # each digit clean, with each of the 12 pixels flipped, and with 19 pairs of pixels flipped
IMAGES_SEED = 14  # which pairs are flipped: the same 64 images whatever --seed says
NOISY_FLIPS = 3  # pixels flipped in the test images: more than any training image, so none was seen
NOISY_IMAGES = 200  # test images per run, half zeros, half ones


@dataclass(frozen=True)
class PixelsConfig:
    seed: int
    out: Path
    iterations: int
    learning_rate: float


def parse_args(argv: list[str] | None) -> PixelsConfig:
    parser = lesson_parser("pixels", "A 12-3-2 sigmoid network tells 0 from 1 in 4x3 pixels, trained by hand-written "
                                     "backpropagation.")
    parser.add_argument("--iterations", type=positive_int, default=1000,
                        help="gradient-descent steps, each on all 64 images")
    parser.add_argument("--learning-rate", type=positive_float, default=0.2,
                        help="step size: weights move by this times the summed cost's gradient")
    args = parser.parse_args(argv)
    return PixelsConfig(args.seed, args.out, args.iterations, args.learning_rate)


# ---------------------------------------------------------------- the images


def flipped(image: np.ndarray, pixels) -> np.ndarray:
    """`image` with the given flat pixel indices turned from black to white or back."""
    flat = image.flatten()
    flat[list(pixels)] = 1 - flat[list(pixels)]
    return flat.reshape(image.shape)


def training_images() -> tuple[np.ndarray, np.ndarray]:
    """(images (64, 12) float64 of 0 and 1, targets (64, 2) one-hot: column 0 "is a 0", column 1 "is a 1")."""
    rng = np.random.default_rng(IMAGES_SEED)
    pairs = list(itertools.combinations(range(PIXELS), 2))
    images, targets = [], []
    for digit, base in enumerate((ZERO, ONE)):
        singles = [(pixel,) for pixel in range(PIXELS)]
        chosen_pairs = [pairs[index] for index in rng.choice(len(pairs), PER_DIGIT - 1 - PIXELS, replace=False)]
        for pixels in [()] + singles + chosen_pairs:
            images.append(flipped(base, pixels).flatten())
            targets.append(np.eye(2)[digit])
    return np.array(images, float), np.array(targets)


def noisy_images(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(images (count, 12), targets (count, 2)): zeros and ones alternately, NOISY_FLIPS random pixels flipped."""
    images = [flipped((ZERO, ONE)[index % 2], rng.choice(PIXELS, NOISY_FLIPS, replace=False)).flatten()
              for index in range(count)]
    return np.array(images, float), np.eye(2)[np.arange(count) % 2]


# ---------------------------------------------------------------- the network, by hand


@dataclass
class Weights:
    hidden_w: np.ndarray  # (12, 3): pixel -> hidden unit
    hidden_b: np.ndarray  # (3,)
    output_w: np.ndarray  # (3, 2): hidden unit -> output
    output_b: np.ndarray  # (2,)

    def as_list(self) -> list[np.ndarray]:
        return [self.hidden_w, self.hidden_b, self.output_w, self.output_b]


def initial_weights(rng: np.random.Generator) -> Weights:
    """Every weight and bias drawn from the standard normal distribution, as the text does."""
    return Weights(rng.standard_normal((PIXELS, 3)), rng.standard_normal(3),
                   rng.standard_normal((3, 2)), rng.standard_normal(2))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def forward(weights: Weights, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hidden activations (N, 3), outputs (N, 2)) for images (N, 12)."""
    hidden = sigmoid(images @ weights.hidden_w + weights.hidden_b)
    return hidden, sigmoid(hidden @ weights.output_w + weights.output_b)


def cost(weights: Weights, images: np.ndarray, targets: np.ndarray) -> float:
    """Squared error summed over the images: sum over n and k of 1/2 (a_k - t_k)^2."""
    return float(0.5 * np.sum((forward(weights, images)[1] - targets) ** 2))


def gradients(weights: Weights, images: np.ndarray, targets: np.ndarray) -> Weights:
    """dC/d(every weight), by backpropagating the units' errors delta = dC/dz, summed over the images."""
    hidden, outputs = forward(weights, images)
    # Output units: dC/da = a - t, da/dz = a (1 - a).  (N, 2)
    output_delta = (outputs - targets) * outputs * (1 - outputs)
    # Hidden units: each output's delta sent back along the weight that joins them, times a (1 - a).  (N, 3)
    hidden_delta = (output_delta @ weights.output_w.T) * hidden * (1 - hidden)
    # A weight's gradient: the input it multiplies times the delta of the unit it feeds, summed over images.
    return Weights(images.T @ hidden_delta, hidden_delta.sum(axis=0),
                   hidden.T @ output_delta, output_delta.sum(axis=0))


def train(weights: Weights, images, targets, iterations: int, learning_rate: float) -> tuple[Weights, list[float]]:
    """Plain full-batch gradient descent; returns the final weights and the cost before each step and after."""
    costs = [cost(weights, images, targets)]
    for _ in range(iterations):
        step = gradients(weights, images, targets)
        weights = Weights(*(w - learning_rate * g for w, g in zip(weights.as_list(), step.as_list(), strict=True)))
        costs.append(cost(weights, images, targets))
    return weights, costs


# ---------------------------------------------------------------- the same network in Keras, as a check


def keras_network():
    """12 pixels -> Dense(3, sigmoid) "hidden" -> Dense(2, sigmoid) "output", in float64 to compare to 1e-6."""
    import keras

    pixels = keras.Input(shape=(PIXELS,), name="pixels", dtype="float64")
    hidden = keras.layers.Dense(3, activation="sigmoid", name="hidden", dtype="float64")(pixels)
    outputs = keras.layers.Dense(2, activation="sigmoid", name="output", dtype="float64")(hidden)
    return keras.Model(pixels, outputs, name="pixels_12_3_2")


def keras_gradients(weights: Weights, images: np.ndarray, targets: np.ndarray) -> list[np.ndarray]:
    """dC/d(weights) as TensorFlow differentiates the same cost on a Keras model holding the same weights."""
    import tensorflow as tf

    model = keras_network()
    model.get_layer("hidden").set_weights([weights.hidden_w, weights.hidden_b])
    model.get_layer("output").set_weights([weights.output_w, weights.output_b])
    with tf.GradientTape() as tape:
        summed_cost = 0.5 * tf.reduce_sum((model(images) - targets) ** 2)
    variables = model.get_layer("hidden").trainable_weights + model.get_layer("output").trainable_weights
    return [gradient.numpy() for gradient in tape.gradient(summed_cost, variables)]


def largest_gradient_difference(weights: Weights, images, targets) -> float:
    mine = gradients(weights, images, targets).as_list()
    theirs = keras_gradients(weights, images, targets)
    return max(float(np.max(np.abs(a - b))) for a, b in zip(mine, theirs, strict=True))


# ---------------------------------------------------------------- figures


def images_figure(images: np.ndarray, targets: np.ndarray) -> Figure:
    figure = Figure(figsize=(8, 6.4))
    for index, (image, target) in enumerate(zip(images, targets, strict=True)):
        axis = figure.add_subplot(4, 16, index + 1)
        axis.imshow(image.reshape(SHAPE), cmap="gray_r", vmin=0, vmax=1)
        axis.set_xticks([])
        axis.set_yticks([])
        if index % 16 == 0:
            axis.set_ylabel(str(int(target.argmax())))
    figure.suptitle("The 64 training images: a 0 and a 1, each clean, with one pixel and with two pixels flipped")
    return figure


def cost_figure(costs: list[float], learning_rate: float) -> Figure:
    figure = Figure(figsize=(5, 3.2))
    axis = figure.add_subplot()
    axis.plot(costs)
    axis.set_xlabel("iteration (one step on all 64 images)")
    axis.set_ylabel("cost: summed squared error")
    axis.set_title(f"Gradient descent, learning rate {learning_rate:g}")
    return figure


def hidden_units_figure(weights: Weights) -> Figure:
    figure = Figure(figsize=(7.5, 3))
    limit = np.abs(weights.hidden_w).max()
    for unit in range(3):
        axis = figure.add_subplot(1, 3, unit + 1)
        shown = axis.imshow(weights.hidden_w[:, unit].reshape(SHAPE), cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_xticks([])
        axis.set_yticks([])
        to_zero, to_one = weights.output_w[unit]
        axis.set_title(f"hidden unit {unit + 1}\nweight to output 0: {to_zero:+.1f}\nto output 1: {to_one:+.1f}",
                       fontsize=8)
    figure.colorbar(shown, ax=figure.axes, shrink=0.8, label="weight from the pixel (red: ink excites)")
    return figure


def outputs_figure(train_outputs, train_targets, noisy, noisy_outputs, noisy_targets) -> Figure:
    figure = Figure(figsize=(11, 5))
    grid = figure.add_gridspec(2, 12, height_ratios=[1.3, 1], hspace=0.75)
    axis = figure.add_subplot(grid[0, :])
    positions = np.arange(len(train_outputs))
    axis.bar(positions - 0.2, train_outputs[:, 0], width=0.4, label='output "0"')
    axis.bar(positions + 0.2, train_outputs[:, 1], width=0.4, label='output "1"')
    axis.axvline(len(train_outputs) / 2 - 0.5, color="grey", linewidth=0.5)
    axis.set_xlabel("training image (first 32 are zeros, last 32 ones)")
    axis.set_title("Both outputs on every training image")
    axis.legend(fontsize=7, loc="center left", framealpha=1)
    for column in range(12):
        shown = figure.add_subplot(grid[1, column])
        shown.imshow(noisy[column].reshape(SHAPE), cmap="gray_r", vmin=0, vmax=1)
        shown.set_xticks([])
        shown.set_yticks([])
        zero, one = noisy_outputs[column]
        right = zero > one if noisy_targets[column, 0] else one > zero
        shown.set_title(f"{zero:.2f}\n{one:.2f}", fontsize=8, color="black" if right else "red")
    figure.text(0.5, 0.06, f'Unseen images with {NOISY_FLIPS} pixels flipped: outputs "0" (top) and "1" (bottom); '
                           "red where wrong", ha="center", fontsize=9)
    return figure


# ---------------------------------------------------------------- the lesson


def run(config: PixelsConfig) -> tuple[list[Path], list[str]]:
    out = output_folder(config.out)
    rng = np.random.default_rng(config.seed)
    images, targets = training_images()
    start = initial_weights(rng)
    difference = largest_gradient_difference(start, images, targets)
    weights, costs = train(start, images, targets, config.iterations, config.learning_rate)
    train_outputs = forward(weights, images)[1]
    right = int(np.sum(train_outputs.argmax(axis=1) == targets.argmax(axis=1)))
    noisy, noisy_targets = noisy_images(NOISY_IMAGES, rng)
    noisy_outputs = forward(weights, noisy)[1]
    noisy_right = int(np.sum(noisy_outputs.argmax(axis=1) == noisy_targets.argmax(axis=1)))
    lines = [
        f"hand-written backpropagation against Keras's GradientTape (float64, initial weights): "
        f"largest difference {difference:.1e}",
        f"cost {costs[0]:.3f} -> {costs[-1]:.3f} after {config.iterations} iterations at learning rate "
        f"{config.learning_rate:g}",
        f"training images right: {right} of {len(images)}; unseen images with {NOISY_FLIPS} pixels flipped: "
        f"{noisy_right} of {len(noisy)}",
    ]
    figures = {
        "images.png": images_figure(images, targets),
        "cost.png": cost_figure(costs, config.learning_rate),
        "hidden_units.png": hidden_units_figure(weights),
        "outputs.png": outputs_figure(train_outputs, targets, noisy, noisy_outputs, noisy_targets),
    }
    return save_figures(figures, out), lines


main = lesson_main(run, parse_args)


if __name__ == "__main__":
    sys.exit(main())
