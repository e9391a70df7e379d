"""The robustness sweep: the changes as pure functions on uint8 images (known answers), the sweep's bookkeeping,
and evaluate.py --robustness / --compare on dry-run runs of each kind."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import copied_run
from matplotlib.pyplot import imread

import evaluate
from data import transforms
from analysis import robustness

RNG = np.random.default_rng(0)
GREY = RNG.integers(0, 256, (4, 9, 9, 1), dtype=np.uint8)
COLOUR = RNG.integers(0, 256, (3, 8, 12, 3), dtype=np.uint8)
KEYS = {"rotation", "scale", "shift_x", "shift_y", "brightness", "contrast", "inversion", "noise", "blur",
        "occlusion"}


# ----------------------------------------------------------------------------- the changes


@pytest.mark.parametrize("images", [GREY, COLOUR[:, :8, :8]], ids=["grey_odd", "colour_even"])
def test_rotation_by_0_is_the_identity_and_by_90_is_numpy_rot90(images):
    assert np.array_equal(transforms.rotate(images, 0), images)
    assert np.array_equal(transforms.rotate(images, 90), np.rot90(images, 1, axes=(1, 2)))  # counter-clockwise
    assert np.array_equal(transforms.rotate(images, -90), np.rot90(images, -1, axes=(1, 2)))


def test_scale_1_is_the_identity_and_0_5_halves_a_centred_square():
    assert np.array_equal(transforms.scale(COLOUR, 1.0), COLOUR)
    square = np.zeros((1, 33, 33, 1), np.uint8)
    square[0, 8:25, 8:25] = 255  # 17 pixels wide about the centre (16, 16)
    half = transforms.scale(square, 0.5)[0, ..., 0]
    assert np.argwhere(half == 255).min(0).tolist() == [12, 12] and np.argwhere(half == 255).max(0).tolist() == [20, 20]
    assert (half[:11] == 0).all() and (half[22:] == 0).all()


def test_shifts_move_by_a_share_of_the_side():
    dot = np.zeros((1, 12, 12, 1), np.uint8)
    dot[0, 5, 6] = 200
    assert np.argwhere(transforms.shift_x(dot, 0.25)[0, ..., 0] == 200).tolist() == [[5, 9]]  # 3 pixels right
    assert np.argwhere(transforms.shift_y(dot, -0.25)[0, ..., 0] == 200).tolist() == [[2, 6]]  # 3 pixels up
    assert np.array_equal(transforms.shift_x(dot, 0), dot)


def test_light_changes_stay_in_the_uint8_range():
    for levels in (-300, -50, 0, 50, 300):
        bright = transforms.brightness(COLOUR, levels)
        assert bright.dtype == np.uint8
        expected = np.clip(COLOUR.astype(int) + levels, 0, 255)
        assert np.array_equal(bright, expected)
    assert np.array_equal(transforms.contrast(COLOUR, 1.0), COLOUR)
    flat = transforms.contrast(COLOUR, 0.0)
    assert np.array_equal(flat, np.broadcast_to(np.round(COLOUR.mean(axis=(1, 2, 3), keepdims=True)), COLOUR.shape))
    harsh = transforms.contrast(COLOUR, 5.0)
    assert harsh.dtype == np.uint8 and harsh.min() == 0 and harsh.max() == 255
    assert np.array_equal(transforms.inversion(COLOUR, 1.0), 255 - COLOUR)
    assert np.array_equal(transforms.inversion(COLOUR, 0.0), COLOUR)


def test_the_same_seed_gives_the_same_noise_and_covers():
    assert np.array_equal(transforms.noise(GREY, 30, seed=4), transforms.noise(GREY, 30, seed=4))
    assert not np.array_equal(transforms.noise(GREY, 30, seed=4), transforms.noise(GREY, 30, seed=5))
    assert np.array_equal(transforms.noise(GREY, 0, seed=4), GREY)
    noisy = transforms.noise(np.full((50, 20, 20, 1), 128, np.uint8), 20, seed=1).astype(float)
    assert abs(noisy.std() - 20) < 1 and abs(noisy.mean() - 128) < 1
    assert np.array_equal(transforms.occlusion(COLOUR, 0.3, seed=2), transforms.occlusion(COLOUR, 0.3, seed=2))


def test_occlusion_paints_a_square_of_the_background():
    images = np.zeros((5, 20, 20, 1), np.uint8)
    images[:, 2:18, 2:18] = 255  # a white patch on a black border
    covered = transforms.occlusion(images, 0.25, seed=0)
    for before, after in zip(images, covered):
        changed = np.argwhere(before[..., 0] != after[..., 0])
        side = changed.max(0) - changed.min(0) + 1
        assert (side == 5).all() and len(changed) == 25  # a 5x5 square, all of it on the patch here
        assert (after[before[..., 0] != after[..., 0]] == 0).all()  # in the border's colour


def test_blur_keeps_flat_images_and_smooths_an_edge():
    flat = np.full((2, 10, 10, 3), 77, np.uint8)
    assert np.array_equal(transforms.blur(flat, 2.0), flat)
    edge = np.zeros((1, 10, 10, 1), np.uint8)
    edge[:, :, 5:] = 255
    blurred = transforms.blur(edge, 1.0)[0, 5, :, 0]
    assert (np.diff(blurred.astype(int)) >= 0).all() and 0 < blurred[4] < 128 < blurred[5] < 255


def test_hue_turns_red_to_green_and_a_full_turn_back():
    red = np.zeros((1, 2, 2, 3), np.uint8)
    red[..., 0] = 200
    assert np.array_equal(transforms.hue(red, 120)[0, 0, 0], [0, 200, 0])
    assert np.abs(transforms.hue(COLOUR, 360).astype(int) - COLOUR).max() <= 1
    assert np.array_equal(transforms.hue(COLOUR, 0), COLOUR)


# ----------------------------------------------------------------------------- the sweep


def test_the_sweep_grades_every_change_and_keeps_the_identity_at_clean():
    # A judge that calls an image right only if it is exactly as it was: 1.0 at every identity strength, and
    # below it wherever a change alters the random images.
    images = RNG.integers(1, 255, (6, 10, 10, 3), dtype=np.uint8)

    def unchanged(batch):
        return (batch == images).all(axis=(1, 2, 3))

    result = robustness.sweep(unchanged, images, seed=3)
    assert set(result) == KEYS | {"hue", "clean", "images", "seed"} and result["clean"] == 1.0
    for name in KEYS | {"hue"}:
        curve, change = result[name], robustness.CHANGES[name]
        assert curve["unit"] == change.unit and curve["strengths"] == [float(s) for s in change.strengths]
        for strength, accuracy in zip(curve["strengths"], curve["accuracy"]):
            assert accuracy == (1.0 if strength == change.identity else pytest.approx(accuracy))
            if strength != change.identity and name not in ("brightness", "contrast"):
                assert accuracy < 1.0, (name, strength)
    assert result["rotation"]["strengths"] == [-60, -45, -30, -15, 0, 15, 30, 45, 60]
    assert "hue" not in robustness.sweep(lambda batch: np.ones(len(batch), bool), GREY)


def test_pick_is_seeded_and_takes_all_when_asked_for_more():
    assert np.array_equal(robustness.pick(100, 10, 1), robustness.pick(100, 10, 1))
    assert not np.array_equal(robustness.pick(100, 10, 1), robustness.pick(100, 10, 2))
    assert np.array_equal(robustness.pick(5, 10, 0), np.arange(5))


# ----------------------------------------------------------------------------- evaluate.py --robustness


def strict_json(path: Path) -> dict:
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert min(imread(path).shape[:2]) > 100


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, good_run, mlp_dry_run):
    """Two dry runs on synthetic digits (28x28x1): a convnet (conftest's good_run, train.py --dataset synthetic
    --dry-run with its default convnet) and an mlp (conftest's mlp_dry_run), both copied rather than trained again."""
    folder = tmp_path_factory.mktemp("runs")
    shutil.copytree(good_run, folder / "convnet")
    assert json.loads((folder / "convnet" / "config.json").read_text())["model"] == "convnet"
    shutil.copytree(mlp_dry_run, folder / "mlp")
    assert json.loads((folder / "mlp" / "config.json").read_text())["model"] == "mlp"
    return folder / "convnet", folder / "mlp"


def test_evaluate_robustness_writes_strict_json_and_the_figures(two_runs, capsys):
    convnet, mlp = two_runs
    assert evaluate.main(["--run-dir", str(convnet), "--robustness", "--robustness-images", "40",
                          "--compare", str(mlp)]) == 0
    out = capsys.readouterr().out
    assert str(convnet) in out and str(mlp) in out
    results = {run: strict_json(run / "robustness.json") for run in two_runs}
    for run, result in results.items():
        assert set(result) == KEYS | {"clean", "images", "seed", "dataset", "kind"} and result["images"] == 40
        assert all(0 <= accuracy <= 1 and not math.isnan(accuracy) for name in KEYS
                   for accuracy in result[name]["accuracy"])
        assert_png(run / "robustness.png")
    assert_png(convnet / "robustness_compare.png")
    assert not (mlp / "robustness_compare.png").exists()
    assert not (convnet / "evaluation.json").exists()  # the sweep instead of the standard evaluation


def test_the_sweep_is_the_same_for_the_same_seed(two_runs):
    convnet, _ = two_runs
    assert evaluate.main(["--run-dir", str(convnet), "--robustness", "--robustness-images", "30", "--seed", "4"]) == 0
    first = strict_json(convnet / "robustness.json")
    assert evaluate.main(["--run-dir", str(convnet), "--robustness", "--robustness-images", "30", "--seed", "4"]) == 0
    assert strict_json(convnet / "robustness.json") == first


def test_a_reader_is_swept_on_whole_numbers(tmp_path_factory, reader_dry_run):
    run_dir = copied_run(reader_dry_run[0], tmp_path_factory, reader_dry_run[0].name)  # 1 to 3 digits, 20 test numbers
    assert evaluate.main(["--run-dir", str(run_dir), "--robustness"]) == 0
    result = strict_json(run_dir / "robustness.json")
    assert result["kind"] == "reader" and set(result) >= KEYS | {"hue"} and result["images"] == 20


def test_bad_robustness_arguments_are_one_line(two_runs, tmp_path, capsys):
    convnet, _ = two_runs
    for argv in (["--compare", str(convnet)], ["--robustness", "--robustness-images", "0"]):
        with pytest.raises(SystemExit) as exit_:
            evaluate.main(["--run-dir", str(convnet), *argv])
        assert exit_.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    assert evaluate.main(["--run-dir", str(convnet), "--robustness", "--compare", str(tmp_path / "none")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
