"""From one neuron to a convnet: the founding texts' worked examples, runnable, drawn and checked.

    python -m lessons.neuron     # a neuron, activations, steps from sigmoid pairs, a net fitting sin
    python -m lessons.pixels     # the 12-3-2 network telling 0 from 1 in 4x3 pixels, backprop by hand
    python -m lessons.xor        # NeuralNetwork([2, 2, 1]) learning XOR, and why one layer cannot
    python -m lessons.fitting    # under- and over-fitting, learning rate, batch size, on 1,000 MNIST images
    python -m lessons.hidden     # what the 784-512-256-10 MLP's hidden units respond to, and how readable

Each lesson prints what it found in a few lines and writes its figures as PNG
files to --out (default runs/lessons/<name>/). This module holds what they share:
the command line (--seed, --out) and the output folder.
"""

import os
from pathlib import Path

from harness.errors import UserError
from harness.cli import ArgumentParser, entry_point, seed_value

RUNS = Path("runs") / "lessons"  # relative to where the lesson is run, like train.py's runs/


def lesson_parser(name: str, description: str) -> ArgumentParser:
    """A parser with the two flags every lesson takes; errors are one line and exit status 2."""
    parser = ArgumentParser(prog=f"python -m lessons.{name}", description=description)
    parser.add_argument("--seed", type=seed_value, default=0, help="seed for every random draw of the lesson")
    parser.add_argument("--out", type=Path, default=RUNS / name,
                        help="folder for the figures (created if missing; only the lesson's named PNGs are written)")
    return parser


def add_digit_source(parser: ArgumentParser) -> None:
    """--data and --data-dir, for a lesson that trains on 28x28 digits: real MNIST, or seven-segment digits."""
    parser.add_argument("--data", choices=("mnist", "synthetic"), default="mnist",
                        help="real MNIST, or the project's seven-segment digits (no files needed)")
    parser.add_argument("--data-dir", type=Path, help="folder with the MNIST files "
                                                      "(default: env DIGITS_DATA_DIR or the Keras cache)")


def load_digits(data: str, data_dir: Path, seed: int, **synthetic):
    """The data.Dataset a lesson's --data names: MNIST from data_dir, or seven-segment 28x28 digits drawn with
    `seed` (`synthetic`: load_synthetic's counts)."""
    if data == "mnist":
        from data.mnist import load_mnist

        return load_mnist(data_dir)
    from data.synthetic import load_synthetic

    return load_synthetic((28, 28, 1), seed=seed, **synthetic)


def output_folder(out: Path) -> Path:
    """`out`, created if missing; UserError if it cannot hold our files. Checked before any work starts."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; pass a folder for the figures.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the folder --out {out} ({error.strerror}); pass a writable folder.") from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError(f"cannot write into --out {out}; pass a writable folder.")
    return out


def save_figures(figures: dict, out: Path) -> list[Path]:
    """Save {file name: matplotlib figure} into `out` as PNGs, each whole or not at all; returns the paths.

    --out may be a folder of the user's: a file there of one of these names that the project did not write
    (harness/atomic.py keeps the record) is refused, before anything is written, not replaced.
    """
    # Imported here, not at the top: it chooses the Agg backend before pyplot loads, and it loads Keras.
    from harness import atomic
    from analysis.drawing import save_figure

    paths = [out / name for name in figures]
    for path in paths:
        atomic.check_replaceable(path, "another --out")
    for path, figure in zip(paths, figures.values(), strict=True):
        save_figure(figure, path, "another --out")
    return paths


def lesson_main(run, parse_args):
    """A lesson's main(argv) -> status: parse, run, print the findings and then the figures written. Errors
    are one line (harness.cli.entry_point). run(config) returns (figure paths, lines to print)."""

    @entry_point
    def main(argv: list[str] | None = None) -> int:
        written, lines = run(parse_args(argv))
        for line in [*lines, *map(str, written)]:
            print(line)
        return 0

    return main
