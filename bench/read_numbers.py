"""Whole house numbers read from real photos: the OCR tools people would use, against our readers, in one invocation.

    bash bench/baselines/install.sh      # once: Tesseract 5 (apt) and PaddleOCR v4 in bench/baselines/.venv
    python bench/read_numbers.py --data-dir /work/shared/datasets --out read_numbers.json
    python bench/read_numbers.py --data-dir /work/shared/datasets --run-dir runs/reader_a runs/reader_b
    python bench/read_numbers.py --baselines --run-dir runs/reader_a --limit 100   # our run alone, quickly

Data: the "SVHN numbers stand-in" (--data-dir/svhn-numbers/<split>/: PNGs and
labels.csv with columns file, number, boxes), the number regions of real SVHN
test photos rebuilt from the 32x32 digit crops. It is not the official SVHN
protocol: never compare these figures with published SVHN results.

Readers (the baselines run in their own environment, bench/baselines/.venv, by
bench/baselines/run_baseline.py, whose docstring says exactly how each is called):
- paddleocr-v4: PaddleOCR's PP-OCRv4 text recogniser as the rapidocr-onnxruntime
  wheel ships it, recognition only (no detection, no angle classifier), through
  the package's own call; the digits of its text are kept.
- paddleocr-v4-digits: the same model given the picture's own pixels (the
  package's call first scales small pictures up and rounds both sides to
  multiples of 32 pixels, changing their proportions) and decoding only digits,
  as Tesseract's whitelist does: the strongest fair form of this baseline.
- tesseract: Tesseract 5, `--psm 7` (one line), digits whitelisted, the picture
  as it is.
- each --run-dir: our reader, predict.read_numbers(run_dir, paths), in this process.

Scoring: a number is right when the digits read equal its label exactly, leading
zeros kept ("063" is not "63"); the same by the label's length. A tool's text
is reduced to its digits first (Unicode NFKC, so a full-width digit counts, then
ASCII 0-9 only). Time: s/image is the whole reading's wall-clock time, model
loading included (library imports not), divided by the images; for the
baselines also the median time of one image, loading excluded.

Measured: the whole test split (1,001 numbers), twice, with the pins of
bench/baselines/requirements.txt and Tesseract 5.3.0 (Debian 12), on 2 CPU
cores shared with other work (load average 3 to 6). Every reader is
deterministic, so the accuracies were the same both times; the times are the
range over the two runs, and follow the machine's load:

| reader | right | 1 / 2 / 3 / 4 digits | s/image (all / N) |
|---|---|---|---|
| paddleocr-v4 | 79.9 % | 80.7 / 79.9 / 79.7 / 72.7 % | 0.010-0.041 |
| paddleocr-v4-digits | 84.2 % | 86.3 / 84.1 / 83.1 / 72.7 % | 0.010-0.035 |
| tesseract | 33.5 % | 46.7 / 30.4 / 28.5 / 45.5 % | 0.10-0.17 |
"""

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: the project's packages sit at the root
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's start-up chatter, if a run loads it

from data import default_data_dir  # noqa: E402
from harness import atomic  # noqa: E402
from harness.errors import DataError, UserError  # noqa: E402
from data.svhn_numbers import FOLDER, LABELS, SPLITS, _read_labels  # noqa: E402

TITLE = "SVHN numbers stand-in (real SVHN test photos, rebuilt; not the official protocol)"
BASELINES = ("paddleocr-v4", "paddleocr-v4-digits", "tesseract")
BASELINES_DIR = ROOT / "bench" / "baselines"
BASELINES_PYTHON = BASELINES_DIR / ".venv" / "bin" / "python"
INSTALL = "bash bench/baselines/install.sh"
REPORTED_LENGTHS = (1, 2, 3, 4)  # always shown, even where a split has none; longer ones when present


@dataclass(frozen=True)
class BenchConfig:
    data_dir: Path
    split: str
    baselines: tuple[str, ...]
    run_dirs: tuple[Path, ...]
    limit: int | None
    out: Path | None
    baselines_python: Path


class ReaderUnavailable(Exception):
    """A reader that cannot run here: a baseline not installed, a run this checkout cannot read yet or that is
    no number reader. The message is a clause saying why; the benchmark goes on without it."""


