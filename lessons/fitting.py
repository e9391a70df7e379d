"""Lesson 4: the trials of fitting, measured on a small slice of real MNIST.

    python -m lessons.fitting                          # 1,000 MNIST training images; figures in runs/lessons/fitting/
    python -m lessons.fitting --data synthetic --train-images 300 --epochs 5   # no MNIST needed

Four questions, one figure each, all on the project's MLP (models/mlp.py) fed
--train-images training images and judged on --validation-images others:

1. capacity.png: a network too small (one hidden layer of 2 units) underfits,
   training and validation loss both stay high; one about right (32 units)
   fits; one too large (256-256, no dropout) over-fits: its training loss keeps
   falling while its validation loss, after a minimum, rises again.
2. learning_rate.png: plain gradient descent (SGD) at rates from too small
   (barely moves) to past the limit, where each step overshoots more than the
   last and the loss diverges.
3. batch_size.png: batches of 1, 32 and the whole slice, by epoch and by second:
   an epoch of single images makes a thousand small steps, an epoch of the
   whole slice one exact one.
4. regularisation.png: the over-fit network again, with dropout, and with four
   times the data: both keep its validation loss from climbing.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from data import default_data_dir
from harness.errors import UserError
from lessons import (
    add_digit_source,
    lesson_main,
    lesson_parser,
    load_digits,
    output_folder,
    save_figures,
)
from harness.cli import positive_int

CAPACITIES = {"too small": (2,), "about right": (32,), "too large": (256, 256)}  # hidden units per layer
LEARNING_RATES = (0.001, 0.01, 0.1, 1.0, 10.0)  # SGD step sizes, each ten times the last
LEARNING_RATE_EPOCHS = 5  # the sweep needs fewer epochs to tell converging from diverging
BATCH_SIZES = (1, 32, None)  # None: the whole slice in one batch
BATCH_EPOCHS = 5
MORE_DATA = 4  # the over-fit network trained on this many times the images
DROPOUT = 0.5  # fraction of each hidden layer's units dropped while training
ADAM_RATE = 1e-3  # every run but the learning-rate sweep: Adam at its usual rate, batches of 32
BATCH = 32


@dataclass(frozen=True)
class FittingConfig:
    seed: int
    out: Path
    data: str  # "mnist" or "synthetic"
    data_dir: Path
    train_images: int
    validation_images: int
    epochs: int  # for the capacity and regularisation questions


def parse_args(argv: list[str] | None) -> FittingConfig:
    parser = lesson_parser("fitting", "Under- and over-fitting, the learning rate, batch size and epochs, on a "
                                      "small slice of MNIST.")
    add_digit_source(parser)
    parser.add_argument("--train-images", type=positive_int, default=1000, help="images every network trains on")
    parser.add_argument("--validation-images", type=positive_int, default=1000,
                        help="other training-split images the networks are judged on")
    parser.add_argument("--epochs", type=positive_int, default=15,
                        help="epochs for the capacity and regularisation questions")
    args = parser.parse_args(argv)
    return FittingConfig(args.seed, args.out, args.data, args.data_dir or default_data_dir(),
                         args.train_images, args.validation_images, args.epochs)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Slices:
    x_train: np.ndarray  # (MORE_DATA * n, 28, 28, 1) float32 in [0, 1]; the first n are "the slice"
    y_train: np.ndarray  # (MORE_DATA * n,) int32
    x_validation: np.ndarray
    y_validation: np.ndarray
    train_images: int  # n


def load_slices(config: FittingConfig) -> Slices:
    """Disjoint random training and validation images from the training split (seeded by --seed)."""
    needed = MORE_DATA * config.train_images + config.validation_images
    digits = load_digits(config.data, config.data_dir, config.seed, train_count=needed, test_count=1)
    if needed > len(digits.y_train):
        raise UserError(f"{MORE_DATA} x --train-images plus --validation-images is {needed:,}, more than the "
                        f"{len(digits.y_train):,} training images; pass smaller counts.")
    order = np.random.default_rng(config.seed).permutation(len(digits.y_train))
    train, validation = order[:MORE_DATA * config.train_images], order[-config.validation_images:]
    pixels = digits.x_train.astype("float32") / 255  # (N, 28, 28, 1) in [0, 1], as models/mlp.py expects
    return Slices(pixels[train], digits.y_train[train], pixels[validation], digits.y_train[validation],
                  config.train_images)


# ---------------------------------------------------------------- training


@dataclass(frozen=True)
class Curves:
    train_loss: list[float]  # mean cross-entropy over each epoch's batches
    validation_loss: list[float]  # after each epoch
    validation_accuracy: list[float]
    seconds: list[float]  # since training began, at the end of each epoch (validation excluded)
    initial_loss: float  # on the training images, before the first step


def train(data: Slices, hidden: tuple[int, ...], seed: int, epochs: int, optimizer=None, batch_size: int = BATCH,
          dropout: float = 0.0, images: int | None = None, measure_start: bool = False) -> Curves:
    """The project's MLP with `hidden` units trained on the first `images` (default: the slice) training images.

    measure_start: also measure the loss before training (else Curves.initial_loss is nan).
    """
    import keras

    from models.mlp import build_mlp

    keras.utils.set_random_seed(seed)
    images = images or data.train_images
    model = build_mlp(data.x_train.shape[1:], 10, hidden_units=hidden, dropout=dropout)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(ADAM_RATE), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"],
                  steps_per_execution=-(-images // batch_size))  # one compiled call an epoch: no per-step overhead
    initial_loss = np.nan
    if measure_start:
        initial_loss = model.evaluate(data.x_train[:images], data.y_train[:images], batch_size=1024, verbose=0)[0]
    clock = epoch_clock()
    history = model.fit(data.x_train[:images], data.y_train[:images], batch_size=batch_size, epochs=epochs,
                        validation_data=(data.x_validation, data.y_validation), callbacks=[clock], verbose=0)
    return Curves(history.history["loss"], history.history["val_loss"], history.history["val_accuracy"],
                  clock.seconds, float(initial_loss))


def epoch_clock():
    """A Keras callback recording the seconds of training (without validation) at the end of each epoch."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.total = [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.ended = time.perf_counter()  # the epoch's last batch ends before validation starts

        def on_epoch_end(self, epoch, logs=None):
            self.total += self.ended - self.started
            self.seconds.append(self.total)

    return Clock()


