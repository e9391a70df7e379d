"""Lesson 5: are hidden units "features humans cannot read"? Open the 784-512-256-10 MLP and look.

    python -m lessons.hidden                        # figures in runs/lessons/hidden/
    python -m lessons.hidden --data synthetic --train-images 500 --epochs 1   # no MNIST needed

The texts say a network's hidden units are features humans cannot read. This
lesson trains the project's MLP (models/mlp.py, the texts' 784-512-256-10) for
a few epochs with its recipe, then reads its units two ways: a first-layer unit
multiplies the 784 pixels by its weights, so its weights drawn as a 28x28
picture are the template it matches; and every unit can be shown the test
images that excite it most. It measures how readable the units are: the share
of a unit's top images that show one digit, for dense1 and dense2, against
what the same count of random images would give. The convnet's answer, edges
then strokes then digit parts, is `python visualize.py --all` on a trained run.

Figures: templates.png (dense1's weights as pictures), top_images_dense1.png
and top_images_dense2.png (each unit's most exciting test images).
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data import default_data_dir
from lessons import (
    add_digit_source,
    lesson_main,
    lesson_parser,
    load_digits,
    output_folder,
    save_figures,
)
from harness.cli import positive_int

SHOWN_UNITS = 16  # units per figure, drawn at random among those that respond at all
TOP_IMAGES = 9  # test images per unit
RARE_PIXEL = 0.01  # pixels inked in fewer training images keep their random weights; drawn grey (as visualize.py)


@dataclass(frozen=True)
class HiddenConfig:
    seed: int
    out: Path
    data: str  # "mnist" or "synthetic"
    data_dir: Path
    train_images: int  # at most; all of the split by default
    epochs: int


def parse_args(argv: list[str] | None) -> HiddenConfig:
    parser = lesson_parser("hidden", "What the 784-512-256-10 MLP's hidden units respond to, and how readable they "
                                     "are.")
    add_digit_source(parser)
    parser.add_argument("--train-images", type=positive_int, default=60000,
                        help="training images used (at most the split's)")
    parser.add_argument("--epochs", type=positive_int, default=2,
                        help="epochs of the MLP's recipe (train.py --model mlp trains 10)")
    args = parser.parse_args(argv)
    return HiddenConfig(args.seed, args.out, args.data, args.data_dir or default_data_dir(), args.train_images,
                        args.epochs)


def train_mlp(digits, config: HiddenConfig):
    """The registry's MLP trained with its recipe (Adam, one-cycle, batch 1024) for config.epochs; and its accuracy."""
    import keras

    from models import MODELS
    from models.training import compile_for_training

    keras.utils.set_random_seed(config.seed)
    recipe = MODELS["mlp"]
    images = digits.x_train[:config.train_images].astype("float32") / 255  # (N, 28, 28, 1) in [0, 1]
    labels = digits.y_train[:config.train_images]
    model = recipe.build(digits.input_shape, digits.num_classes)
    compile_for_training(model, recipe.learning_rate, config.epochs * -(-len(labels) // recipe.batch_size))
    model.fit(images, labels, batch_size=recipe.batch_size, epochs=config.epochs, verbose=0)
    accuracy = model.evaluate(digits.x_test.astype("float32") / 255, digits.y_test, batch_size=1000, verbose=0)[1]
    return model, float(accuracy)


def top_images(activations: np.ndarray, k: int) -> np.ndarray:
    """(units, k) indices of the k images that excite each unit most, strongest first; activations (N, units)."""
    return np.argsort(-activations, axis=0, kind="stable")[:k].T


def purity(labels: np.ndarray) -> np.ndarray:
    """For each row of digits (units, k): the share of the row that is its most common digit."""
    return np.array([np.bincount(row).max() / len(row) for row in labels])


def run(config: HiddenConfig) -> tuple[list[Path], list[str]]:
    from analysis import drawing, introspection

    out = output_folder(config.out)
    digits = load_digits(config.data, config.data_dir, config.seed, train_count=config.train_images)
    model, accuracy = train_mlp(digits, config)
    test_images = introspection.as_floats(digits.x_test)
    layers = ["dense1", "dense2"]
    activations = dict(zip(layers, introspection.activations(model, test_images, layers), strict=True))
    rng = np.random.default_rng(config.seed)

    widths = [int(np.prod(digits.input_shape))] + [layer.units for layer in model.layers if hasattr(layer, "units")]
    lines = [f"{model.name} {'-'.join(map(str, widths))} on "
             f"{config.data}, {config.epochs} epochs: test accuracy {100 * accuracy:.2f} %"]
    figures = {}
    for layer in layers:
        responding = np.flatnonzero(activations[layer].max(axis=0) > 0)  # ReLU units that never fire show nothing
        best = top_images(activations[layer], TOP_IMAGES)  # (units, k)
        shares = purity(digits.y_test[best[responding]])
        lines.append(f"{layer}: {len(responding)} of {activations[layer].shape[1]} units respond; share of a unit's "
                     f"top {TOP_IMAGES} images showing one digit: median {np.median(shares):.2f}, all {TOP_IMAGES} "
                     f"the same digit for {np.mean(shares == 1):.0%} of units")
        units = sorted(rng.choice(responding, min(SHOWN_UNITS, len(responding)), replace=False).tolist())
        chosen = best[units]  # (shown units, k)
        values = np.take_along_axis(activations[layer][:, units].T, chosen, axis=1)
        figures[f"top_images_{layer}.png"] = drawing.layers.top_images(
            test_images[chosen], values, units, layer, [[int(d) for d in row] for row in digits.y_test[chosen]])
        if layer == "dense1":
            kernel = np.asarray(model.get_layer("dense1").kernel)  # (784, 512): pixel -> unit
            trained = (digits.x_train > 0).any(axis=3).mean(axis=0) >= RARE_PIXEL  # (28, 28)
            figures["templates.png"] = drawing.layers.dense_templates(kernel, digits.input_shape, units, layer,
                                                                      trained)
    random_rows = rng.integers(len(digits.y_test), size=(1000, TOP_IMAGES))
    lines.append(f"random sets of {TOP_IMAGES} test images, for comparison: median share "
                 f"{np.median(purity(digits.y_test[random_rows])):.2f}, all the same digit "
                 f"{np.mean(purity(digits.y_test[random_rows]) == 1):.0%}")
    return save_figures(figures, out), lines


main = lesson_main(run, parse_args)


if __name__ == "__main__":
    sys.exit(main())
