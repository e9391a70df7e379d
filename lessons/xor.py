"""Lesson 3: XOR, the function one layer of neurons cannot learn, learned by NeuralNetwork([2, 2, 1]).

    python -m lessons.xor                           # figures in runs/lessons/xor/
    python -m lessons.xor --layers 2 4 3 1 --seeds 50 --epochs 20

XOR is 1 when exactly one of its two inputs is 1. No straight line separates
(0, 1) and (1, 0) from (0, 0) and (1, 1), so a network without a hidden layer,
whose output is high on one side of a line, always gets one of the four wrong.
One hidden layer of two tanh units bends the boundary and solves it.

This is the texts' NeuralNetwork: any list of layer sizes, tanh units, a bias
unit (always 1) added to every layer's input, weights drawn uniformly from
(-1, 1), per-sample stochastic gradient descent on the error 1/2 (y - t)^2 at
learning rate 0.1, 1,000 single-sample steps an epoch, 10 epochs. One fix: the
text's tanh_derivative(x) = (1 + tanh(x)) (1 - tanh(x)) is applied to a unit's
output y = tanh(z), which gives the slope at tanh(y) instead of at z; the slope
of tanh at z is 1 - y^2. The lesson prints what the text's version does.

numpy does the updates by hand; the same network in Keras (functional, SGD with
batch size 1, the same initial weights and the same order of samples) makes the
same updates, which the lesson checks. Over many seeds, it counts how often
[2, 2, 1] gets stuck.

Figure: regions.png, each network's output over the plane, the four XOR points on it.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from harness.errors import UserError
from lessons import lesson_main, lesson_parser, output_folder, save_figures
from harness.cli import count_up_to, positive_int

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
TARGETS = np.array([0, 1, 1, 0], float)
LEARNING_RATE = 0.1
STEPS_PER_EPOCH = 1000  # single-sample steps, each on one of the four inputs drawn at random
EPOCHS = 10
SHOWN = ([2, 2, 1], [2, 4, 1], [2, 4, 3, 1], [2, 1])  # the figure's networks, besides --layers
# Keras holds the learning rate in a float32 variable: 0.1 becomes 0.10000000149. The numpy network is
# compared with Keras at that same rate, so that the two can agree to rounding.
KERAS_LEARNING_RATE = float(np.float32(LEARNING_RATE))
LARGEST_LAYER = 1000  # units; more would only make the lesson slow


@dataclass(frozen=True)
class XorConfig:
    seed: int
    out: Path
    layers: tuple[int, ...]
    seeds: int  # seeds tried when counting how often a network gets stuck
    epochs: int  # of STEPS_PER_EPOCH single-sample steps


def parse_args(argv: list[str] | None) -> XorConfig:
    parser = lesson_parser("xor", "NeuralNetwork([2, 2, 1]) learns XOR by per-sample gradient descent; one layer "
                                  "cannot.")
    parser.add_argument("--layers", type=count_up_to(LARGEST_LAYER), nargs="+", default=[2, 2, 1], metavar="UNITS",
                        help="units per layer, input first: 2 inputs, any hidden layers, 1 output")
    parser.add_argument("--seeds", type=positive_int, default=20,
                        help="seeds (0, 1, ...) tried when counting how often a network gets stuck")
    parser.add_argument("--epochs", type=count_up_to(1000), default=EPOCHS,
                        help=f"epochs of {STEPS_PER_EPOCH:,} single-sample steps (the text's: {EPOCHS})")
    args = parser.parse_args(argv)
    if len(args.layers) < 2 or args.layers[0] != 2 or args.layers[-1] != 1:
        raise UserError(f"--layers {' '.join(map(str, args.layers))} cannot compute XOR; give 2 inputs first and "
                        f"1 output last, e.g. --layers 2 2 1.")
    return XorConfig(args.seed, args.out, tuple(args.layers), args.seeds, args.epochs)


# ---------------------------------------------------------------- the texts' network, by hand


def with_bias(values: np.ndarray) -> np.ndarray:
    """(..., n) -> (..., n + 1): the bias unit, always 1, appended, so a layer's bias is one more weight."""
    return np.concatenate([values, np.ones(values.shape[:-1] + (1,))], axis=-1)


def tanh_slope(output: np.ndarray) -> np.ndarray:
    """d tanh(z) / dz written through the unit's output y = tanh(z): 1 - y^2."""
    return 1 - output ** 2


