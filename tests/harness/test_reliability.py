"""Never lose a user's files or a good run: refused folders, divergence, kill and resume, Ctrl-C, locks.

Each case of issue 11's "What was seen" is a regression test here. Training runs
in process where the outcome is a refusal or a short synthetic run; the kill,
Ctrl-C and resume cases run train.py as a real subprocess, as a user would.
"""

import contextlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import train
from conftest import DRY_RUN, one_error_line, tree_digest, without_serving_files
from harness.errors import UserError
from harness import atomic, resume, runs

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ folders that are not ours


def test_a_folder_of_someone_elses_files_is_refused_and_untouched(tmp_path, capsys):
    """Seen: --run-dir ~/mydocs swapped the folder for the run and deleted every file in it."""
    documents = tmp_path / "mydocs"
    (documents / "letters").mkdir(parents=True)
    (documents / "notes.txt").write_text("mine")
    (documents / "letters" / "a.txt").write_text("also mine")
    before = tree_digest(documents)
    assert train.main([*DRY_RUN, "--run-dir", str(documents)]) == 2
    error = one_error_line(capsys)
    assert str(documents) in error and "did not write" in error
    assert tree_digest(documents) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mydocs"]  # nothing staged beside it


def test_a_file_as_run_dir_is_refused_and_untouched(tmp_path, capsys):
    """Seen: the file was pushed aside to .NAME.previous and a run folder took its name."""
    path = tmp_path / "results"
    path.write_text("someone's file")
    assert train.main([*DRY_RUN, "--run-dir", str(path)]) == 2
    assert "is a file" in one_error_line(capsys)
    assert path.read_text() == "someone's file"
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["results"]


