"""evaluate.py --dataset: a trained model measured on another data set's test split, in the model's convention."""

import json
import shutil

import numpy as np
import pytest

import evaluate
from data.conventions import dark_ink_to_mnist
from data.cvl import load_cvl_digits
from harness import model_files
from tests.conftest import one_error_line, tree_digest
from tests.data.test_cvl import scan, write_cvl


@pytest.fixture
def run_and_data(good_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    write_cvl(tmp_path / "data", writers_train=tuple(range(10, 40)), writers_test=tuple(np.repeat(np.arange(8), 5)))
    return run, tmp_path / "data"


def predicted(run, images: np.ndarray) -> np.ndarray:
    model = model_files.load_model(run / "model.keras")
    return model.predict(images.astype(np.float32) / 255, verbose=0).argmax(axis=1)


def test_evaluate_on_cvl_measures_the_converted_test_split_into_files_of_its_own(run_and_data):
    run, data_dir = run_and_data
    before = tree_digest(run)
    assert evaluate.main(["--run-dir", str(run), "--dataset", "cvl-digits", "--data-dir", str(data_dir)]) == 0
    cvl = load_cvl_digits(data_dir)
    right = predicted(run, cvl.x_test) == cvl.y_test
    result = json.loads((run / "evaluation-cvl-digits.json").read_text())
    assert result["dataset"] == "cvl-digits" and result["test_images"] == 40
    assert result["accuracy"] == pytest.approx(right.mean())
    wrong_by_writer = {writer: int((~right)[cvl.writers_test == writer].sum()) for writer in range(8)}
    assert {entry["writer"]: entry["errors"] for entry in result["writers"]} == wrong_by_writer
    assert sum(result["mistake_kinds"].values()) <= result["errors"]
    for name in ("confusion_matrix", "mistakes", "mistake_kinds"):
        assert (run / f"{name}-cvl-digits.png").read_bytes().startswith(b"\x89PNG")
    # The run's own files are untouched; only the new ones were added.
    after = tree_digest(run)
    assert {name: after[name] for name in before if name != ".digits-written.json"} == {
        name: digest for name, digest in before.items() if name != ".digits-written.json"}
    assert not (run / "evaluation.json").exists()


def test_dark_ink_brings_a_scanned_npz_to_the_models_convention(run_and_data, tmp_path):
    run, _ = run_and_data
    scans = np.stack([scan((2, 4 + index % 6, 26, 16 + index % 8)) for index in range(12)])
    labels = np.arange(12) % 10
    np.savez(tmp_path / "scans.npz", x_train=scans, y_train=labels, x_test=scans[:6], y_test=labels[:6])
    assert evaluate.main(["--run-dir", str(run), "--dataset", str(tmp_path / "scans.npz"), "--dark-ink"]) == 0
    result = json.loads((run / "evaluation-scans.json").read_text())
    right = predicted(run, dark_ink_to_mnist(scans[:6])[..., np.newaxis]) == labels[:6]
    assert result["accuracy"] == pytest.approx(right.mean())


@pytest.mark.parametrize("arguments, words", [
    (["--dark-ink"], "--dark-ink goes with --dataset FILE.npz"),
    (["--dataset", "cvl-digits", "--dark-ink"], "--dark-ink goes with --dataset FILE.npz"),
    (["--dataset", "cvl-digits", "--robustness"], "--dataset goes without --robustness"),
    (["--dataset", "synthetic-rgb"], "takes 28x28x1 images and tells 10 classes apart, but synthetic-rgb has "
                                     "32x32x3 images of 10 classes; it cannot be measured on synthetic-rgb"),
    (["--dataset", "cvl-digits", "--data-dir", "/nowhere"], "cvl-digits.npz is not there"),
])
def test_evaluate_refuses_what_it_cannot_measure_in_one_line(run_and_data, capsys, arguments, words):
    run, _ = run_and_data
    try:
        status = evaluate.main(["--run-dir", str(run), *arguments])
    except SystemExit as exit:  # a flag refused by the argument parser
        status = exit.code
    assert status == 2
    assert words in one_error_line(capsys)


def test_a_users_file_of_the_same_name_is_refused_before_any_work(run_and_data, capsys):
    run, data_dir = run_and_data
    (run / "mistake_kinds-cvl-digits.png").write_bytes(b"my own picture")
    assert evaluate.main(["--run-dir", str(run), "--dataset", "cvl-digits", "--data-dir", str(data_dir)]) == 2
    assert "mistake_kinds-cvl-digits.png" in one_error_line(capsys)
    assert (run / "mistake_kinds-cvl-digits.png").read_bytes() == b"my own picture"
    assert not (run / "evaluation-cvl-digits.json").exists()