def diverged(curves: Curves) -> bool:
    """Whether training blew up: a loss that is not a finite number, or a last loss above the untrained one."""
    return not np.all(np.isfinite(curves.train_loss)) or curves.train_loss[-1] > curves.initial_loss


def overfits(curves: Curves) -> bool:
    """Whether validation loss rose after its minimum while training loss kept falling past that epoch."""
    best = int(np.argmin(curves.validation_loss))
    return (best < len(curves.validation_loss) - 1 and curves.validation_loss[-1] > curves.validation_loss[best]
            and curves.train_loss[-1] < curves.train_loss[best])


# ---------------------------------------------------------------- figures


def loss_axes(figure: Figure, columns: int = 2):
    axes = [figure.add_subplot(1, columns, index + 1) for index in range(columns)]
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.set_yscale("log")
    return axes


def capacity_figure(curves: dict[str, Curves]) -> Figure:
    figure = Figure(figsize=(10, 3.6))
    train_axis, validation_axis = loss_axes(figure)
    for (name, run), colour in zip(curves.items(), ("C0", "C1", "C3"), strict=True):
        epochs = np.arange(1, len(run.train_loss) + 1)
        label = f"{name}: {'-'.join(['784', *map(str, CAPACITIES[name]), '10'])}"
        train_axis.plot(epochs, run.train_loss, color=colour, label=label)
        validation_axis.plot(epochs, run.validation_loss, color=colour, label=label)
    train_axis.set_title("Training loss")
    validation_axis.set_title("Validation loss (images not trained on)")
    train_axis.set_ylabel("cross-entropy")
    train_axis.legend(fontsize=8)
    return figure


def learning_rate_figure(curves: dict[float, Curves]) -> Figure:
    figure = Figure(figsize=(6, 3.8))
    axis = figure.add_subplot()
    for rate, run in curves.items():
        losses = [run.initial_loss] + run.train_loss
        shown = np.where(np.isfinite(losses), losses, np.nan)  # an infinite or NaN loss leaves a gap, not a crash
        ending = "diverges" if diverged(run) else f"{losses[-1]:.2f}"
        axis.plot(np.arange(len(losses)), shown, "o-", markersize=3, label=f"rate {rate:g}: {ending}")
    axis.set_yscale("log")
    axis.set_xlabel("epoch (0: untrained)")
    axis.set_ylabel("training loss (cross-entropy)")
    axis.set_title(f"Plain gradient descent (SGD, batch {BATCH}), 784-{CAPACITIES['about right'][0]}-10")
    axis.legend(fontsize=7)
    return figure


