"""Fixtures and writers shared by several test files."""

import contextlib
import csv
import hashlib
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from data.pipeline import batches, steps_per_epoch
from data.synthetic import draw_digit, load_synthetic
from models import MODELS
from models.training import compile_for_training

DRY_RUN = ["--dataset", "synthetic", "--dry-run"]
TRAINED_EPOCHS = 8  # the MLP on synthetic digits passes 90 % test accuracy well before this


@pytest.fixture(scope="session")
def trained_mlp(tmp_path_factory):
    """(model file, model, synthetic data set): an MLP trained on 2000 seven-segment digits, seconds on a CPU."""
    keras.utils.set_random_seed(0)
    digits = load_synthetic((28, 28, 1))
    model = MODELS["mlp"].build(digits.input_shape, digits.num_classes)
    steps = steps_per_epoch(len(digits.y_train), 64)
    compile_for_training(model, 1e-3, TRAINED_EPOCHS * steps)
    model.fit(batches(digits.x_train, digits.y_train, 64, shuffle_seed=0, epochs=range(TRAINED_EPOCHS)),
              epochs=TRAINED_EPOCHS, steps_per_epoch=steps, shuffle=False, verbose=0)  # the pipeline shuffles, seeded
    path = tmp_path_factory.mktemp("trained") / "model.keras"
    model.save(path)
    return path, model, digits


@pytest.fixture(scope="session")
def good_run(tmp_path_factory) -> Path:
    """A complete synthetic train.py run, to copy wherever a test needs 'the last good run' (never changed).

    It records a data folder that never exists (synthetic digits need none), so nothing run on a copy of it
    reaches a real data set by accident."""
    import train  # here: train.py is a script at the root, imported only by the tests that train

    folder = tmp_path_factory.mktemp("good")
    run_dir = folder / "run"
    assert train.main([*DRY_RUN, "--run-dir", str(run_dir), "--data-dir", str(folder / "no data here")]) == 0
    return run_dir


@pytest.fixture(scope="session")
def mlp_dry_run(tmp_path_factory) -> Path:
    """A complete train.py --model mlp --dataset synthetic --dry-run run, to copy (never changed)."""
    import train  # here: train.py is a script at the root, imported only by the tests that train

    run_dir = tmp_path_factory.mktemp("mlp_dry_run") / "run"
    assert train.main(["--model", "mlp", "--dataset", "synthetic", "--dry-run", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="session")
def reader_dry_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, data folder): dry_run_reader's reader of numbers of 1 to 3 digits, 40 training and 20 test
    numbers of 32-pixel digits, trained once for the session; copy the run folder before writing into it."""
    return dry_run_reader(tmp_path_factory, longest=3)


@contextlib.contextmanager
def without_serving_files():
    """train.py in this process without its SavedModel and LiteRT exports, for tests of the training alone: the
    exports take most of a small run's time, and test_cli.py's test_train_writes_every_artifact and tests/serving/
    check them."""
    import train

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "write_serving_files", lambda *args, **kwargs: None)
        yield


def copied_run(run_dir: Path, tmp_path_factory, name: str) -> Path:
    """A copy of a shared run folder, named `name`, in a fresh temporary folder: a run of the test's own."""
    copy = tmp_path_factory.mktemp("runs") / name
    shutil.copytree(run_dir, copy)
    return copy


def tree_digest(folder: Path) -> dict[str, str]:
    """{path relative to folder: sha256} of every file under folder (a file itself: {"": sha256})."""
    folder = Path(folder)
    if folder.is_file():
        return {"": hashlib.sha256(folder.read_bytes()).hexdigest()}
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def one_error_line(capsys) -> str:
    """The one line a refusal printed on stderr ("error: ..."), checked to be one line and no traceback."""
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("error: ") and "Traceback" not in error, error
    return error


def write_number_split(folder: Path, count: int, rng: np.random.Generator, longest: int, tile: int = 32) -> None:
    """A tiny svhn-numbers split in its layout: `count` numbers of 1 to `longest` seven-segment digits, light on
    dark grey, as PNGs and labels.csv (file, number, boxes "x0 y0 x1 y1;...")."""
    folder.mkdir(parents=True)
    with open(folder / "labels.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "number", "boxes"])
        for index in range(count):
            number = "".join(str(digit) for digit in rng.integers(0, 10, index % longest + 1))
            ink = np.concatenate([draw_digit(int(digit), tile, rng) for digit in number], axis=1)
            pixels = (60 + 180 * ink).astype(np.uint8)
            Image.fromarray(np.stack([pixels] * 3, axis=-1)).save(folder / f"{index:05d}.png")
            boxes = ";".join(f"{tile * place} 0 {tile * (place + 1)} {tile}" for place in range(len(number)))
            writer.writerow([f"{index:05d}.png", number, boxes])


def dry_run_reader(tmp_path_factory, longest: int, counts=(("train", 40), ("test", 20)), tile: int = 32):
    """(run folder, data folder): a reader trained for one train.py --dry-run pass on a tiny svhn-numbers folder."""
    import train  # here: train.py is a script at the root, imported only by the tests that train

    data_dir = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for split, count in counts:
        write_number_split(data_dir / "svhn-numbers" / split, count, rng, longest=longest, tile=tile)
    run_dir = tmp_path_factory.mktemp("runs") / "reader_svhn-numbers"
    assert train.main(["--model", "reader", "--dataset", "svhn-numbers", "--data-dir", str(data_dir),
                       "--dry-run", "--run-dir", str(run_dir)]) == 0
    return run_dir, data_dir


WORKER_TALLIES = []  # the bad-input tallies of pytest-xdist's workers, as they end


def pytest_sessionfinish(session):
    """In a pytest-xdist worker: hand the bad-input tally to the main process, which prints the sum."""
    import sys

    suite = sys.modules.get("test_bad_inputs")
    if hasattr(session.config, "workeroutput") and suite is not None:
        session.config.workeroutput["bad_input_tally"] = list(suite.TALLY.items())


def pytest_testnodedown(node, error):
    WORKER_TALLIES.append(node.workeroutput.get("bad_input_tally", []))


def pytest_terminal_summary(terminalreporter):
    """After the session: the bad-input suite's tally (tests/test_bad_inputs.py), when it ran."""
    import collections
    import sys

    suite = sys.modules.get("test_bad_inputs")
    if suite is None and any(WORKER_TALLIES):
        import test_bad_inputs as suite
    if suite is None:
        return
    tally = None
    if WORKER_TALLIES:
        tally = collections.Counter()
        for items in WORKER_TALLIES:
            tally.update({tuple(key) if isinstance(key, list) else key: count for key, count in items})
    lines = suite.tally_lines(tally)
    if lines:
        terminalreporter.write_line("\n".join(lines))
