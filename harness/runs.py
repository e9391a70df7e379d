"""The run directory: what train.py leaves behind and evaluate.py / visualize.py read back.

    runs/convnet_mnist/
        model.keras          the full Keras model
        saved_model/         TensorFlow SavedModel, signature serving_default: uint8 pixels in (serving/export.py)
        model_float32.tflite LiteRT model for phones, same signature
        model_int8.tflite    the same, full-integer int8
        config.json          resolved settings, library versions, command line
        history.csv          per-epoch loss and accuracy, train and validation
        metrics.json         test_accuracy (a reader's: whole numbers read exactly), test_loss, train_seconds, ...
        training_curves.png
        logs/                TensorBoard logs (train.py --tensorboard)
    runs/.convnet_mnist.partial/   the run being built, with its per-epoch training state (harness/resume.py)
    runs/.convnet_mnist.lock       held while a train.py writes the run (an empty file; the lock dies with its process)

A run is built in the hidden staging folder beside its destination and moved
into place only when complete, so a failed, diverged or killed run never damages
the run that was there before. Every file of a run is recorded with its digest
as it is written (harness/atomic.py), and a folder is replaced only when it is
absent, empty, or holds nothing the records cannot prove the project wrote
(refusal()); a user's own folder or file is refused before any work.
"""

import contextlib
import fcntl
import glob
import json
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from data import VALIDATION_FRACTION, carve_validation, dataset_label, load_dataset, load_recorded, recorded_data_dir
from harness.errors import UserError
from harness import atomic, kinds

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
MISTAKE_KINDS_FILE = "mistake_kinds.png"  # ... the mistakes grouped by kind
ROBUSTNESS_FILE = "robustness.json"  # evaluate.py --robustness
ROBUSTNESS_FIGURE = "robustness.png"
ROBUSTNESS_COMPARE_FIGURE = "robustness_compare.png"  # ... --compare
FIGURES_DIR = "figures"  # visualize.py
TRAINING_STATE_DIR = ".training_state"  # in the staging folder: per-epoch state (harness/resume.py)
RUN_MARKER = "digits_run"  # key in config.json that says train.py wrote the folder; its value is the layout version
RUN_LAYOUT = 1


def evaluation_files(dataset: str | None = None) -> tuple[str, str, str, str]:
    """evaluate.py's outputs in a run folder: (evaluation, confusion, mistakes, mistake kinds). On another data
    set than the run's own (`dataset`, a name or .npz path), each name carries the data set's, so that the
    evaluation on the run's own test set stays beside it: evaluation-cvl-digits.json."""
    names = (EVALUATION_FILE, CONFUSION_FILE, MISTAKES_FILE, MISTAKE_KINDS_FILE)
    if dataset is None:
        return names
    return tuple(f"{Path(name).stem}-{dataset_label(dataset)}{Path(name).suffix}" for name in names)


def default_digit_run() -> Path:
    """predict.py's run when none is named: the handwriting model (MNIST and the CVL writers, train.py --dataset
    handwriting) where it has been trained, since it reads other people's digits far better (README, Results);
    else the default MNIST convnet."""
    handwriting = default_run_dir("convnet", "handwriting")
    return handwriting if is_run(handwriting) else default_run_dir("convnet", "mnist")


def default_run_dir(model: str, dataset: str) -> Path:
    return RUNS_ROOT / f"{model}_{dataset}"


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


# ------------------------------------------------------------------ replacing a run folder safely


def is_run(folder: Path) -> bool:
    """Whether `folder` is laid out as a run of train.py: its config.json carries the run marker.

    This says what the folder holds, for reading it; whether the project may replace
    a file in it is the records' question (harness/atomic.py).
    """
    try:
        config = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(config, dict) and config.get(RUN_MARKER) is not None


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
    if not any(run_dir.iterdir()):
        return None
    if atomic.read_record(run_dir) is None:
        return "it is a folder this project did not write (or an earlier version wrote it, which kept no record " \
               "of its files; move it away to train there again)"
    foreign = atomic.foreign_entries(run_dir)
    if foreign:
        return f"it holds {', '.join(foreign[:3])}{' and more' if len(foreign) > 3 else ''}, " \
               f"which this project did not write or which changed since (move them out first)"
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
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        lock = open(run_dir.with_name(f".{run_dir.name}.lock"), "a+")  # closed by the with below
    except OSError as error:  # the message names the run, not the lock file the user never gave
        raise OSError(error.errno, f"cannot write a run into {run_dir}: {error.strerror}") from error
    with lock:
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


