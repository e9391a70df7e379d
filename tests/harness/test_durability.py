"""What the project writes survives a crash, a full disk and a read-only folder, and never replaces a user's file.

Issue 23: the order of fsync and rename checked by a recording wrapper; a crash
simulated just before and just after every rename; a full disk raised from the
write and met on a real small filesystem; a read-only run; a damaged training
state; a second train.py while the first is saving; the writers that replaced a
user's file (visualize.py --model-file, predict.py --show); a model whose loss is
someone's own code.
"""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import predict
import train
import visualize
from conftest import DRY_RUN, one_error_line, tree_digest
from harness.errors import UserError
from harness import atomic, model_files, runs

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ durable: fsync before rename, folder after


class Recorder:
    """Wraps os.fsync and os.replace, noting (call, path) in order; `crash` raises at one replace, before or
    after it happens."""

    def __init__(self, monkeypatch, crash: tuple[int, str] | None = None):
        self.calls: list[tuple[str, str]] = []
        self.crash = crash
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(handle):
            self.calls.append(("fsync", os.readlink(f"/proc/self/fd/{handle}")))
            real_fsync(handle)

        def replace(source, destination):
            number = sum(call == "replace" for call, _ in self.calls)
            self.calls.append(("replace", f"{source} -> {destination}"))
            if self.crash == (number, "before"):
                raise SimulatedCrash
            real_replace(source, destination)
            if self.crash == (number, "after"):
                raise SimulatedCrash

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)


class SimulatedCrash(Exception):
    pass


def test_a_file_reaches_the_disk_before_its_rename_and_the_folder_after(tmp_path, monkeypatch):
    recorder = Recorder(monkeypatch)
    atomic.write_bytes(tmp_path / "model.tflite", b"new bytes")
    calls = recorder.calls
    renamed = calls.index(next(call for call in calls if call[0] == "replace" and call[1].endswith("model.tflite")))
    temporary = calls[renamed][1].split(" -> ")[0]
    assert ("fsync", temporary) in calls[:renamed]  # the data first
    assert ("fsync", str(tmp_path)) in calls[renamed + 1:]  # then the name, in the folder
    assert (tmp_path / "model.tflite").read_bytes() == b"new bytes"


def test_a_folder_swap_reaches_the_disk_file_by_file_before_its_renames(tmp_path, monkeypatch):
    with atomic.replacing_folder(tmp_path / "saved_model"):
        pass
    recorder = Recorder(monkeypatch)
    with atomic.replacing_folder(tmp_path / "saved_model") as new:
        (new / "variables").mkdir()
        (new / "variables" / "data").write_bytes(b"weights")
        (new / "saved_model.pb").write_bytes(b"graph")
    calls = recorder.calls
    first_rename = next(index for index, call in enumerate(calls) if call[0] == "replace")
    synced = {path for call, path in calls[:first_rename] if call == "fsync"}
    assert {str(new / "variables" / "data"), str(new / "saved_model.pb"), str(new / "variables"), str(new)} <= synced
    last_rename = max(index for index, call in enumerate(calls) if call[0] == "replace" and "saved_model" in call[1])
    assert ("fsync", str(tmp_path)) in calls[last_rename + 1:]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("rename", [0, 1, 2])
def test_a_crash_at_any_rename_leaves_the_old_file_or_the_new_one_proven_ours(tmp_path, monkeypatch, rename, when):
    """Rename 0 puts the record naming both digests in place, rename 1 the file, rename 2 the record naming the
    new digest alone. Seen: a run killed between the file's rename and its record's could not be resumed."""
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"accuracy": 0.5})
    Recorder(monkeypatch, crash=(rename, when))
    with pytest.raises(SimulatedCrash):
        atomic.write_json(path, {"accuracy": 0.9})
    assert json.loads(path.read_text()) in ({"accuracy": 0.5}, {"accuracy": 0.9})  # whole, either one
    assert [entry.name for entry in tmp_path.iterdir() if atomic.is_leftover(entry.name)] == []
    assert atomic.is_ours(path)  # whichever it is, the record proves it ours: it may be replaced again
    monkeypatch.undo()
    atomic.write_json(path, {"accuracy": 1.0})
    assert json.loads(path.read_text()) == {"accuracy": 1.0}
    assert isinstance(atomic.read_record(tmp_path)["metrics.json"], str)  # the new digest alone once more


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("rename", [0, 1])
def test_a_crash_in_a_folder_swap_leaves_the_old_folder_or_the_new_one(tmp_path, monkeypatch, rename, when):
    """Rename 0 moves the old folder aside, rename 1 moves the new one in: a failure there puts the old one back."""
    folder = tmp_path / "saved_model"
    with atomic.replacing_folder(folder) as new:
        (new / "saved_model.pb").write_bytes(b"old")
    Recorder(monkeypatch, crash=(rename, when))
    with pytest.raises(SimulatedCrash):
        with atomic.replacing_folder(folder) as new:
            (new / "saved_model.pb").write_bytes(b"new")
    assert (folder / "saved_model.pb").read_bytes() in (b"old", b"new")
    assert [entry.name for entry in tmp_path.iterdir() if atomic.is_leftover(entry.name)] == []


