"""Lesson 1: a neuron, its activation, and how sums of neurons draw any curve.

    python -m lessons.neuron                      # figures in runs/lessons/neuron/
    python -m lessons.neuron --steps 4 16 64 --hidden 32 --epochs 300

A neuron adds up its inputs with weights, adds a bias and passes the sum
through an activation: the step function of the first artificial neurons, or
the smooth sigmoid, tanh and ReLU that gradient descent needs. Two sigmoid
neurons with a large weight make a step: sigmoid(1000 x + 5000) rises at x = -5,
sigmoid(1000 x - 5000) at x = 5, and their difference is a bump of height 1 on
[-5, 5]; a factor on it sets the height. N such bumps side by side, each as high
as the curve at its middle, approximate a continuous curve, and the error falls
as N grows: one hidden layer can draw any continuous function on an interval.
Finally a network with one hidden layer, trained with Keras by gradient
descent, finds its own way to draw the same curve.

Figures: activations.png, steps.png (one bump, the sums for several N, the
error against N) and trained.png (the trained network against the bumps).
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lessons import lesson_main, lesson_parser, output_folder, save_figures
from harness.cli import positive_int

INTERVAL = (-10.0, 10.0)  # where the curve is drawn and approximated
STEEPNESS = 1000.0  # the texts' weight: a sigmoid rises from 0.01 to 0.99 within 0.01 of its edge
GRID = 2001  # points on INTERVAL where errors are measured (spacing 0.01)
TRAINING_POINTS = 4000  # samples of the curve the Keras network learns from
BATCH = 100  # samples per gradient step


@dataclass(frozen=True)
class NeuronConfig:
    seed: int
    out: Path
    steps: tuple[int, ...]  # numbers of bumps N compared
    hidden: int  # hidden units of the trained network
    epochs: int


def parse_args(argv: list[str] | None) -> NeuronConfig:
    parser = lesson_parser("neuron", "A neuron, activations, steps from sigmoid pairs, and a network fitting sin.")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[2, 4, 8, 16, 32, 64],
                        help="numbers of bumps N to approximate the curve with")
    parser.add_argument("--hidden", type=positive_int, default=20, help="hidden units of the trained network")
    parser.add_argument("--epochs", type=positive_int, default=60,
                        help=f"epochs of training ({TRAINING_POINTS // BATCH} steps of {BATCH} samples each)")
    args = parser.parse_args(argv)
    return NeuronConfig(args.seed, args.out, tuple(sorted(set(args.steps))), args.hidden, args.epochs)


# ---------------------------------------------------------------- a neuron


def step(z: np.ndarray) -> np.ndarray:
    return (z >= 0).astype(float)


def sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a large positive number overflows to inf, 1 / inf is 0: the right limit, without a warning.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


ACTIVATIONS = {"step": step, "sigmoid": sigmoid, "tanh": np.tanh, "relu": relu}


def neuron(inputs: np.ndarray, weights: np.ndarray, bias: float, activation=sigmoid) -> np.ndarray:
    """activation(inputs . weights + bias): inputs (..., n), weights (n,), result (...)."""
    return activation(inputs @ weights + bias)


# ---------------------------------------------------------------- steps and their sums


def bump(x: np.ndarray, left: float, right: float, height: float = 1.0) -> np.ndarray:
    """`height` on [left, right], 0 elsewhere: two sigmoid neurons of weight STEEPNESS, one rising at each edge.

    With left -5, right 5 the biases are 5000 and -5000, the texts' example.
    """
    rises = neuron(x[..., None], np.array([STEEPNESS]), -STEEPNESS * left)
    falls = neuron(x[..., None], np.array([STEEPNESS]), -STEEPNESS * right)
    return height * (rises - falls)


def step_sum(curve, count: int, x: np.ndarray) -> np.ndarray:
    """`count` bumps of equal width over INTERVAL, each as high as `curve` at its middle: 2 * count neurons."""
    edges = np.linspace(*INTERVAL, count + 1)
    middles = (edges[:-1] + edges[1:]) / 2
    return sum(bump(x, left, right, curve(middle))
               for left, right, middle in zip(edges[:-1], edges[1:], middles, strict=True))


def bound(count):
    """The most a sum of `count` bumps can miss sin by: half a bump's width (10 / count) times sin's steepest slope 1.

    Holds away from the bumps' edges; on an edge the sum is the mean of two heights, each within the bound.
    """
    return (INTERVAL[1] - INTERVAL[0]) / 2 / np.asarray(count)


def largest_error(approximation: np.ndarray, target: np.ndarray) -> float:
    return float(np.max(np.abs(approximation - target)))


# ---------------------------------------------------------------- a trained network


def build_network(hidden: int):
    """x (batch, 1) -> one hidden tanh layer -> y (batch, 1); x is scaled to [-1, 1] first.

    Each hidden unit bends where its weighted sum is 0, at x = -10 bias / weight. Keras's default
    initialisation (small weights, zero biases) puts every bend at x = 0 and training takes long to spread
    them out; weights ~ N(0, 3) and biases ~ U(-3, 3) spread them over the interval from the start.
    """
    import keras

    x = keras.Input(shape=(1,), name="x")
    scaled = keras.layers.Rescaling(1 / INTERVAL[1], name="scale")(x)
    features = keras.layers.Dense(hidden, activation="tanh", name="hidden",
                                  kernel_initializer=keras.initializers.RandomNormal(stddev=3.0),
                                  bias_initializer=keras.initializers.RandomUniform(-3.0, 3.0))(scaled)
    y = keras.layers.Dense(1, name="y")(features)
    return keras.Model(x, y, name="one_hidden_layer")


def train_network(curve, hidden: int, epochs: int, seed: int):
    """The network after `epochs` of Adam on TRAINING_POINTS random samples of `curve`, and the final loss."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(*INTERVAL, size=(TRAINING_POINTS, 1)).astype("float32")
    model = build_network(hidden)
    # One compiled call per epoch (steps_per_execution): Keras's per-step overhead would dwarf so small a model.
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mean_squared_error",
                  steps_per_execution=TRAINING_POINTS // BATCH)
    history = model.fit(x, curve(x), batch_size=BATCH, epochs=epochs, verbose=0)
    return model, history.history["loss"]


