"""Read the digit, or with a reader the whole number, in photos and scans, with probabilities.

    python predict.py photo.png                      # photo.png: 7 (0.97), 1 (0.02), 9 (0.00)
                                                     # (runs/convnet_handwriting if trained, else runs/convnet_mnist)
    python predict.py bus.jpg --run-dir runs/reader_svhn-numbers    # bus.jpg: 23 (0.97)
    python predict.py scan.jpg bus.jpg --json        # one JSON object per line, for scripts
    python predict.py photo.png --show               # also photo_seen.png: what the model saw, and its answer
    python predict.py door.jpg --run-dir runs/convnet_svhn

Any PNG or JPEG (and other formats Pillow reads) from 8x8 pixels to 50
megapixels, colour or grey, is converted the way the chosen model's training
images were prepared (see data/photos.py): for a 28x28x1 model white-on-black
handwriting, scaled to 20 pixels and centred by mass like MNIST; for a 32x32x3
model an RGB square resized to 32x32. A reader (train.py --model reader) gets
the photo, roughly cropped around the number, fitted to its input with the
proportions kept (data/photos.py), and prints the number read, leading zeros
kept, and the reading's probability. A file that cannot be used gets one line
("error: FILE: reason", or {"file": ..., "error": ...} with --json) and the
others are still read; the exit status is then 2.
"""

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Light imports only: a LiteRT run loads no TensorFlow, Keras, h5py or scipy.io (tests/test_predict_reader.py
# checks it); Keras (seconds to import) loads when a Keras model is asked for.
from data import UserError
from data.photos import PhotoError, read_image
from harness import kinds, runs
from harness.cli import ArgumentParser, entry_point
from serving.litert import LiteModel

SHOWN_SUFFIX = "_seen.png"
RUNTIMES = ("auto", "litert", "keras")


@dataclass(frozen=True)
class PredictConfig:
    images: tuple[Path, ...]
    model_file: Path  # model.keras of --run-dir, or --model-file
    litert_file: Path | None  # the run's float32 LiteRT file, if the LiteRT runtime is to be used
    as_json: bool
    show: bool
    show_dir: Path


def parse_args(argv: list[str] | None) -> PredictConfig:
    parser = ArgumentParser(description="Print the three most likely digits, with probabilities, for each image file "
                                        "(with a number reader: the number read and its probability).")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE",
                        help="PNG or JPEG files, 8x8 pixels to 50 megapixels")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run-dir", type=Path, default=runs.default_digit_run(),
                        help=f"run directory written by train.py (default: "
                             f"{runs.default_run_dir('convnet', 'handwriting')} where it has been trained, else "
                             f"{runs.default_run_dir('convnet', 'mnist')})")
    source.add_argument("--model-file", type=Path, help="any .keras digit model instead of a run")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help=f"litert: the run's {runs.TFLITE_FLOAT32_FILE}, without importing TensorFlow (fast to "
                             f"start); keras: its {runs.MODEL_FILE}; auto: litert where the run has that file and no "
                             f"--show is asked")
    parser.add_argument("--json", action="store_true",
                        help='one JSON object per image on stdout: {"file": ..., "top": [[digit, probability], ...]} '
                             '(a reader: {"file": ..., "number": "23", "probability": p, "digits": [[digit, '
                             'probability], ...]}) or {"file": ..., "error": ...}')
    parser.add_argument("--show", action="store_true",
                        help=f"also save <image name>{SHOWN_SUFFIX}: the image, what the model saw and its answer "
                             f"(drawn from the Keras model)")
    parser.add_argument("--show-dir", type=Path, default=Path("."), help="folder for the --show pictures")
    args = parser.parse_args(argv)
    litert_file = None if args.model_file else Path(args.run_dir) / runs.TFLITE_FLOAT32_FILE
    if args.runtime == "litert":
        if args.model_file or args.show:
            parser.error("--runtime litert runs a run's LiteRT file: give --run-dir, not --model-file, and no --show")
        if not litert_file.is_file():
            raise UserError(f"no {litert_file}; train the run again, or rewrite its serving files with "
                            f"python -m serving.export --run-dir {args.run_dir}.")
    elif args.runtime == "keras" or args.show or litert_file is None or not litert_file.is_file():
        litert_file = None
    return PredictConfig(
        images=tuple(args.images),
        model_file=args.model_file or Path(args.run_dir) / runs.MODEL_FILE,
        litert_file=litert_file,
        as_json=args.json,
        show=args.show,
        show_dir=args.show_dir,
    )


