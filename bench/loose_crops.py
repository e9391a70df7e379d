"""Loosely cropped numbers: the stand-in's test numbers widened to 1-4 times their width, read as predict.py reads.

    python bench/loose_crops.py                                   # runs/reader_svhn-numbers, float32 LiteRT file
    python bench/loose_crops.py --run-dir runs/reader_svhn-numbers_seed1 --widths 1 2 4

The issue's promise is a photo "roughly cropped around the number, the number
spanning at least a quarter of the width". Each test picture of the SVHN numbers
stand-in (real SVHN test photos, rebuilt; not the official protocol) is widened
by repeating its left and right edge columns until the number spans 1/N of the
width, then read by serving.answers.read_number (a reading that spans little of the
picture is read again on the region around it) and, for comparison, in one pass
on the whole picture (no zoom). Edge-repeated margins are plain stripes, easier
than a real wall or bus front; the figures say how much the zoom recovers, not
how a cluttered photo reads.
"""

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: the project's packages sit at the root

from data import default_data_dir  # noqa: E402
from data.numbers import decode  # noqa: E402
from data.photos import prepare_number  # noqa: E402
from data.svhn_numbers import FOLDER, LABELS  # noqa: E402
from harness import runs  # noqa: E402
from harness.cli import ArgumentParser, entry_point, positive_int  # noqa: E402
from serving import answers  # noqa: E402
from serving.litert import LiteModel  # noqa: E402


@dataclass(frozen=True)
class LooseConfig:
    litert_file: Path
    data_dir: Path
    widths: tuple[int, ...]  # the picture's width over the number's


def parse_args(argv: list[str] | None) -> LooseConfig:
    parser = ArgumentParser(description="Whole-number accuracy of a reader on stand-in test numbers widened 1-4x.")
    parser.add_argument("--run-dir", type=Path, default=runs.default_run_dir("reader", "svhn-numbers"),
                        help="a reader run on svhn-numbers, with its model_float32.tflite")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding svhn-numbers/ "
                        "(env DIGITS_DATA_DIR, else the Keras cache)")
    parser.add_argument("--widths", type=positive_int, nargs="+", default=[1, 2, 3, 4],
                        help="picture widths, in multiples of the number's picture width")
    args = parser.parse_args(argv)
    return LooseConfig(args.run_dir / runs.TFLITE_FLOAT32_FILE, args.data_dir or default_data_dir(),
                       tuple(args.widths))


def widened(picture: np.ndarray, times: int) -> np.ndarray:
    """(h, w, 3) -> (h, times * w, 3): the picture centred, its edge columns repeated on both sides."""
    extra = (times - 1) * picture.shape[1]
    return np.pad(picture, ((0, 0), (extra // 2, extra - extra // 2), (0, 0)), mode="edge")


def run(config: LooseConfig) -> str:
    folder = Path(config.data_dir) / FOLDER / "test"
    with open(folder / LABELS, newline="") as stream:
        rows = list(csv.DictReader(stream))
    reader = LiteModel(config.litert_file)
    lines = ["| picture width / number's | whole numbers read right, one pass | with predict.py's zoom | ms per "
             "picture (zoom) |", "|---|---|---|---|"]
    for times in config.widths:
        one_pass = zoomed = 0
        seconds = 0.0
        for row in rows:
            photo = Image.fromarray(widened(np.asarray(Image.open(folder / row["file"]).convert("RGB")), times))
            pixels = prepare_number(photo, reader.input_shape)
            one_pass += decode(reader(pixels[np.newaxis])["digits"])[0] == row["number"]
            start = time.perf_counter()
            zoomed += answers.read_number(reader, photo)[1]["number"] == row["number"]
            seconds += time.perf_counter() - start
        lines.append(f"| {times}x | {100 * one_pass / len(rows):.1f} % | {100 * zoomed / len(rows):.1f} % | "
                     f"{1000 * seconds / len(rows):.1f} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return f"{len(rows)} test numbers of {folder}, {config.litert_file}\n" + "\n".join(lines)


@entry_point
def main(argv: list[str] | None = None) -> int:
    print(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