def batch_size_figure(curves: dict[str, Curves]) -> Figure:
    figure = Figure(figsize=(10, 3.6))
    by_epoch, by_second = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for name, run in curves.items():
        accuracy = 100 * np.array(run.validation_accuracy)
        by_epoch.plot(np.arange(1, len(accuracy) + 1), accuracy, "o-", markersize=3, label=name)
        by_second.plot(run.seconds, accuracy, "o-", markersize=3, label=name)
    by_epoch.set_xlabel("epoch")
    by_second.set_xlabel("seconds of training (this machine)")
    by_epoch.set_ylabel("validation accuracy (%)")
    by_epoch.set_title("Per epoch")
    by_second.set_title("Per second")
    by_epoch.legend(fontsize=8)
    return figure


def regularisation_figure(curves: dict[str, Curves]) -> Figure:
    figure = Figure(figsize=(10, 3.6))
    train_axis, validation_axis = loss_axes(figure)
    for name, run in curves.items():
        epochs = np.arange(1, len(run.train_loss) + 1)
        train_axis.plot(epochs, run.train_loss, label=name)
        validation_axis.plot(epochs, run.validation_loss, label=name)
    train_axis.set_title("Training loss (dropout's is measured with units dropped)")
    validation_axis.set_title("Validation loss")
    train_axis.legend(fontsize=8)
    return figure


# ---------------------------------------------------------------- the lesson


def run(config: FittingConfig) -> tuple[list[Path], list[str]]:
    import keras

    out = output_folder(config.out)
    data = load_slices(config)
    n = data.train_images
    lines = [f"{config.data}: {n:,} training images, {len(data.y_validation):,} validation images"]

    capacity = {name: train(data, hidden, config.seed, config.epochs) for name, hidden in CAPACITIES.items()}
    for name, run_ in capacity.items():
        best = int(np.argmin(run_.validation_loss))
        lines.append(f"{name} {CAPACITIES[name]}: training loss {run_.train_loss[-1]:.3f}, validation loss lowest "
                     f"{run_.validation_loss[best]:.3f} at epoch {best + 1}, last {run_.validation_loss[-1]:.3f}, "
                     f"validation accuracy {100 * run_.validation_accuracy[-1]:.1f} %")

    rates = {rate: train(data, CAPACITIES["about right"], config.seed, LEARNING_RATE_EPOCHS,
                         optimizer=keras.optimizers.SGD(rate), measure_start=True) for rate in LEARNING_RATES}
    lines.append(f"SGD learning rate -> training loss, untrained -> after {LEARNING_RATE_EPOCHS} epochs: " + ", ".join(
        f"{rate:g}: {run_.initial_loss:.2f} -> {'diverged' if diverged(run_) else f'{run_.train_loss[-1]:.3f}'}"
        for rate, run_ in rates.items()))

    batches = {}
    for size in BATCH_SIZES:
        name = f"batch {size or n:,}" + (" (the whole slice)" if size is None else "")
        batches[name] = train(data, CAPACITIES["about right"], config.seed, BATCH_EPOCHS, batch_size=size or n)
    lines.append(f"batch size -> validation accuracy after 1 and {BATCH_EPOCHS} epochs, seconds of training: "
                 + "; ".join(f"{name.split(' (')[0]}: {100 * run_.validation_accuracy[0]:.1f} %, "
                             f"{100 * run_.validation_accuracy[-1]:.1f} %, {run_.seconds[-1]:.1f} s"
                             for name, run_ in batches.items()))

    large = CAPACITIES["too large"]
    regularised = {"too large": capacity["too large"],
                   f"with dropout {DROPOUT:g}": train(data, large, config.seed, config.epochs, dropout=DROPOUT),
                   f"with {MORE_DATA}x the images": train(data, large, config.seed, config.epochs,
                                                          images=MORE_DATA * n)}
    lines.append("over-fit network, lowest -> last validation loss: " + "; ".join(
        f"{name}: {min(run_.validation_loss):.3f} -> {run_.validation_loss[-1]:.3f}"
        for name, run_ in regularised.items()))

    figures = {
        "capacity.png": capacity_figure(capacity),
        "learning_rate.png": learning_rate_figure(rates),
        "batch_size.png": batch_size_figure(batches),
        "regularisation.png": regularisation_figure(regularised),
    }
    return save_figures(figures, out), lines


main = lesson_main(run, parse_args)


if __name__ == "__main__":
    sys.exit(main())