class KerasRunner:
    """A model.keras behind the same face as a LiteRT file (serving.litert.LiteModel): uint8 pixels in, the
    serving signature's outputs (serving/export.py) out."""

    def __init__(self, model_file: Path):
        from harness.quiet_keras import keras  # noqa: F401 (first: Keras loads here, without TensorFlow's chatter)
        from analysis.introspection import classifier_shapes
        from harness import model_files

        model_file = Path(model_file)
        if not model_file.is_file():
            raise UserError(f"no model file {model_file}; train one with python train.py, or pass --run-dir "
                            f"or --model-file.")
        self.model = model_files.load_model(model_file)
        classifier_shapes(self.model, model_file)  # one batch of images in, one row of class probabilities out
        self.input_shape = tuple(self.model.input_shape[1:])
        self.kind = kinds.of_model(self.model, model_file)
        self.serve = self.kind.serving_function(self.model)

    def __call__(self, pixels: np.ndarray) -> dict:
        return {name: np.asarray(value) for name, value in self.serve(pixels).items()}

    def column_width(self) -> float:
        """A reader's input pixels per output column."""
        return self.model.input_shape[2] / self.model.output_shape[1]


def load_runner(config: PredictConfig):
    """The model that reads the photos: the run's LiteRT file where chosen, else its Keras model."""
    return LiteModel(config.litert_file) if config.litert_file else KerasRunner(config.model_file)


def read_numbers(run_dir: Path, image_paths) -> list[str]:
    """The numbers a reader run reads in image files, in order, with its Keras model: a program's way to
    use predict.py.

    Raises UserError if the run holds no number reader, PhotoError for a file that cannot be read.
    """
    runner = KerasRunner(Path(run_dir) / runs.MODEL_FILE)
    if runner.kind is not kinds.READER:
        raise UserError(f"{run_dir} holds a digit classifier, not a number reader (train.py --model reader).")
    return [runner.kind.answer(runner, read_image(path))[1]["number"] for path in image_paths]




def shown_path(image_path: Path, show_dir: Path, taken: set[str]) -> Path:
    """<show_dir>/<stem>_seen.png, numbered if taken in this call; never an input file itself."""
    candidate = Path(show_dir) / f"{image_path.stem}{SHOWN_SUFFIX}"
    number = 2
    while os.path.realpath(candidate) in taken:
        candidate = Path(show_dir) / f"{image_path.stem}_{number}{SHOWN_SUFFIX}"
        number += 1
    return candidate


def shown_paths(config: PredictConfig) -> list[Path]:
    """The --show picture of each image, in --show-dir (created); a UserError before any is drawn if one of them
    is a file this project did not write (harness/atomic.py)."""
    from harness import atomic

    config.show_dir.mkdir(parents=True, exist_ok=True)
    # Inputs are never overwritten: their paths count as taken from the start. (os.path.realpath, unlike
    # Path.resolve, does not raise on a symbolic link that loops; read_image refuses that file.)
    taken = {os.path.realpath(path) for path in config.images}
    targets = []
    for path in config.images:
        targets.append(shown_path(path, config.show_dir, taken))
        taken.add(os.path.realpath(targets[-1]))
        atomic.check_replaceable(targets[-1], "another --show-dir")
    return targets


def printable(path: Path) -> str:
    """The path as text for one line of output: quoted and escaped if it holds a newline or other control."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def predict(config: PredictConfig, out=None, err=None) -> int:
    """Print one line per image to `out` (errors to `err`); 0 if every image was read, 2 if any was not."""
    out, err = out or sys.stdout, err or sys.stderr
    runner = load_runner(config)
    answer_for = runner.kind.answer  # what a model of its kind makes of one photo: the pixels it saw, its answer
    targets = shown_paths(config) if config.show else []
    failed = 0
    for index, path in enumerate(config.images):
        try:
            original = read_image(path)
            pixels, answer = answer_for(runner, original)  # pixels: uint8 (H, W, C), what the model saw
        except PhotoError as error:
            failed += 1
            if config.as_json:
                print(json.dumps({"file": str(path), "error": str(error)}), file=out, flush=True)
            else:
                print(f"error: {printable(path)}: {error}", file=err, flush=True)
            continue
        if config.as_json:
            print(json.dumps({"file": str(path), **answer["json"]}), file=out, flush=True)
        else:
            print(f"{printable(path)}: {answer['text']}", file=out, flush=True)
        if config.show:
            from analysis.drawing import results, save_figure  # matplotlib loads only when a picture is asked for

            photo = np.asarray(original.convert("RGB"))
            if "number" in answer:  # where each digit was read: the middle of its column, in input pixels
                figure = results.number_seen(photo, pixels, answer["number"],
                                             (np.asarray(answer["columns"]) + 0.5) * runner.column_width(), path.name,
                                             answer["region"])
            else:
                figure = results.seen_by_model(photo, pixels, answer["probabilities"], path.name)
            save_figure(figure, targets[index], "another --show-dir")
    return 2 if failed else 0


@entry_point
def main(argv: list[str] | None = None) -> int:
    return predict(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
