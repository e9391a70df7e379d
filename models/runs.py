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
        logs/                TensorBoard logs (train.py --tensorboard)
    runs/.convnet_mnist.partial/   the run being built, with its per-epoch training state (models/resume.py)
    runs/.convnet_mnist.lock       held while a train.py writes the run (an empty file; the lock dies with its process)

A run is built in the hidden staging folder beside its destination and moved
into place only when complete, so a failed, diverged or killed run never damages
the run that was there before. Only a folder that is absent, empty, or a run of
this project holding nothing but the files listed in PROJECT_FILES is ever
replaced (refusal()); a user's own folder or file is refused before any work.
"""

import contextlib
import fcntl
import glob
import json
import os
import platform
import re
import shutil
import tempfile
from dataclasses import dataclass
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
LOGS_DIR = "logs"  # TensorBoard logs, with train.py --tensorboard
EVALUATION_FILE = "evaluation.json"  # evaluate.py
CONFUSION_FILE = "confusion_matrix.png"
MISTAKES_FILE = "mistakes.png"
FIGURES_DIR = "figures"  # visualize.py
# Every name the project writes at the top of a run folder. A folder holding anything
# else is not replaced: the other entries are someone's own files.
PROJECT_FILES = frozenset({
    MODEL_FILE, SAVED_MODEL_DIR, TFLITE_FLOAT32_FILE, TFLITE_INT8_FILE, CONFIG_FILE, HISTORY_FILE, METRICS_FILE,
    CURVES_FILE, LOGS_DIR, EVALUATION_FILE, CONFUSION_FILE, MISTAKES_FILE, FIGURES_DIR,
})
RUN_MARKER = "digits_run"  # key in config.json that says train.py wrote the folder; its value is the layout version
RUN_LAYOUT = 1
FIGURE_DPI = 110  # pixels per inch of every saved figure


def default_run_dir(model: str, dataset: str) -> Path:
    return RUNS_ROOT / f"{model}_{dataset}"


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically: readers see the old file or the new one, never half of one."""
    with _replacing(path) as staging:
        staging.write_text(text, encoding="utf-8")


def write_json(path: Path, content: dict) -> None:
    """Strict JSON (a NaN or infinity is an error, not a token other readers reject), written atomically."""
    write_text(path, json.dumps(content, indent=2, allow_nan=False) + "\n")


def read_json(path: Path) -> dict:
    """A JSON object from a file of a run, or a UserError naming the file and what is wrong with it."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} is missing; the run is incomplete (train it again with python train.py).") from None
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested deeper than Python recurses
        raise UserError(f"cannot read {path} ({error}); it is damaged or not this project's file.") from error
    if not isinstance(content, dict):
        raise UserError(f"{path} holds a JSON {type(content).__name__}, not an object; it is damaged or not "
                        f"this project's file.")
    return content


def save_figure(figure, path: Path) -> None:
    """Save a matplotlib figure atomically as PNG and release its memory."""
    import matplotlib.pyplot as plt

    try:
        with _replacing(path) as staging:
            figure.savefig(staging, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    finally:
        plt.close(figure)


@contextlib.contextmanager
def _replacing(path: Path):
    """Yield a unique temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    Unique names let two writers of the same file work at once: the last rename wins whole.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.chmod(staging, 0o666 & ~_umask())  # mkstemp makes it private; ours is an ordinary file
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------ replacing a run folder safely


def is_run(folder: Path) -> bool:
    """Whether `folder` is a run written by train.py: its config.json carries the marker.

    Runs written before the marker existed are recognised by the command line their
    config.json records.
    """
    try:
        config = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(config, dict):
        return False
    if config.get(RUN_MARKER) is not None:
        return True
    command = (config.get("environment") or {}).get("command_line") if isinstance(config.get("environment"), dict) \
        else None
    return isinstance(command, list) and command[1:2] == ["train.py"]


def _ours(name: str) -> bool:
    """A name the project writes in a run folder, or one of its writers' temporaries (.NAME.xxxx.tmp)."""
    if name in PROJECT_FILES:
        return True
    return name.startswith(".") and name.endswith((".tmp", ".previous")) and \
        name[1:].split(".", 1)[0] in {file.split(".", 1)[0] for file in PROJECT_FILES}


def refusal(run_dir: Path) -> str | None:
    """Why a new run may not replace `run_dir`, or None when it may (absent, empty, or a run of ours)."""
    run_dir = Path(run_dir)
    resolved = run_dir.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path.home().resolve():
        return "it is the home folder"
    if resolved == cwd or resolved in cwd.parents:
        return "it holds the current folder"
    if resolved == (cwd / RUNS_ROOT).resolve():
        return f"it is the folder that holds all runs (give a folder inside it, e.g. {RUNS_ROOT / 'my_run'})"
    if run_dir.is_symlink():
        return "it is a symbolic link, not a folder this project made"
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        return "it is a file, not a run folder"
    entries = sorted(entry.name for entry in run_dir.iterdir())
    if not entries:
        return None
    if not is_run(run_dir):
        return "it is a folder that train.py did not write (its config.json has no run marker)"
    foreign = [name for name in entries if not _ours(name)]
    if foreign:
        return f"it holds {', '.join(foreign[:3])}{' and more' if len(foreign) > 3 else ''}, " \
               f"which this project did not write (move them out first)"
    return None