# ---------------------------------------------------------------- figures


def activations_figure() -> Figure:
    z = np.linspace(-4, 4, 401)
    figure = Figure(figsize=(10, 2.6))
    for index, (name, activation) in enumerate(ACTIVATIONS.items()):
        axis = figure.add_subplot(1, 4, index + 1)
        axis.plot(z, activation(z))
        axis.axhline(0, color="grey", linewidth=0.5)
        axis.axvline(0, color="grey", linewidth=0.5)
        axis.set_title(name)
        axis.set_xlabel("z = w . x + b")
    figure.axes[0].set_ylabel("output")
    figure.suptitle("A neuron's activation of its weighted sum z")
    return figure


def steps_figure(curve, x: np.ndarray, counts: tuple[int, ...], errors: dict[int, float]) -> Figure:
    figure = Figure(figsize=(12, 3.4))
    pair = figure.add_subplot(1, 3, 1)
    pair.plot(x, sigmoid(STEEPNESS * x + 5000), label="sigmoid(1000 x + 5000)")
    pair.plot(x, sigmoid(STEEPNESS * x - 5000), "--", label="sigmoid(1000 x - 5000)")
    pair.plot(x, bump(x, -5, 5, 0.5), label="0.5 x their difference")
    pair.set_title("Two neurons make a bump")
    pair.legend(fontsize=7, loc="center left")
    sums = figure.add_subplot(1, 3, 2)
    sums.plot(x, curve(x), color="black", linewidth=2, label="sin x")
    shown = counts if len(counts) <= 3 else counts[1::max(1, len(counts) // 3)][:3]
    for count in shown:
        sums.plot(x, step_sum(curve, count, x), linewidth=1, label=f"N = {count} bumps")
    sums.set_title("Sums of bumps draw sin x")
    sums.legend(fontsize=7, loc="lower left")
    falling = figure.add_subplot(1, 3, 3)
    counts_measured = np.array(list(errors))
    falling.plot(counts_measured, list(errors.values()), "o-", label="measured")
    falling.plot(counts_measured, np.minimum(2, bound(counts_measured)), "--", color="grey",
                 label="half a bump's width x steepest slope")
    falling.set_xscale("log", base=2)
    falling.set_xticks(counts_measured, [str(count) for count in counts_measured])
    falling.minorticks_off()
    falling.legend(fontsize=7)
    falling.set_xlabel("bumps N (2N hidden neurons)")
    falling.set_ylabel("largest error on [-10, 10]")
    falling.set_title("The error falls as N grows")
    return figure


def trained_figure(curve, x, network_y, bumps_y, hidden: int, losses: list[float]) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axis = figure.add_subplot(1, 2, 1)
    axis.plot(x, curve(x), color="black", linewidth=2, label="sin x")
    axis.plot(x, network_y, label=f"trained, {hidden} tanh units")
    axis.plot(x, bumps_y, linewidth=1, label=f"{hidden // 2} bumps ({hidden} sigmoids)")
    axis.legend(fontsize=7, loc="lower left")
    axis.set_title("Same number of hidden neurons")
    loss = figure.add_subplot(1, 2, 2)
    loss.semilogy(np.arange(1, len(losses) + 1), losses)
    loss.set_xlabel("epoch")
    loss.set_ylabel("mean squared error (training)")
    loss.set_title("Training the network")
    return figure


# ---------------------------------------------------------------- the lesson


def run(config: NeuronConfig) -> tuple[list[Path], list[str]]:
    out = output_folder(config.out)
    curve = np.sin
    x = np.linspace(*INTERVAL, GRID)[1:-1]  # the ends lie on the outer bumps' edges, where they are half high
    errors = {count: largest_error(step_sum(curve, count, x), curve(x)) for count in config.steps}

    started = time.perf_counter()
    model, losses = train_network(curve, config.hidden, config.epochs, config.seed)
    seconds = time.perf_counter() - started
    network_y = model.predict(x[:, None].astype("float32"), verbose=0)[:, 0]
    bumps_y = step_sum(curve, max(1, config.hidden // 2), x)

    lines = [
        "one neuron, weights (0.5, -1), bias 0.2, input (1, 1): "
        + ", ".join(f"{name} {neuron(np.ones(2), np.array([0.5, -1.0]), 0.2, f):.3f}"
                    for name, f in ACTIVATIONS.items()),
        "bumps N -> largest error on [-10, 10]: " + ", ".join(f"{count}: {error:.3f}"
                                                          for count, error in errors.items()),
        f"trained network ({config.hidden} tanh units, {config.epochs} epochs, {seconds:.1f} s): "
        f"largest error {largest_error(network_y, curve(x)):.3f}; "
        f"{config.hidden // 2} bumps with as many neurons: {largest_error(bumps_y, curve(x)):.3f}",
    ]
    figures = {
        "activations.png": activations_figure(),
        "steps.png": steps_figure(curve, x, config.steps, errors),
        "trained.png": trained_figure(curve, x, network_y, bumps_y, config.hidden, losses),
    }
    return save_figures(figures, out), lines


main = lesson_main(run, parse_args)


if __name__ == "__main__":
    sys.exit(main())