def discard_staging(run_dir: Path) -> None:
    """Remove run_dir's staging folder, if any: the run being built, or a killed run's state.

    A UserError, and nothing removed, if something there is not what the project
    writes (someone's folder that happens to carry the name, or a file).
    """
    staging = staging_dir(run_dir)
    if not staging.exists() and not staging.is_symlink():
        return
    if staging.is_symlink() or not staging.is_dir() or not atomic.recorded_names_only(staging):
        raise UserError(f"{staging} is in the way and is not a run this project was building; move it out and "
                        f"run again.")
    shutil.rmtree(staging)


def remove_stale_staging(run_dir: Path) -> None:
    """Remove what killed writers of run_dir left beside it, keeping anything that holds someone's files.

    A run killed between the two renames of publish() left run_dir missing and the
    old run in .NAME.xxxx.previous: that one goes back in place.
    """
    run_dir = Path(run_dir)
    leftovers = [path for path in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.*")
                 if path.is_dir() and not path.is_symlink() and atomic.is_temporary(path.name, run_dir.name)]
    for leftover in leftovers:
        if not run_dir.exists() and leftover.name.endswith(atomic.PREVIOUS) and is_run(leftover):
            os.replace(leftover, run_dir)
        elif not any(leftover.iterdir()) or atomic.recorded_names_only(leftover):  # never someone's files
            shutil.rmtree(leftover, ignore_errors=True)


def publish(staging: Path, run_dir: Path) -> None:
    """Move a complete staged run into place, replacing run_dir only if it may be replaced.

    The swap is two renames: for an instant run_dir is absent, never half written.
    """
    staging, run_dir = Path(staging), Path(run_dir)
    reason = refusal(run_dir)  # again: someone may have put files in it while we trained
    if reason:
        raise UserError(f"the new run is complete in {staging}, but {run_dir} may not be replaced: {reason}.")
    atomic.swap_in(staging, run_dir)


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
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file, not a run folder; pass the folder train.py wrote (--run-dir).")
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
    """A trained run reopened: its folder, settings, model and the data set it was trained on (or another one)."""

    folder: Path
    settings: dict
    kind: kinds.Kind  # what its model does, as its config.json records
    model: object  # keras.Model
    digits: object  # data.Dataset: the run's own, or the one open_run was asked for
    dataset: str  # the name (or .npz path) of `digits`

    def training_images(self):
        """uint8 (N, H, W, C): the training images train.py fitted on, without its validation carve-out."""
        fraction = self.settings.get("validation_fraction", VALIDATION_FRACTION)
        if type(fraction) not in (int, float) or not 0 <= fraction < 1:  # type(): True is no number
            raise UserError(f"{self.folder / CONFIG_FILE} records the validation fraction {fraction!r}, not a "
                            f"number from 0 to below 1; it is damaged (train the run again).")
        return carve_validation(self.digits.x_train, self.digits.y_train, fraction)[0]


def open_run(run_dir: Path, data_dir: Path | None = None, dataset: str | None = None, convert=None) -> Run:
    """The run in run_dir with its kind, model and data, checked to fit each other; UserError otherwise.

    data_dir replaces the data folder the run recorded. `dataset` (a name or .npz path) replaces the data set
    the run was trained on, to measure the model on another's test split; `convert`, a function of a Dataset
    returning one, brings that data set's images to the run's convention (data.conventions.dark_ink_dataset).
    """
    from harness import model_files
    from analysis.introspection.graph import classifier_shapes

    folder = require_run(run_dir)
    settings = read_config(folder)
    kind = kinds.of_run(settings, folder / CONFIG_FILE)
    if dataset is None:
        digits, dataset = load_recorded(settings, folder / CONFIG_FILE, data_dir), settings["dataset"]
    else:
        digits = load_dataset(dataset, data_dir or recorded_data_dir(settings, folder / CONFIG_FILE))
        if convert is not None:
            digits = convert(digits)
    model = model_files.load_model(folder / MODEL_FILE)
    for what, found in ((f"{folder / MODEL_FILE} is a model that", kinds.of_model(model, folder / MODEL_FILE)),
                        (f"{dataset} holds data that", kinds.of_labels(digits.y_test))):
        if found is not kind:
            raise UserError(f"{what} {found.does}, but {folder / CONFIG_FILE} records a {kind.name}; the run is "
                            f"inconsistent (train it again).")
    input_shape, classes = classifier_shapes(model, folder / MODEL_FILE)
    if input_shape != digits.input_shape or classes != digits.num_classes:
        remedy = ("the run is inconsistent (train it again)" if dataset == settings["dataset"] else
                  f"it cannot be measured on {dataset}")
        raise UserError(f"{folder / MODEL_FILE} takes {'x'.join(map(str, input_shape))} images and tells "
                        f"{classes} classes apart, but {dataset} has "
                        f"{'x'.join(map(str, digits.input_shape))} images of {digits.num_classes} classes; {remedy}.")
    return Run(folder, settings, kind, model, digits, dataset)