def check_replaceable(run_dir: Path) -> None:
    """A UserError naming run_dir unless a new run may replace it; nothing is touched."""
    reason = refusal(run_dir)
    if reason:
        raise UserError(f"refusing to write a run into {run_dir}: {reason}; choose another --run-dir.")


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold the run folder's lock for the block; a UserError if another process holds it.

    The lock is an advisory lock on the hidden file .NAME.lock beside the folder: the
    system releases it when its process ends, however it ends, so a killed run never
    leaves it stuck. The empty file itself stays.
    """
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(run_dir.with_name(f".{run_dir.name}.lock"), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another train.py is writing {run_dir} now; wait for it to finish or choose "
                            f"another --run-dir.") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def staging_dir(run_dir: Path) -> Path:
    """The hidden folder beside run_dir where a run is built (and a killed one resumed) before it replaces run_dir."""
    run_dir = Path(run_dir)
    return run_dir.with_name(f".{run_dir.name}.partial")


def remove_stale_staging(run_dir: Path) -> None:
    """Remove what killed runs of run_dir left beside it: .NAME.previous (put back in place if
    run_dir is missing), and the .NAME.xxxxxxxx staging folders of versions before staging_dir()."""
    run_dir = Path(run_dir)
    previous = run_dir.with_name(f".{run_dir.name}.previous")
    if not run_dir.exists() and previous.is_dir() and is_run(previous):
        os.replace(previous, run_dir)  # killed in the middle of publish(): the old run goes back in place
    for leftover in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.*"):
        suffix = leftover.name[len(run_dir.name) + 2:]
        stale = suffix == "previous" or re.fullmatch(r"[a-z0-9_]{8}", suffix)
        if stale and leftover.is_dir() and not leftover.is_symlink() and \
                all(_ours(entry.name) for entry in leftover.iterdir()):  # never a folder holding someone's files
            shutil.rmtree(leftover, ignore_errors=True)


def publish(staging: Path, run_dir: Path) -> None:
    """Move a complete staged run into place, replacing run_dir only if it may be replaced.

    The swap is two renames: for an instant run_dir is absent, never half written.
    """
    staging, run_dir = Path(staging), Path(run_dir)
    reason = refusal(run_dir)  # again: someone may have put files in it while we trained
    if reason:
        raise UserError(f"the new run is complete in {staging}, but {run_dir} may not be replaced: {reason}.")
    previous = run_dir.with_name(f".{run_dir.name}.previous")
    if previous.exists() and not (previous.is_dir() and (is_run(previous) or not any(previous.iterdir()))):
        raise UserError(f"{previous} is in the way and is not a run of this project; move it out and run again.")
    shutil.rmtree(previous, ignore_errors=True)
    staging.chmod(0o777 & ~_umask())  # a run folder is an ordinary, shared one
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
    if not is_run(run_dir):  # the scripts write into a run: never into a folder that merely holds a model
        raise UserError(f"{run_dir} is not a run written by train.py (its {CONFIG_FILE} is missing, damaged or "
                        f"not ours); for a bare model file use --model-file where the script offers it.")
    return run_dir


def read_config(run_dir: Path) -> dict:
    """A run's config.json, checked for the settings every reader of a run relies on."""
    settings = read_json(Path(run_dir) / CONFIG_FILE)
    if not isinstance(settings.get("dataset"), str):
        raise UserError(f"{Path(run_dir) / CONFIG_FILE} names no data set; it is damaged (train the run again "
                        f"with python train.py).")
    return settings


@dataclass(frozen=True)
class Run:
    """A trained run reopened: its folder, settings, model and the data set it was trained on."""

    folder: Path
    settings: dict
    model: object  # keras.Model
    digits: object  # data.Dataset


def open_run(run_dir: Path, data_dir: Path | None = None) -> Run:
    """The run in run_dir with its model and data, checked to fit each other; UserError otherwise.

    data_dir replaces the data folder the run recorded.
    """
    from data import load_recorded
    from models.introspection import classifier_shapes

    folder = require_run(run_dir)
    settings = read_config(folder)
    digits = load_recorded(settings, folder / CONFIG_FILE, data_dir)
    model = load_model(folder / MODEL_FILE)
    input_shape, classes = classifier_shapes(model, folder / MODEL_FILE)
    if input_shape != digits.input_shape or classes != digits.num_classes:
        raise UserError(f"{folder / MODEL_FILE} takes {'x'.join(map(str, input_shape))} images and tells "
                        f"{classes} classes apart, but {settings['dataset']} has "
                        f"{'x'.join(map(str, digits.input_shape))} images of {digits.num_classes} classes; the run "
                        f"is inconsistent (train it again).")
    return Run(folder, settings, model, digits)


def load_model(path: Path):
    """A saved .keras model, loaded in safe mode, or a UserError saying in one line why the file is not one."""
    from models.model_files import load_model as load_model_file  # imports Keras, which most callers of runs need not

    return load_model_file(path)