def test_a_failure_between_a_runs_swap_renames_puts_the_old_run_back_at_once(tmp_path, good_run, monkeypatch):
    """(A power cut there, which no handler sees, is test_reliability's: the next run puts the old one back.)"""
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    before = tree_digest(run_dir)
    staging = tmp_path / ".run.partial"
    shutil.copytree(good_run, staging)
    real_replace = os.replace

    def fail_after_the_first(source, destination):  # the old run moved aside, then the second rename fails
        real_replace(source, destination)
        monkeypatch.setattr(os, "replace", failing)

    def failing(source, destination):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "replace", fail_after_the_first)
    with pytest.raises(OSError, match="Input/output error"):
        runs.publish(staging, run_dir)
    monkeypatch.undo()
    assert tree_digest(run_dir) == before
    assert [entry.name for entry in tmp_path.iterdir() if atomic.is_leftover(entry.name)] == []


# ------------------------------------------------------------------ a full disk


def test_a_full_disk_while_saving_the_model_keeps_the_last_run(tmp_path, good_run, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(good_run, run_dir)
    before = tree_digest(run_dir)
    real_write_bytes = Path.write_bytes

    def full(self, data):
        if "model.keras" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    assert train.main([*DRY_RUN, "--run-dir", str(run_dir), "--seed", "1"]) == 1
    error = one_error_line(capsys)
    assert "is full" in error and "MB to write" in error and str(tmp_path / ".run.partial") in error
    assert tree_digest(run_dir) == before


@pytest.fixture
def small_disk(tmp_path):
    """A real 24 MB filesystem (tmpfs), or a skip where this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_bytes: int) -> None:
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as stream:
        stream.write(b"\0" * max(0, free - leave_bytes))


def test_a_full_real_disk_ends_in_one_line_and_keeps_the_last_run(small_disk, good_run):
    """Seen: a segmentation fault inside h5py (exit 139) when the training state's weights hit the full disk
    with 1 MB free (with 4 MB free the same run ended in the SavedModel export, in one line)."""
    run_dir = small_disk / "run"
    shutil.copytree(good_run, run_dir)  # the last good run, on the small disk
    command = [sys.executable, "train.py", *DRY_RUN, "--run-dir", str(run_dir)]
    before = tree_digest(run_dir)
    fill(small_disk, 1 << 20)
    done = subprocess.run([*command, "--seed", "1"], cwd=ROOT, capture_output=True, text=True)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr[-2000:]
    assert last.startswith("error: the disk holding") and "is full" in last and "Traceback" not in done.stderr
    assert tree_digest(run_dir) == before


# ------------------------------------------------------------------ read-only folders


@pytest.fixture
def read_only_run(small_disk, good_run):
    """good_run's copy on a filesystem remounted read-only (permissions would not stop root)."""
    shutil.copytree(good_run, small_disk / "run")
    remounted = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True)
    if remounted.returncode != 0:
        pytest.skip("cannot remount read-only here")
    return small_disk / "run"


def test_a_read_only_run_is_refused_in_one_line(read_only_run, capsys):
    before = tree_digest(read_only_run)
    assert visualize.main(["--run-dir", str(read_only_run), "--layer", "conv1", "--dataset", "synthetic"]) == 1
    assert "Read-only file system" in one_error_line(capsys)
    assert train.main([*DRY_RUN, "--run-dir", str(read_only_run)]) == 1
    assert "Read-only file system" in one_error_line(capsys)
    assert tree_digest(read_only_run) == before


# ------------------------------------------------------------------ damaged training state, two writers


# The smallest model: what is checked is how a saved state is read, not what it holds.
DAMAGED_RUN = ["--dataset", "synthetic", "--model", "mlp", "--limit", "256", "--epochs", "1"]


