"""The run directory: what train.py leaves behind and evaluate.py / visualize.py read back.

    runs/convnet_mnist/
        model.keras          the full Keras model
        saved_model/         TensorFlow SavedModel, signature serving_default: uint8 pixels in (models/export.py)
        model_float32.tflite LiteRT model for phones, same signature
        model_int8.tflite    the same, full-integer int8
        config.json          resolved settings, library versions, command line
        history.csv          per-epoch loss and accuracy, train and validation
        metrics.json         test_accuracy, test_loss, train_seconds, epochs, ...
        training_curves.png

A run is written into a hidden staging folder beside its destination and moved
into place only when complete, so a failed or interrupted run never damages the
run that was there before.
"""

import contextlib
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

from data.errors import UserError

RUNS_ROOT = Path("runs")
MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
TFLITE_FLOAT32_FILE = "model_float32.tflite"
TFLITE_INT8_FILE = "model_int8.tflite"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CURVES_FILE = "training_curves.png"
FIGURE_DPI = 110  # pixels per inch of every saved figure


def default_run_dir(model: str, dataset: str) -> Path:
    return RUNS_ROOT / f"{model}_{dataset}"


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically: readers see the old file or the new one, never half of one."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def write_json(path: Path, content: dict) -> None:
    write_text(path, json.dumps(content, indent=2) + "\n")


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path} ({error}); train the run again with python train.py.") from error


def save_figure(figure, path: Path) -> None:
    """Save a matplotlib figure atomically as PNG and release its memory."""
    import matplotlib.pyplot as plt

    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp")
    figure.savefig(staging, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(figure)
    os.replace(staging, path)


@contextlib.contextmanager
def staged_run(run_dir: Path):
    """Yield an empty staging folder; on success it replaces run_dir whole.

    On an exception the staging folder is removed and run_dir is untouched.
    """
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a run folder is an ordinary one
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    previous = run_dir.with_name(f".{run_dir.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if run_dir.exists():
        os.replace(run_dir, previous)
    os.replace(staging, run_dir)
    shutil.rmtree(previous, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def environment(script: str, arguments: list[str]) -> dict:
    """Library versions and the command line, recorded beside every run."""
    import keras
    import numpy
    import tensorflow

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "command_line": ["python", script, *arguments],
    }


def require_run(run_dir: Path) -> Path:
    """The run directory, or a UserError telling the user to train first."""
    run_dir = Path(run_dir)
    if not (run_dir / MODEL_FILE).is_file():
        raise UserError(f"no trained model in {run_dir}; run python train.py first (or pass --run-dir).")
    return run_dir


def load_model(path: Path):
    """A saved .keras model, or a UserError if the file is not one."""
    import keras

    try:
        return keras.saving.load_model(path)
    except Exception as error:  # Keras raises many types for damaged or foreign files
        raise UserError(f"cannot load {path} as a Keras model ({type(error).__name__}); train it again.") from error