def texts_tanh_slope(output: np.ndarray) -> np.ndarray:
    """The text's tanh_derivative applied to y = tanh(z): (1 + tanh(y)) (1 - tanh(y)), the slope at y, not at z."""
    return (1 + np.tanh(output)) * (1 - np.tanh(output))


class NeuralNetwork:
    """The texts' network: `layers` sizes, tanh units, weights[i] of shape (layers[i] + 1, layers[i + 1])."""

    def __init__(self, layers, rng: np.random.Generator, slope=tanh_slope):
        self.weights = [rng.uniform(-1, 1, (inputs + 1, outputs))
                        for inputs, outputs in zip(layers, layers[1:], strict=False)]
        self.slope = slope

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output for inputs x (..., 2), the input itself first."""
        outputs = [x]
        for weights in self.weights:
            outputs.append(np.tanh(with_bias(outputs[-1]) @ weights))
        return outputs

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.activations(x)[-1][..., 0]

    def step(self, x: np.ndarray, target: float, learning_rate: float) -> None:
        """One gradient-descent step on one sample x (2,): backpropagate delta = dE/dz layer by layer."""
        outputs = self.activations(x)
        delta = (outputs[-1] - target) * self.slope(outputs[-1])  # (1,)
        for layer in reversed(range(len(self.weights))):
            below = outputs[layer]  # the layer's inputs, (units below,)
            gradient = np.outer(with_bias(below), delta)  # same shape as self.weights[layer]
            delta = (self.weights[layer][:-1] @ delta) * self.slope(below)  # the bias unit sends nothing back
            self.weights[layer] -= learning_rate * gradient

    def fit(self, order: np.ndarray, learning_rate: float = LEARNING_RATE) -> None:
        """One step per index in `order` (which of the four inputs each step sees)."""
        for index in order:
            self.step(INPUTS[index], TARGETS[index], learning_rate)


def sample_order(rng: np.random.Generator, epochs: int = EPOCHS) -> np.ndarray:
    """Which input each of the epochs x STEPS_PER_EPOCH steps sees: drawn uniformly, like the text's randint."""
    return rng.integers(len(INPUTS), size=epochs * STEPS_PER_EPOCH)


def trained(layers, seed: int, slope=tanh_slope, learning_rate: float = LEARNING_RATE,
            epochs: int = EPOCHS) -> NeuralNetwork:
    """A network trained as the text trains it; `seed` draws its weights, then its order of samples."""
    rng = np.random.default_rng(seed)
    network = NeuralNetwork(layers, rng, slope)
    network.fit(sample_order(rng, epochs), learning_rate)
    return network


def solves(network: NeuralNetwork) -> bool:
    """Whether every one of the four outputs is nearer its target (0 or 1) than the other."""
    return bool(np.all(np.abs(network.predict(INPUTS) - TARGETS) < 0.5))


def solved_count(layers, seeds: int, slope=tanh_slope, epochs: int = EPOCHS) -> int:
    """How many of the seeds 0 .. seeds - 1 train a network that solves XOR."""
    return sum(solves(trained(layers, seed, slope, epochs=epochs)) for seed in range(seeds))


# ---------------------------------------------------------------- the same network in Keras


def keras_network(layers, initial: list[np.ndarray]):
    """A functional Keras model of the same layers (float64), holding `initial` weights (bias as the last row)."""
    import keras

    x = keras.Input(shape=(layers[0],), name="x", dtype="float64")
    y = x
    for number, units in enumerate(layers[1:], start=1):
        name = "output" if number == len(layers) - 1 else f"hidden{number}"
        y = keras.layers.Dense(units, activation="tanh", name=name, dtype="float64")(y)
    model = keras.Model(x, y, name=f"xor_{'_'.join(map(str, layers))}")
    for layer, weights in zip(model.layers[1:], initial, strict=True):
        layer.set_weights([weights[:-1], weights[-1]])
    return model