def interrupted_state(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(run folder, the state's model file) of a two-epoch run stopped after its first epoch."""
    run_dir = tmp_path / "run"
    real_save = model_files.save_model

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_files, "save_model", stop)  # stopped after training, before the run is saved
    assert train.main([*DAMAGED_RUN, "--run-dir", str(run_dir)]) != 0
    monkeypatch.setattr(model_files, "save_model", real_save)
    state = runs.staging_dir(run_dir) / runs.TRAINING_STATE_DIR / "epoch-0001.keras"
    assert state.is_file()
    return run_dir, state


def test_a_damaged_training_state_is_refused_and_fresh_starts_over(tmp_path, monkeypatch, capsys):
    run_dir, state = interrupted_state(tmp_path, monkeypatch)
    capsys.readouterr()
    data = state.read_bytes()
    middle = len(data) // 2
    command = [*DAMAGED_RUN, "--run-dir", str(run_dir)]
    for damaged in (data[:middle], data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]):  # cut, edited
        state.write_bytes(damaged)
        assert train.main(command) == 2
        error = one_error_line(capsys)
        assert "cut short or changed" in error and "--fresh" in error and state.name in error
        assert not run_dir.exists() and state.read_bytes() == damaged  # nothing trained, nothing removed
    assert train.main([*command, "--fresh"]) == 0 and (run_dir / "model.keras").is_file()


def test_a_second_train_is_refused_while_the_first_is_saving(tmp_path, monkeypatch, capfd):
    """Also: the TFLite quantiser's settings line ("fully_quantize: 0, ...") reaches neither stdout nor stderr."""
    run_dir = tmp_path / "run"
    real_save = model_files.save_model
    seen = {}

    def save_and_meanwhile(*args, **kwargs):
        seen["second"] = train.main([*DRY_RUN, "--run-dir", str(run_dir), "--seed", "5"])
        seen["error"] = capfd.readouterr().err
        return real_save(*args, **kwargs)

    monkeypatch.setattr(model_files, "save_model", save_and_meanwhile)
    assert train.main([*DRY_RUN, "--run-dir", str(run_dir)]) == 0
    assert seen["second"] == 2 and "another train.py is writing" in seen["error"]
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 0
    out, err = capfd.readouterr()
    assert "fully_quantize" not in out + err and out.strip().splitlines()[-1].startswith("test accuracy")


# ------------------------------------------------------------------ writers into a user's folder


def test_visualize_beside_a_model_file_keeps_a_users_figure(tmp_path, good_run, capsys):
    """Seen: visualize.py --model-file replaced the user's own figures/conv2_feature_maps.png."""
    shutil.copy(good_run / "model.keras", tmp_path / "model.keras")
    mine = tmp_path / "figures" / "conv2_feature_maps.png"
    mine.parent.mkdir()
    Image.new("L", (8, 8), 200).save(mine)
    before = mine.read_bytes()
    command = ["--model-file", str(tmp_path / "model.keras"), "--layer", "conv2", "--dataset", "synthetic"]
    assert visualize.main(command) == 2
    error = one_error_line(capsys)
    assert str(mine) in error and "--out" in error
    assert mine.read_bytes() == before and sorted(path.name for path in mine.parent.iterdir()) == [mine.name]
    assert visualize.main([*command, "--out", str(tmp_path / "drawn")]) == 0
    assert (tmp_path / "drawn" / "conv2_feature_maps.png").is_file()
    assert visualize.main([*command, "--out", str(tmp_path / "drawn")]) == 0  # its own figures it replaces


def test_predict_show_keeps_a_users_picture(tmp_path, good_run, capsys):
    """Seen: predict.py --show replaced the user's digit_seen.png."""
    photo = tmp_path / "digit.png"
    Image.fromarray(np.pad(np.full((12, 4), 255, np.uint8), 8)).save(photo)
    mine = tmp_path / "digit_seen.png"
    mine.write_bytes(b"my own picture")
    command = [str(photo), "--run-dir", str(good_run), "--show", "--show-dir", str(tmp_path)]
    assert predict.main(command) == 2
    error = one_error_line(capsys)
    assert str(mine) in error and "--show-dir" in error
    assert mine.read_bytes() == b"my own picture"
    shown = tmp_path / "shown"
    assert predict.main([*command[:-1], str(shown)]) == 0 and (shown / "digit_seen.png").is_file()
    assert predict.main([*command[:-1], str(shown)]) == 0  # its own picture it replaces


# ------------------------------------------------------------------ loading without compiling


@keras.saving.register_keras_serializable(package="someone")
def their_loss(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred))


def test_a_model_compiled_with_someones_own_loss_loads_for_inference(tmp_path):
    inputs = keras.Input((28, 28, 1), name="pixels")
    outputs = keras.layers.Dense(10, activation="softmax", name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=their_loss)
    model.save(tmp_path / "theirs.keras")
    keras.saving.get_custom_objects().pop("someone>their_loss")  # a process without their code
    loaded = model_files.load_model(tmp_path / "theirs.keras")
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
    assert not loaded.compiled


def test_refusing_a_users_file_names_it_and_the_flag(tmp_path):
    (tmp_path / "report.json").write_text("mine")
    with pytest.raises(UserError, match=r"refusing to replace .*report\.json: this project did not write it.*--out"):
        atomic.write_json(tmp_path / "report.json", {}, elsewhere="another --out")
    assert (tmp_path / "report.json").read_text() == "mine"