def parse_args(argv: list[str] | None) -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help=f"folder holding {FOLDER}/ (default: {default_data_dir()})")
    parser.add_argument("--split", choices=SPLITS, default="test", help="(default: test)")
    parser.add_argument("--baselines", nargs="*", choices=BASELINES, default=list(BASELINES), metavar="NAME",
                        help=f"baseline tools to run, of {', '.join(BASELINES)} (default: all); the flag alone "
                             f"runs none")
    parser.add_argument("--run-dir", type=Path, nargs="+", action="extend", default=[], metavar="RUN",
                        help="run directories of our number readers (train.py)")
    parser.add_argument("--limit", type=int, metavar="N", help="read only the first N numbers of labels.csv")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="also write every reader's figures and answers here as JSON")
    parser.add_argument("--baselines-python", type=Path, default=BASELINES_PYTHON, metavar="PYTHON",
                        help=f"Python of the baselines' environment, made by {INSTALL} (default: {BASELINES_PYTHON})")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be a whole number from 1, not {args.limit}")
    return BenchConfig(data_dir=args.data_dir, split=args.split, baselines=tuple(dict.fromkeys(args.baselines)),
                       run_dirs=tuple(args.run_dir), limit=args.limit, out=args.out,
                       baselines_python=args.baselines_python)


def read_labels(folder: Path, limit: int | None = None) -> tuple[list[Path], list[str]]:
    """A svhn-numbers folder's images and their numbers (digit strings, leading zeros kept), in labels.csv's order."""
    if not folder.is_dir():
        raise UserError(f"no {folder}; pass --data-dir with the folder that holds {FOLDER}/ (see the data sets' "
                        f"README.md).")
    rows = _read_labels(folder / LABELS)[:limit]  # data/svhn_numbers.py checks every cell: a DataError names the line
    for name, _, _, where in rows:
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}, listed on {where}, is missing; put the picture back.")
    return [folder / name for name, *_ in rows], [number for _, number, *_ in rows]


def digits_of(text: str) -> str:
    """The ASCII digits of an OCR tool's text, in order, after Unicode NFKC (full-width "１" counts as "1")."""
    return "".join(character for character in unicodedata.normalize("NFKC", text) if character in "0123456789")


def score(predictions: list[str], numbers: list[str]) -> dict:
    """Exact-match accuracy over all numbers and by the label's length (digits)."""
    right = [prediction == number for prediction, number in zip(predictions, numbers, strict=True)]
    by_length = {}
    for length in sorted(set(REPORTED_LENGTHS) | {len(number) for number in numbers}):
        hits = [hit for hit, number in zip(right, numbers) if len(number) == length]
        by_length[str(length)] = {"numbers": len(hits), "right": sum(hits),
                                  "accuracy": sum(hits) / len(hits) if hits else None}
    return {"numbers": len(numbers), "right": sum(right), "accuracy": sum(right) / len(numbers),
            "by_length": by_length}