def keras_trained_weights(layers, seed: int, epochs: int = EPOCHS) -> list[np.ndarray]:
    """Weights after Keras's SGD (batch 1) from the numpy network's initial weights, on its order of samples."""
    import keras

    rng = np.random.default_rng(seed)
    initial = NeuralNetwork(layers, rng).weights  # the same draws, in the same order, as trained(layers, seed)
    order = sample_order(rng, epochs)
    model = keras_network(layers, initial)

    class HalfSquaredError(keras.losses.Loss):
        """1/2 (y - t)^2, the text's error (Keras's mean squared error would double every step)."""

        def call(self, target, output):
            return 0.5 * keras.ops.sum((output - target) ** 2, axis=-1)

    # A Loss computes in float32 unless told otherwise, which would round every gradient.
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=HalfSquaredError(dtype="float64"),
                  steps_per_execution=STEPS_PER_EPOCH)  # one compiled call an epoch, not one per sample
    model.fit(INPUTS[order], TARGETS[order, None], batch_size=1, epochs=1, shuffle=False, verbose=0)
    return [np.vstack(layer.get_weights()) for layer in model.layers[1:]]  # kernel rows, then the bias row


# ---------------------------------------------------------------- the figure


def regions_figure(networks: dict[str, NeuralNetwork]) -> Figure:
    side = np.linspace(-0.5, 1.5, 201)
    plane = np.stack(np.meshgrid(side, side), axis=-1)  # (201, 201, 2)
    figure = Figure(figsize=(3.2 * len(networks), 3.4))
    for index, (title, network) in enumerate(networks.items()):
        axis = figure.add_subplot(1, len(networks), index + 1)
        shown = axis.contourf(side, side, network.predict(plane), levels=np.linspace(-1, 1, 21), cmap="RdBu_r")
        axis.contour(side, side, network.predict(plane), levels=[0.5], colors="black", linewidths=1)
        axis.scatter(INPUTS[:, 0], INPUTS[:, 1], c=TARGETS, cmap="RdBu_r", vmin=-1, vmax=1, s=80,
                     edgecolors="black")
        axis.set_title(title, fontsize=9)
        axis.set_aspect("equal")
    figure.subplots_adjust(wspace=0.35)
    figure.colorbar(shown, ax=figure.axes, shrink=0.8, label="output (black line: 0.5)")
    return figure


# ---------------------------------------------------------------- the lesson


def run(config: XorConfig) -> tuple[list[Path], list[str]]:
    out = output_folder(config.out)
    layers = list(config.layers)
    epochs = config.epochs
    network = trained(layers, config.seed, epochs=epochs)
    outputs = network.predict(INPUTS)
    keras_weights = keras_trained_weights(layers, config.seed, epochs)
    same_rate = trained(layers, config.seed, learning_rate=KERAS_LEARNING_RATE, epochs=epochs)
    keras_difference = max(float(np.max(np.abs(a - b))) for a, b in zip(same_rate.weights, keras_weights, strict=True))
    texts = trained(layers, config.seed, texts_tanh_slope, epochs=epochs)

    shown = [layers] + [list(sizes) for sizes in SHOWN if list(sizes) != layers]
    networks = {}
    for sizes in shown:
        candidate = network if sizes == layers else trained(sizes, config.seed, epochs=epochs)
        verdict = "solved" if solves(candidate) else "not solved"
        networks[f"{sizes}: {verdict}\n" + " ".join(f"{y:.2f}" for y in candidate.predict(INPUTS))] = candidate

    counted = {"[2, 2, 1]": solved_count([2, 2, 1], config.seeds, epochs=epochs),
               "[2, 1]": solved_count([2, 1], config.seeds, epochs=epochs),
               "[2, 2, 1] with the text's derivative": solved_count([2, 2, 1], config.seeds, texts_tanh_slope, epochs)}
    lines = [
        f"{layers}, seed {config.seed}, {epochs} x {STEPS_PER_EPOCH:,} steps: outputs on (0,0) (0,1) (1,0) (1,1): "
        + " ".join(f"{y:.3f}" for y in outputs) + f" ({'solved' if solves(network) else 'not solved'})",
        f"Keras, SGD batch 1 from the same weights on the same samples: largest weight difference "
        f"{keras_difference:.1e} (both at Keras's float32 learning rate {KERAS_LEARNING_RATE:.11f})",
        "the text's tanh_derivative (slope at tanh(y), not at z): outputs "
        + " ".join(f"{y:.3f}" for y in texts.predict(INPUTS)),
        f"solved over seeds 0-{config.seeds - 1}: " + ", ".join(f"{name} {count} of {config.seeds}"
                                                                for name, count in counted.items()),
    ]
    return save_figures({"regions.png": regions_figure(networks)}, out), lines


main = lesson_main(run, parse_args)


if __name__ == "__main__":
    sys.exit(main())
