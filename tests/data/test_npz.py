"""Bring-your-own .npz data sets: valid files train end to end; each malformed one gets one clear line."""

import hashlib
import json
import pickle

import numpy as np
import pytest

import evaluate
import train
from data import DataError, load_dataset
from data.npz import load_npz


def write_npz(path, train_count=120, test_count=40, shape=(20, 24), classes=4, **overrides):
    """A small valid file in the Keras mnist.npz layout; `overrides` replace or (with None) drop keys."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (train_count, *shape), dtype=np.uint8),
        "y_train": np.arange(train_count) % classes,
        "x_test": rng.integers(0, 256, (test_count, *shape), dtype=np.uint8),
        "y_test": np.arange(test_count) % classes,
    }
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


@pytest.mark.parametrize("shape, expected",
                         [((20, 24), (20, 24, 1)), ((32, 32, 3), (32, 32, 3)), ((16, 16, 1), (16, 16, 1))])
def test_valid_file_loads_with_shape_and_classes_from_the_file(tmp_path, shape, expected):
    path = write_npz(tmp_path / "mine.npz", shape=shape, classes=4)
    digits = load_dataset(str(path), tmp_path / "unused")
    assert digits.name == "mine" and digits.input_shape == expected and digits.num_classes == 4
    assert digits.x_train.dtype == np.uint8 and digits.y_train.dtype == np.int32
    with np.load(path) as archive:  # pixels and labels come through unchanged
        np.testing.assert_array_equal(digits.x_train.reshape(archive["x_train"].shape), archive["x_train"])
        np.testing.assert_array_equal(digits.y_test, archive["y_test"])


@pytest.mark.parametrize("shape, model", [((20, 24), "convnet"), ((32, 32, 3), "mlp")])
def test_valid_files_train_and_evaluate_end_to_end(tmp_path, shape, model):
    path = write_npz(tmp_path / "street.npz", shape=shape, classes=3)
    run_dir = tmp_path / "run"
    assert train.main(["--dataset", str(path), "--model", model, "--dry-run", "--run-dir", str(run_dir)]) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"] == str(path.resolve())
    assert config["dataset_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert config["num_classes"] == 3 and config["input_shape"][:2] == list(shape[:2])
    assert evaluate.main(["--run-dir", str(run_dir)]) == 0
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert set(evaluation["per_class"]) == {"0", "1", "2"} and evaluation["test_images"] == 40


def test_default_run_folder_is_named_after_the_file(tmp_path, monkeypatch):
    path = write_npz(tmp_path / "bus_numbers.npz")
    monkeypatch.chdir(tmp_path)
    assert train.main(["--dataset", str(path), "--model", "mlp", "--dry-run"]) == 0
    assert (tmp_path / "runs" / "mlp_bus_numbers" / "model.keras").is_file()


class Payload:
    """Pickled into a file to prove that loading never unpickles."""


MALFORMED = {
    "missing key": (dict(y_test=None), "lacks y_test"),
    "wrong dtype": (dict(x_train=np.zeros((120, 20, 24), np.float32)), "uint8"),
    "wrong shape": (dict(x_test=np.zeros((40, 20, 24, 2), np.uint8)), "C 1 or 3"),
    "shapes differ": (dict(x_test=np.zeros((40, 20, 20), np.uint8)), "one shape"),
    "lengths differ": (dict(y_train=np.zeros(119, np.int64)), "lengths must match"),
    "negative label": (dict(y_train=np.full(120, -1)), "0..K-1"),
    "label out of range": (dict(y_test=np.full(40, 9)), "never occurs in y_train"),
    "label gap": (dict(y_train=np.array([0, 1, 2, 99] * 30)), r"never use 3\.\.98 \(96 classes\)"),
    "sentinel 255": (dict(y_train=np.array([0, 1, 2, 3, 255] * 24, np.uint8)), r"drop the images labelled 255"),
    "label beyond int32": (dict(y_train=np.arange(120) % 4 + 2 ** 40), "0..K-1"),
    "float labels": (dict(y_train=np.zeros(120, np.float32)), "whole numbers"),
    "empty split": (dict(x_test=np.zeros((0, 20, 24), np.uint8), y_test=np.zeros(0, np.int64)), "empty"),
    "pickle inside": (dict(y_train=np.array([Payload()] * 120, dtype=object)), "pickled"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_is_one_clear_line_and_writes_nothing(tmp_path, capsys, case):
    overrides, words = MALFORMED[case]
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DataError, match=words):
        load_npz(path)
    run_dir = tmp_path / "run"
    assert train.main(["--dataset", str(path), "--dry-run", "--run-dir", str(run_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and "bad.npz" in error
    # Only the run's lock (an empty file beside it) may appear; no run, no staging folder.
    assert not run_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) in (["bad.npz"], [".run.lock", "bad.npz"])


@pytest.mark.parametrize("content, words", [
    (b"not a zip file at all", "not a readable .npz"),
    (None, "single array"),
    (b"", "not a readable .npz"),
])
def test_files_that_are_not_npz_archives(tmp_path, content, words):
    path = tmp_path / "odd.npz"
    if content is None:
        with open(path, "wb") as stream:  # a plain .npy array saved under an .npz name
            np.save(stream, np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=words):
        load_npz(path)


def test_missing_file_and_unknown_names(tmp_path, capsys):
    with pytest.raises(DataError, match="does not exist"):
        load_npz(tmp_path / "nowhere.npz")
    with pytest.raises(SystemExit) as stop:
        train.main(["--dataset", "cifar10"])
    assert stop.value.code == 2 and ".npz" in capsys.readouterr().err


def test_pickle_payload_is_never_executed(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x_train=np.array([pickle.dumps(Payload())], dtype=object))
    with pytest.raises(DataError):
        load_npz(path)


@pytest.mark.parametrize("train_labels, missing", [
    ([0, 1, 2, 99], "3..98 (96 classes)"),
    ([1, 2, 3], "0"),
    ([0, 2, 5, 9], "1, 3..4, 6..8 (6 classes)"),
    ([0, 2, 4, 6, 8, 10, 12], "1, 3, 5 and 3 more (6 classes)"),
])
def test_label_gaps_are_refused_naming_the_missing_classes(tmp_path, capsys, train_labels, missing):
    path = write_npz(tmp_path / "gaps.npz", y_train=np.resize(train_labels, 120), y_test=np.zeros(40, np.int64))
    with pytest.raises(DataError) as refused:
        load_npz(path)
    message = str(refused.value)
    assert f"never use {missing}, so the model" in message
    assert "numpy.unique(y, return_inverse=True)" in message and f"labelled {max(train_labels)}" in message
    # Through the script: one line, status 2, nothing written.
    assert train.main(["--dataset", str(path), "--dry-run", "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and missing in error and not (tmp_path / "run").exists()


def test_missing_classes_listed_are_exactly_the_absent_ones(tmp_path):
    # Against an independent count: every class up to the largest label, minus the ones present. The message
    # spells out the first few runs of missing classes, then "and N more", then the total.
    rng = np.random.default_rng(3)
    for trial in range(16):
        labels = rng.integers(0, rng.integers(5, 60), 120)
        expected = sorted(set(range(labels.max() + 1)) - set(labels.tolist()))
        path = write_npz(tmp_path / f"trial{trial}.npz", y_train=labels, y_test=np.zeros(40, np.int64))
        if not expected:
            assert load_npz(path).num_classes == labels.max() + 1
            continue
        with pytest.raises(DataError) as refused:
            load_npz(path)
        text = str(refused.value).split("never use ")[1].split(", so the model")[0]
        text, _, total = text.partition(" (")
        spelt, _, more = text.partition(" and ")
        listed = []
        for part in spelt.split(", "):
            first, _, last = part.partition("..")
            listed += range(int(first), int(last or first) + 1)
        assert listed == (expected[:len(listed)] if more else expected), text
        assert total == (f"{len(expected)} classes)" if len(expected) > 1 else "")


def test_test_split_may_lack_classes_but_the_training_split_may_not(tmp_path):
    # y_test without class 3 is fine: the model learnt it and is simply not tested on it.
    digits = load_npz(write_npz(tmp_path / "fine.npz", y_test=np.arange(40) % 3))
    assert digits.num_classes == 4 and set(digits.y_test) == {0, 1, 2}
