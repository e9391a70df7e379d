"""The deployment table: accuracy, file size and single-image latency of every exported form of a run.

A number reader's run is measured the same way, its accuracy being whole numbers
read exactly (every form returns the digits read, serving/export.py).

    python bench/export_table.py                                  # runs/convnet_mnist
    python bench/export_table.py --run-dir runs/mlp_mnist --repeats 2000

The run is copied to a temporary folder and its serving files are written anew
from its model.keras by this code (serving/export.py), so the figures belong to
the current export and the run itself is left alone. Then, on the run's whole
test set: accuracy of model.keras, of the SavedModel's serving_default (raw
uint8 pixels in), and of the float32 and int8 .tflite files run by the LiteRT
interpreter (ai-edge-litert), each with its difference from model.keras in
percentage points; file sizes; and the median time of one single-image call,
over --repeats calls after --warmup calls, one image at a time from the test
set (Keras and SavedModel: TensorFlow's own threads; LiteRT: --threads). Prints
a markdown table and the machine's load average, which on a shared machine
says how much to trust the times.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: the project's packages sit at the root

from harness.cli import ArgumentParser, entry_point, positive_int
from harness import runs

BATCH_SIZE = 1000  # test images per call when measuring accuracy


@dataclass(frozen=True)
class TableConfig:
    run_dir: Path
    data_dir: Path | None
    repeats: int
    warmup: int
    threads: int


def parse_args(argv: list[str] | None) -> TableConfig:
    parser = ArgumentParser(description="Measure a run's Keras, SavedModel and LiteRT forms; print a table.")
    parser.add_argument("--run-dir", type=Path, default=ROOT / runs.default_run_dir("convnet", "mnist"),
                        help="trained run (copied; left untouched)")
    parser.add_argument("--data-dir", type=Path, help="folder with the data files (default: the run's)")
    parser.add_argument("--repeats", type=positive_int, default=1000, help="timed single-image calls per model")
    parser.add_argument("--warmup", type=positive_int, default=50, help="untimed single-image calls first")
    parser.add_argument("--threads", type=positive_int, default=1, help="LiteRT interpreter threads")
    args = parser.parse_args(argv)
    return TableConfig(args.run_dir, args.data_dir, args.repeats, args.warmup, args.threads)


def size_bytes(path: Path) -> int:
    """A file's size, or the sum of the files under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def median_latency_ms(predict, images, repeats: int, warmup: int) -> float:
    """Median milliseconds of predict(one (1, H, W, C) uint8 image), cycling through `images`."""
    for index in range(warmup):
        predict(images[index % len(images)][None])
    times = []
    for index in range(repeats):
        image = images[index % len(images)][None]
        started = time.perf_counter()
        predict(image)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(config: TableConfig) -> tuple[list[dict], dict]:
    import numpy as np
    import tensorflow as tf

    from data.pipeline import normalise
    from serving import export, litert
    from models.ctc import greedy_read
    from harness import kinds

    run = runs.open_run(config.run_dir, config.data_dir)
    digits, settings, x_train, model = run.digits, run.settings, run.training_images(), run.model
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / run.folder.name
        run_dir.mkdir()
        shutil.copy2(run.folder / runs.MODEL_FILE, run_dir / runs.MODEL_FILE)
        started = time.perf_counter()
        export.write_serving_files(model, run_dir, x_train, run.kind)
        export_seconds = time.perf_counter() - started

        serving = tf.saved_model.load(str(run_dir / runs.SAVED_MODEL_DIR)).signatures[export.SIGNATURE]
        # Each form gives its answers for a uint8 batch: class probabilities, or for a reader the digits read.
        reader = run.kind is kinds.READER
        if reader:
            def keras_answer(pixels):
                return np.asarray(greedy_read(model(normalise(pixels), training=False))["digits"])

            key = export.READING["digits"]
        else:
            def keras_answer(pixels):
                return np.asarray(model(normalise(pixels), training=False))

            key = export.PROBABILITIES
        forms = {
            "Keras (`model.keras`)": (runs.MODEL_FILE, keras_answer),
            "SavedModel (`saved_model/`)": (runs.SAVED_MODEL_DIR,
                                            lambda pixels: serving(pixels=pixels)[key].numpy()),
        }
        for label, name in [("LiteRT float32", runs.TFLITE_FLOAT32_FILE), ("LiteRT int8", runs.TFLITE_INT8_FILE)]:
            runner = litert.LiteModel(run_dir / name, threads=config.threads)
            forms[f"{label} (`{name}`)"] = (name, lambda pixels, runner=runner: runner(pixels)[key])

        rows = []
        for label, (name, predict) in forms.items():
            answers = np.concatenate([predict(digits.x_test[start:start + BATCH_SIZE])
                                      for start in range(0, len(digits.y_test), BATCH_SIZE)])
            right = ((answers == np.where(digits.y_test >= 0, digits.y_test, -1)).all(axis=1) if reader
                     else answers.argmax(1) == digits.y_test)
            rows.append({
                "form": label,
                "accuracy": float(right.mean()),
                "bytes": size_bytes(run_dir / name),
                "latency_ms": median_latency_ms(predict, digits.x_test, config.repeats, config.warmup),
            })
    facts = {"test_images": len(digits.y_test), "export_seconds": export_seconds, "dataset": settings["dataset"]}
    return rows, facts


def markdown(rows: list[dict]) -> str:
    keras_accuracy = rows[0]["accuracy"]
    lines = ["| form | test accuracy | vs Keras | size | one image (median) |", "|---|---|---|---|---|"]
    for row in rows:
        delta = 100 * (row["accuracy"] - keras_accuracy)
        lines.append(f"| {row['form']} | {100 * row['accuracy']:.2f} % | {delta:+.2f} pp | "
                     f"{row['bytes'] / 1e6:.2f} MB | {row['latency_ms']:.3f} ms |")
    return "\n".join(lines)


@entry_point
def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    load_before = os.getloadavg()
    rows, facts = measure(config)
    load_after = os.getloadavg()
    print(f"{config.run_dir} on {facts['dataset']}: {facts['test_images']} test images; serving files written in "
          f"{facts['export_seconds']:.1f} s; {config.repeats} timed single-image calls after {config.warmup} "
          f"warm-up, LiteRT with {config.threads} thread(s); load average (1 min) {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after, on {os.cpu_count()} cores\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