def test_a_refusal_is_one_line_in_a_real_process(tmp_path):
    """What a user sees: TensorFlow's start-up chatter must not bury the one line."""
    path = tmp_path / "results"
    path.write_text("someone's file")
    done = subprocess.run([sys.executable, "train.py", *DRY_RUN, "--run-dir", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: refusing"), done.stderr
    assert done.stdout == ""


def test_the_runs_folder_itself_is_refused(tmp_path, good_run, monkeypatch, capsys):
    """Seen: --run-dir runs would have replaced every run at once."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(good_run, tmp_path / "runs" / "convnet_mnist")
    before = tree_digest(tmp_path / "runs")
    assert train.main([*DRY_RUN, "--run-dir", "runs"]) == 2
    assert "holds all runs" in one_error_line(capsys)
    assert tree_digest(tmp_path / "runs") == before


@pytest.mark.parametrize("where", [".", "..", "home"])
def test_the_current_folder_its_parents_and_home_are_refused(tmp_path, monkeypatch, capsys, where):
    project = tmp_path / "home" / "code" / "project"
    project.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(project)
    run_dir = str(tmp_path / "home") if where == "home" else where
    assert train.main([*DRY_RUN, "--run-dir", run_dir]) == 2
    assert ("home folder" if where == "home" else "holds the current folder") in one_error_line(capsys)
    assert list(project.iterdir()) == []


def test_a_run_holding_other_files_is_refused_naming_them(tmp_path, good_run, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    (run_dir / "my notes.txt").write_text("thoughts about this run")
    before = tree_digest(run_dir)
    assert train.main([*DRY_RUN, "--run-dir", str(run_dir)]) == 2
    assert "my notes.txt" in one_error_line(capsys)
    assert tree_digest(run_dir) == before


def test_a_symbolic_link_is_refused(tmp_path, good_run):
    (tmp_path / "link").symlink_to(good_run, target_is_directory=True)
    assert "symbolic link" in runs.refusal(tmp_path / "link")


def test_a_run_without_a_record_is_read_but_never_replaced(tmp_path, good_run, capsys):
    """A run of a version before the records (or any copy whose record is lost) is still a run to read, but
    nothing proves its files are ours, so train.py does not replace it."""
    run_dir = tmp_path / "old"
    shutil.copytree(good_run, run_dir)
    (run_dir / atomic.RECORD).unlink()
    before = tree_digest(run_dir)
    assert runs.is_run(run_dir) and "kept no record" in runs.refusal(run_dir)
    assert train.main([*DRY_RUN, "--run-dir", str(run_dir)]) == 2
    assert "kept no record" in one_error_line(capsys)
    assert tree_digest(run_dir) == before


def test_a_run_file_edited_by_hand_is_no_longer_ours(tmp_path, good_run, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "note": "checked by hand"}))
    before = tree_digest(run_dir)
    assert train.main([*DRY_RUN, "--run-dir", str(run_dir)]) == 2
    assert "metrics.json" in one_error_line(capsys)
    assert tree_digest(run_dir) == before


def test_an_existing_run_is_replaced_whole(tmp_path, good_run, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    atomic.write_json(run_dir / "evaluation.json", {})  # evaluate.py's, from the earlier run
    # The new run an mlp (the smallest model; good_run's is a convnet): what is checked is the folder, not the model.
    assert train.main([*DRY_RUN, "--model", "mlp", "--run-dir", str(run_dir), "--seed", "3"]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["seed"] == 3 and config["model"] == "mlp"
    assert not (run_dir / "evaluation.json").exists()  # it described the old model
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.lock", "run"]
    assert atomic.foreign_entries(run_dir) == []  # every file of the new run is recorded


def test_publishing_rechecks_the_folder_and_keeps_the_new_run_if_refused(tmp_path, good_run):
    """Files put into the run folder while training ran are not deleted by the swap at the end."""
    run_dir, staging = tmp_path / "run", tmp_path / ".run.partial"
    shutil.copytree(good_run, run_dir)
    shutil.copytree(good_run, staging)
    (run_dir / "added meanwhile.txt").write_text("mine")
    with pytest.raises(UserError, match="added meanwhile.txt"):
        runs.publish(staging, run_dir)
    assert (run_dir / "added meanwhile.txt").exists() and (staging / "model.keras").exists()


def test_stale_staging_folders_are_removed_by_the_next_run(tmp_path, good_run):
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, tmp_path / ".run.k3j9_x2a.tmp")  # a swap killed before its first rename
    (tmp_path / ".run.p0q1r2s3.previous").mkdir()  # the placeholder of a swap killed just before it
    staging = atomic.make_folder(runs.staging_dir(run_dir), "")
    resume.TrainingState(staging / runs.TRAINING_STATE_DIR, {"seed": 99}).clear()  # another command's, killed
    (tmp_path / ".run.notes").mkdir()
    (tmp_path / ".run.notes" / "diary.txt").write_text("someone's")  # not ours: kept
    assert train.main([*DRY_RUN, "--model", "mlp", "--run-dir", str(run_dir)]) == 0  # the smallest model will do
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.lock", ".run.notes", "run"]


def test_a_run_killed_between_the_two_renames_is_put_back(tmp_path, good_run, capsys):
    """A power cut between publish's renames leaves the old run under .NAME.xxxxxxxx.previous: the next run
    puts it back first, and a refused next run leaves it in place."""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, tmp_path / ".run.a1b2c3d4.previous")
    before = tree_digest(tmp_path / ".run.a1b2c3d4.previous")
    runs.remove_stale_staging(run_dir)
    assert tree_digest(run_dir) == before and sorted(path.name for path in tmp_path.iterdir()) == ["run"]


def test_a_foreign_folder_with_the_staging_name_is_refused_not_deleted(tmp_path, capsys):
    staging = runs.staging_dir(tmp_path / "run")
    staging.mkdir()
    (staging / "diary.txt").write_text("someone's")
    assert train.main([*DRY_RUN, "--run-dir", str(tmp_path / "run")]) == 2
    assert "is in the way" in one_error_line(capsys)
    assert (staging / "diary.txt").read_text() == "someone's"


# ------------------------------------------------------------------ divergence and strict JSON


def test_divergence_stops_at_once_and_keeps_the_previous_run(tmp_path, good_run, capsys):
    """Seen: --learning-rate 1e9 went on to the end and replaced the good run with "test_loss": NaN."""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    before = tree_digest(run_dir)
    code = train.main(["--dataset", "synthetic", "--limit", "512", "--epochs", "3", "--learning-rate", "1e9",
                       "--run-dir", str(run_dir)])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert error.startswith("error: training diverged") and "--learning-rate" in error
    assert tree_digest(run_dir) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.lock", "run"]


def test_the_divergence_callback_names_epoch_and_step():
    guard = resume.StopOnDivergence()
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(4, {"loss": 2.3})
    with pytest.raises(resume.TrainingDiverged, match="epoch 2, step 6"):
        guard.on_train_batch_end(5, {"loss": float("nan")})
    with pytest.raises(resume.TrainingDiverged, match="val_loss is inf"):
        guard.on_epoch_end(1, {"loss": 2.0, "val_loss": float("inf")})


def test_json_files_never_hold_nan_or_infinity(tmp_path):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"test_loss": 0.25})
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            atomic.write_json(path, {"test_loss": bad})
    assert json.loads(path.read_text()) == {"test_loss": 0.25}
    assert sorted(entry.name for entry in tmp_path.iterdir()) == [atomic.RECORD, "metrics.json"]  # no temporary left


def test_every_json_a_run_holds_is_strict(good_run):
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    found = sorted(path.relative_to(good_run).as_posix() for path in good_run.rglob("*.json"))
    assert {"config.json", "metrics.json"} <= set(found)  # a run without its JSON would pass vacuously
    for path in found:
        json.loads((good_run / path).read_text(), parse_constant=refuse)


# ------------------------------------------------------------------ kill, Ctrl-C and resume

# Bit for bit at any size; enough epochs after the second (where the kill comes) that the run is still going then.
RESUMABLE_EPOCHS = 6
RESUMABLE = ["--dataset", "synthetic", "--limit", "400", "--epochs", str(RESUMABLE_EPOCHS)]


def start_training(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train.py", *RESUMABLE, "--run-dir", str(run_dir), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def saved_state(run_dir: Path, epoch: int) -> Path:
    return runs.staging_dir(run_dir) / runs.TRAINING_STATE_DIR / f"epoch-{epoch:04d}.keras"


def stop_trainings(stops: list[tuple[Path, int, signal.Signals]]) -> list[tuple[int, str]]:
    """Start one train.py per (run folder, epoch, signal), all at once, and send each its signal once that epoch
    of its run is saved; their exit statuses and stderr. (Together, their start-ups overlap.)"""
    processes = [start_training(run_dir) for run_dir, _, _ in stops]
    waiting = dict(enumerate(stops))
    deadline = time.monotonic() + 180
    while waiting:
        for index, (run_dir, epoch, how) in list(waiting.items()):
            process = processes[index]
            if saved_state(run_dir, epoch).exists():
                process.send_signal(how)
                del waiting[index]
            else:
                assert process.poll() is None, \
                    f"training ended before epoch {epoch} was saved: {process.stderr.read()}"
        assert time.monotonic() < deadline, "no saved epoch after three minutes"
        time.sleep(0.02)
    results = []
    for process in processes:
        _, error = process.communicate(timeout=120)
        results.append((process.returncode, error))
    return results


def finish(run_dir: Path, capsys, *extra: str) -> str:
    """Run the same command (or another, with `extra`) to its end, as a user would after the stop; its stdout.

    In this process: what is checked is the state the stopped process left and what train.py does with it,
    not how a process starts (the stop itself is a real process's, above)."""
    capsys.readouterr()
    with without_serving_files():  # what is compared is the training; tests/serving/ checks the exports
        code = train.main([*RESUMABLE, "--run-dir", str(run_dir), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def weights(run_dir: Path) -> list[np.ndarray]:
    return keras.saving.load_model(run_dir / runs.MODEL_FILE).get_weights()


def assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    """Bit for bit: every weight, the test figures and the whole history."""
    for mine, theirs in zip(weights(resumed), weights(uninterrupted), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for key in ("test_accuracy", "test_loss", "epochs"):
        assert json.loads((resumed / "metrics.json").read_text())[key] == \
            json.loads((uninterrupted / "metrics.json").read_text())[key], key
    assert (resumed / "history.csv").read_text() == (uninterrupted / "history.csv").read_text()


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict[str, tuple[Path, int, str]]:
    """Two train.py processes, never changed after: "killed" was killed (SIGKILL) once epoch 2 was saved,
    "interrupted" was sent Ctrl-C (SIGINT) once epoch 1 was; {name: (its run folder, exit status, stderr)}.
    The tests resume (or start fresh from) a copy of the staging folder each left, as if they had stopped a
    process of their own."""
    folder = tmp_path_factory.mktemp("stopped")
    stops = {"killed": (folder / "killed", 2, signal.SIGKILL),
             "interrupted": (folder / "interrupted", 1, signal.SIGINT)}
    results = stop_trainings(list(stops.values()))
    return {name: (stop[0], *result) for (name, stop), result in zip(stops.items(), results)}


@pytest.fixture(scope="module")
def killed(stopped) -> Path:
    """The staging folder the killed train.py left behind."""
    run_dir, _, _ = stopped["killed"]
    assert not run_dir.exists()
    return runs.staging_dir(run_dir)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, killed) -> Path:
    """The same command with --fresh, into a folder holding a copy of the killed run's state: it must train from
    the first epoch to the last as if the state were not there (checked here), so it is also the uninterrupted run
    that a resumed one must equal: one training of the whole run serves both checks."""
    run_dir = tmp_path_factory.mktemp("fresh") / "run"
    copy_staging(killed, run_dir)
    assert runs.staging_dir(run_dir).is_dir()  # a state it could resume from
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture), without_serving_files():
        assert train.main([*RESUMABLE, "--run-dir", str(run_dir), "--fresh"]) == 0
    out = capture.getvalue()
    assert "resuming" not in out
    epochs = [line.split()[1] for line in out.splitlines() if line.startswith("Epoch ")]
    assert epochs == [f"{epoch}/{RESUMABLE_EPOCHS}" for epoch in range(1, RESUMABLE_EPOCHS + 1)]  # from the first
    assert not runs.staging_dir(run_dir).exists()  # the state it did not use is gone with the finished run
    return run_dir


def copy_staging(staging: Path, run_dir: Path) -> None:
    """Put a copy of a stopped run's staging folder where a run into run_dir keeps its own."""
    shutil.copytree(staging, runs.staging_dir(run_dir))


def test_a_killed_run_resumes_to_the_same_weights_and_fresh_ignores_its_state(tmp_path, killed, uninterrupted, capsys):
    """Seen: a kill lost all progress and left a hidden staging folder behind."""
    run_dir = tmp_path / "run"
    copy_staging(killed, run_dir)  # the kill left no run folder (checked in `killed`), only the staging one
    out = finish(run_dir, capsys)
    resumed_from = int(out.split("resuming", 1)[1].split("after epoch ")[1].split()[0])
    assert 2 <= resumed_from < RESUMABLE_EPOCHS
    assert_same_run(run_dir, uninterrupted)
    assert sorted(path.name for path in tmp_path.iterdir()) == [".run.lock", "run"]


def test_ctrl_c_says_how_to_resume_and_a_different_command_starts_fresh(tmp_path, stopped, capsys):
    interrupted, status, error = stopped["interrupted"]
    run_dir = tmp_path / "run"
    copy_staging(runs.staging_dir(interrupted), run_dir)
    assert status == 130
    assert "Traceback" not in error
    last = error.strip().splitlines()[-1]
    assert last.startswith("interrupted after") and "run the same command again to resume" in last
    # Another command for the same folder, cut short: what is checked is that it starts fresh and ends.
    out = finish(run_dir, capsys, "--seed", "0", "--batch-size", "64", "--epochs", "2")
    assert "other settings" in out and "starting fresh" in out and "resuming" not in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["batch_size"] == 64 and config["epochs"] == 2


class _PressCtrlC(keras.callbacks.Callback):
    """Sends this process SIGINT at the start of a given step, as a user's Ctrl-C would."""

    def __init__(self, at_step: int):
        super().__init__()
        self.at_step, self.steps_done = at_step, 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.steps_done == self.at_step:
            os.kill(os.getpid(), signal.SIGINT)

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done += 1


def test_ctrl_c_in_fit_stops_it_after_that_step_and_gives_ctrl_c_back():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    data = np.zeros((64, 4), np.float32), np.zeros((64, 1), np.float32)
    before = signal.getsignal(signal.SIGINT)
    interrupt, pressed = resume.StopOnInterrupt(), _PressCtrlC(at_step=3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(*data, batch_size=8, epochs=5, verbose=0, callbacks=[pressed, interrupt])
    interrupt.restore()
    assert pressed.steps_done == 4  # the step during which Ctrl-C came was finished, no other began
    assert signal.getsignal(signal.SIGINT) is before
    # Without Ctrl-C, fit runs to its end and leaves the handler as it was.
    model.fit(*data, batch_size=8, epochs=1, verbose=0, callbacks=[resume.StopOnInterrupt()])
    assert signal.getsignal(signal.SIGINT) is before


# ------------------------------------------------------------------ two writers at once


LOCK_HOLDER = """
import sys, time
from harness import runs
with runs.locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path, capsys):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(run_dir)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert train.main([*DRY_RUN, "--run-dir", str(run_dir)]) == 2
        assert "another train.py is writing" in one_error_line(capsys)
        assert not run_dir.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with runs.locked(run_dir):  # a killed holder leaves nothing stuck
        pass


# ------------------------------------------------------------------ TensorBoard


def test_tensorboard_logs_hold_per_epoch_scalars_and_the_learning_rate(tmp_path):
    run_dir = tmp_path / "run"
    assert train.main(["--dataset", "synthetic", "--model", "mlp", "--limit", "300", "--epochs", "2", "--tensorboard",
                       "--run-dir", str(run_dir)]) == 0  # the smallest model: what is checked is the logs
    events = list((run_dir / runs.LOGS_DIR / "train").glob("events.out.tfevents.*"))
    assert events, "no training event file"
    steps_by_tag: dict[str, list[int]] = {}
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        for value in event.summary.value:
            steps_by_tag.setdefault(value.tag, []).append(event.step)
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert steps_by_tag.get(tag) == [0, 1], (tag, sorted(steps_by_tag))
    assert list((run_dir / runs.LOGS_DIR / "validation").glob("events.out.tfevents.*"))