def run_baseline(name: str, image_paths: list[Path], python: Path) -> dict:
    """One baseline tool over the images, in the baselines' environment (bench/baselines/run_baseline.py)."""
    if not python.is_file():
        raise ReaderUnavailable(f"not installed (no {python}); install the baselines with {INSTALL}")
    done = subprocess.run([str(python), str(BASELINES_DIR / "run_baseline.py"), name], check=False,
                          input="".join(f"{path}\n" for path in image_paths), capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ReaderUnavailable(f"failed ({last}); reinstall the baselines with {INSTALL}")
    output = json.loads(done.stdout.strip().splitlines()[-1])  # the runner's one line of JSON comes last
    return {"predictions": [digits_of(text) for text in output["texts"]], "texts": output["texts"],
            "seconds_per_image": output["total_seconds"] / len(image_paths),
            "median_seconds_per_image": statistics.median(output["seconds"]),
            "load_seconds": output["load_seconds"], "versions": output["versions"]}


def read_with_run(run_dir: Path, image_paths: list[Path]) -> list[str]:
    """Our number reader in run_dir over the images: the digit strings it reads, in order.

    predict.read_numbers(run_dir, paths) -> list[str] loads the run's model and
    reads every image; predict (and with it TensorFlow) is imported only here.
    """
    import predict

    if not hasattr(predict, "read_numbers"):
        raise ReaderUnavailable("cannot be read yet: predict.py has no read_numbers(run_dir, paths), the whole-number "
                             "reader's entry point")
    try:
        numbers = predict.read_numbers(run_dir, image_paths)
    except UserError as error:  # not a reader's run, a damaged run, ...: that run alone is skipped
        raise ReaderUnavailable(f"cannot be read: {' '.join(str(error).split()).rstrip('.')}") from error
    numbers = list(numbers)
    if len(numbers) != len(image_paths) or not all(isinstance(number, str) for number in numbers):
        raise ReaderUnavailable(f"cannot be read: predict.read_numbers returned {len(numbers)} answer(s) for "
                             f"{len(image_paths)} images, not one digit string each")
    return numbers


def run_ours(run_dir: Path, image_paths: list[Path]) -> dict:
    """read_with_run, timed: the clock starts after predict (and TensorFlow) is imported, as for the baselines."""
    importlib.import_module("predict")
    started = time.perf_counter()
    predictions = read_with_run(run_dir, image_paths)
    return {"predictions": predictions, "seconds_per_image": (time.perf_counter() - started) / len(image_paths),
            "median_seconds_per_image": None}


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.1f} %"


def results_table(results: dict[str, dict]) -> str:
    lengths = next(iter(results.values()))["by_length"]
    header = ["reader", "whole numbers right",
              *(f"{length} digit{'s' * (length != '1')} ({counts['numbers']:,})" for length, counts in lengths.items()),
              "s/image (all / N)", "median s/image"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, result in results.items():
        median = result["median_seconds_per_image"]
        lines.append(" | ".join([
            f"| {name}", f"{percent(result['accuracy'])} ({result['right']:,}/{result['numbers']:,})",
            *(percent(counts["accuracy"]) for counts in result["by_length"].values()),
            f"{result['seconds_per_image']:.4f}", "-" if median is None else f"{median:.4f}"]) + " |")
    return "\n".join(lines)


def benchmark(config: BenchConfig) -> int:
    folder = config.data_dir / FOLDER / config.split
    image_paths, numbers = read_labels(folder, config.limit)
    for run_dir in config.run_dirs:  # a mistyped run is found before minutes of baselines, not after
        if not run_dir.is_dir():
            raise UserError(f"no run directory {run_dir}; pass a folder written by train.py.")
    if config.out and not config.out.parent.is_dir():
        raise UserError(f"no folder {config.out.parent} for --out {config.out}; make it first or write elsewhere.")
    print(f"{TITLE}: {len(numbers):,} numbers of {folder}", flush=True)
    load_at_start = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load_at_start:.2f} at start", flush=True)

    readers = [(name, lambda name=name: run_baseline(name, image_paths, config.baselines_python))
               for name in config.baselines]
    readers += [(str(run_dir), lambda run_dir=run_dir: run_ours(run_dir, image_paths)) for run_dir in config.run_dirs]
    results, skipped = {}, {}
    for name, read in readers:
        try:
            result = read()
        except ReaderUnavailable as reason:
            skipped[name] = str(reason)
            print(f"{name}: {reason}; skipped", flush=True)
            continue
        results[name] = {**score(result["predictions"], numbers), **result}
        print(f"{name}: {percent(results[name]['accuracy'])} right, "
              f"{results[name]['seconds_per_image']:.4f} s/image", flush=True)
    if results:
        print(f"\n{TITLE}\n" + results_table(results), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end", flush=True)
    if config.out:
        report = {"title": TITLE, "data": str(folder), "split": config.split, "numbers": len(numbers),
                  "files": [path.name for path in image_paths], "labels": numbers,
                  "machine": {"cpus": os.cpu_count(), "load_average_start": load_at_start,
                              "load_average_end": os.getloadavg()[0]},
                  "readers": results, "skipped": skipped}
        atomic.write_json(config.out, report, elsewhere="another --out")
    return 0 if results else 1


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        return benchmark(config)
    except UserError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
