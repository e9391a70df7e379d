"""The serving export: SavedModel signature, parity with the Keras model, LiteRT float32 and int8 files."""

import shutil
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

from analysis import evaluation
from data import UserError
from data.synthetic import make_images
from models import CLASSIFIERS, MODELS
from harness import atomic, runs
from serving import export, litert

CASES = [(name, (28, 28, 1)) for name in CLASSIFIERS] + [("convnet", (32, 32, 3))]


def raw_images(shape, count=64, seed=0):
    """uint8 (count, H, W, C): half noise, half synthetic digits, so both extremes of the input range occur."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (count // 2, *shape), dtype=np.uint8)
    digits, _ = make_images(count - count // 2, shape, rng)
    return np.concatenate([noise, digits])


def keras_probabilities(model, pixels):
    """The Keras model on pixels scaled as training scales them, computed here with numpy alone."""
    return np.asarray(model(pixels.astype(np.float32) / np.float32(255), training=False))


@pytest.fixture(scope="module", params=CASES, ids=lambda case: f"{case[0]}-{'x'.join(map(str, case[1]))}")
def exported(request, tmp_path_factory):
    """(model, run folder with saved_model/ and both .tflite files, input shape) for an untrained model."""
    name, shape = request.param
    keras.utils.set_random_seed(2)
    model = MODELS[name].build(shape, 10)
    folder = tmp_path_factory.mktemp(f"{name}_{shape[0]}")
    export.write_serving_files(model, folder, raw_images(shape, 40, seed=1))
    return model, folder, shape


def test_signature_takes_raw_pixels_and_names_its_outputs(exported):
    model, folder, shape = exported
    serving = tf.saved_model.load(str(folder / runs.SAVED_MODEL_DIR)).signatures["serving_default"]
    assert serving.structured_input_signature == ((), {"pixels": tf.TensorSpec((None, *shape), tf.uint8, "pixels")})
    outputs = serving.structured_outputs
    assert set(outputs) == {"probabilities", "digit"}
    assert outputs["probabilities"].dtype == tf.float32 and outputs["probabilities"].shape.as_list() == [None, 10]
    assert outputs["digit"].dtype == tf.int32 and outputs["digit"].shape.as_list() == [None]


def test_saved_model_agrees_with_keras_on_raw_pixels(exported):
    model, folder, shape = exported
    pixels = raw_images(shape)
    serving = tf.saved_model.load(str(folder / runs.SAVED_MODEL_DIR)).signatures["serving_default"]
    result = serving(pixels=tf.constant(pixels))
    expected = keras_probabilities(model, pixels)
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(result["digit"], np.asarray(result["probabilities"]).argmax(1))
    assert result["probabilities"].shape == (len(pixels), 10) and result["digit"].dtype == tf.int32


def decided(probabilities, margin=1e-4):
    """Rows whose best class leads the second by more than `margin` (ties may break either way)."""
    ordered = np.sort(probabilities, axis=1)
    return ordered[:, -1] - ordered[:, -2] > margin


def test_litert_float32_agrees_with_keras(exported):
    model, folder, shape = exported
    pixels = raw_images(shape, seed=3)
    result = litert.LiteModel(folder / runs.TFLITE_FLOAT32_FILE)(pixels)
    expected = keras_probabilities(model, pixels)
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-5)
    sure = decided(expected)
    np.testing.assert_array_equal(result["digit"][sure], expected.argmax(1)[sure])


def test_litert_int8_takes_raw_pixels_and_computes_in_int8(exported):
    model, folder, shape = exported
    runner = litert.LiteModel(folder / runs.TFLITE_INT8_FILE)
    (pixels_in,) = runner.interpreter.get_input_details()
    assert pixels_in["dtype"] == np.uint8 and list(pixels_in["shape_signature"]) == [-1, *shape]
    details = runner.interpreter.get_tensor_details()
    weights = [tensor for tensor in details if tensor["shape"].size >= 2 and tensor["shape"].prod() >= 100 and
               "serving_default" not in tensor["name"] and tensor["shape_signature"][0] != -1]
    assert weights and all(tensor["dtype"] == np.int8 for tensor in weights), \
        [(tensor["name"], tensor["dtype"]) for tensor in weights]
    # Float only at the two edges: the cast pixels before QUANTIZE and the dequantised probabilities.
    floats = [tensor["name"] for tensor in details if tensor["dtype"] == np.float32]
    assert len(floats) == 2, floats
    result = runner(raw_images(shape, 8))
    assert result["probabilities"].shape == (8, 10) and result["digit"].shape == (8,)


def test_int8_loses_at_most_0_3_points_on_a_trained_model(trained_mlp, tmp_path):
    _, model, digits = trained_mlp
    export.write_serving_files(model, tmp_path, digits.x_train)
    # 2000 fresh test digits: 0.3 points are 6 images.
    pixels, labels = make_images(2000, (28, 28, 1), np.random.default_rng(11))
    accuracy = {}
    for name in (runs.TFLITE_FLOAT32_FILE, runs.TFLITE_INT8_FILE):
        accuracy[name] = float((litert.LiteModel(tmp_path / name)(pixels)["digit"] == labels).mean())
    keras_accuracy = float((keras_probabilities(model, pixels).argmax(1) == labels).mean())
    assert keras_accuracy > 0.9, f"the test model learnt too little ({keras_accuracy:.3f}) for the bound to mean much"
    assert accuracy[runs.TFLITE_FLOAT32_FILE] == keras_accuracy
    assert accuracy[runs.TFLITE_INT8_FILE] >= keras_accuracy - 0.003, accuracy


def test_representative_sample_is_spread_over_the_whole_set():
    sample = export.representative_sample(np.arange(1000), 300)
    assert len(sample) == 300 and sample[0] == 0 and sample[-1] == 999 and len(set(sample)) == 300
    assert len(export.representative_sample(np.arange(20), 300)) == 20  # a small set is used whole


@pytest.mark.skipif(shutil.which("saved_model_cli") is None, reason="saved_model_cli is not on PATH")
def test_saved_model_cli_shows_the_clear_names(tmp_path):
    # One model is enough: the signature is built the same way for all, and the tool takes seconds to start.
    model = MODELS["mlp"].build((28, 28, 1), 10)
    export.export_saved_model(model, tmp_path / "saved_model")
    shown = subprocess.run(["saved_model_cli", "show", "--all", "--dir", str(tmp_path / "saved_model")],
                           capture_output=True, text=True, check=True).stdout
    assert "signature_def['serving_default']" in shown
    for line in ["inputs['pixels'] tensor_info:", "dtype: DT_UINT8", "shape: (-1, 28, 28, 1)",
                 "outputs['probabilities'] tensor_info:", "dtype: DT_FLOAT", "shape: (-1, 10)",
                 "outputs['digit'] tensor_info:", "dtype: DT_INT32", "shape: (-1)"]:
        assert line in shown, line


def test_models_export_rewrites_an_old_run(trained_mlp, tmp_path, capsys):
    path, model, _ = trained_mlp
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    # A run of this project (its files recorded as ours) from before the serving signature took raw pixels.
    atomic.write_bytes(run_dir / runs.MODEL_FILE, path.read_bytes())
    atomic.write_json(run_dir / runs.CONFIG_FILE, {runs.RUN_MARKER: runs.RUN_LAYOUT, "kind": "classifier",
                                                   "dataset": "synthetic",
                                                   "limit": None})
    with atomic.replacing_folder(run_dir / runs.SAVED_MODEL_DIR) as saved_model:
        model.export(str(saved_model), verbose=False)  # the float32 signature runs used to have
    pixels = raw_images((28, 28, 1))
    with pytest.raises(UserError, match="python -m serving.export"):
        evaluation.savedmodel_parity(run_dir / runs.SAVED_MODEL_DIR, pixels, keras_probabilities(model, pixels))

    assert export.main(["--run-dir", str(run_dir)]) == 0
    assert "model_int8.tflite" in capsys.readouterr().out
    parity = evaluation.savedmodel_parity(run_dir / runs.SAVED_MODEL_DIR, pixels, keras_probabilities(model, pixels))
    assert parity["agrees"] and parity["images"] == len(pixels)
    assert all((run_dir / name).stat().st_size > 0 for name in (runs.TFLITE_FLOAT32_FILE, runs.TFLITE_INT8_FILE))
    assert sorted(item.name for item in run_dir.iterdir()) == sorted([
        atomic.RECORD, runs.MODEL_FILE, runs.CONFIG_FILE, runs.SAVED_MODEL_DIR, runs.TFLITE_FLOAT32_FILE,
        runs.TFLITE_INT8_FILE])
    assert atomic.foreign_entries(run_dir) == []


def test_models_export_without_a_run_is_one_line(tmp_path, capsys):
    assert export.main(["--run-dir", str(tmp_path / "nothing")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and error.count("\n") == 0 and "python train.py" in error


def test_a_file_that_is_not_tflite_is_a_user_error(tmp_path):
    (tmp_path / "model.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(UserError, match="cannot load"):
        litert.LiteModel(tmp_path / "model.tflite")
