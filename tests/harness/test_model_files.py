"""Model files: portable saving (plain Keras, elsewhere, predicts the same) and refusing bad files in one line."""

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest

from data import UserError
from models import CLASSIFIERS, MODELS
from harness import atomic, model_files, runs
from serving import export
from models.fused_batch_norm import FusedBatchNormalization
from models.training import compile_for_training

SHAPE = (28, 28, 1)
PROJECT = "digits>"  # how Keras names a class registered by this project in a config (package>class)

# Run in a fresh Python that cannot import the project (-I: no script folder, no PYTHON* variables).
# argv: (model file, images .npy, probabilities .npy) triples; prints one JSON line describing each model.
PLAIN_KERAS = """
import importlib.util, json, sys
import keras, numpy as np
assert importlib.util.find_spec("models") is None, "the project is importable in the plain Python"
described = []
for model_file, images, out in zip(*[iter(sys.argv[1:])] * 3):
    try:
        model = keras.saving.load_model(model_file)
    except Exception as error:
        described.append({"error": str(error)})
        continue
    np.save(out, np.asarray(model(np.load(images), training=False)))
    described.append({"name": model.name, "inputs": [t.name for t in model.inputs],
                      "layers": [layer.name for layer in model.layers]})
print(json.dumps(described))
"""

# Run in a fresh Python inside the project, after something has turned Keras's safe mode off for the process.
def images(count=16, seed=1):
    """float32 (count, 28, 28, 1), uniform noise in [0, 1]."""
    return np.random.default_rng(seed).random((count, *SHAPE), dtype=np.float32)


@pytest.fixture(scope="module")
def trained():
    """{name: model} for every registered model after a few Adam steps on random images.

    The steps move the batch-norm statistics and the optimizer's moments away from
    their initial values, so a copy that lost them would show.
    """
    models = {}
    for name, architecture in CLASSIFIERS.items():
        keras.utils.set_random_seed(0)
        model = architecture.build(SHAPE, 10)
        compile_for_training(model, 1e-3, 4)
        labels = np.random.default_rng(0).integers(0, 10, 64)
        model.fit(images(64, seed=0), labels, batch_size=16, epochs=1, verbose=0)
        models[name] = model
    return models


@pytest.fixture(scope="module")
def portable_files(trained, tmp_path_factory):
    """{name: file written by save_model}, each alone in its folder."""
    files = {}
    for name, model in trained.items():
        files[name] = tmp_path_factory.mktemp(f"portable_{name}") / runs.MODEL_FILE
        model_files.save_model(model, files[name])
    return files


@pytest.fixture(params=list(CLASSIFIERS))
def portable(request, trained, portable_files):
    """(trained model, its portable file) for each registered model."""
    return trained[request.param], portable_files[request.param]


@pytest.fixture(scope="module")
def convnet_files(trained, tmp_path_factory):
    """{"portable": file, "legacy": file, "model": model}: the trained convnet saved both ways."""
    model = trained["convnet"]
    folder = tmp_path_factory.mktemp("convnet_files")
    model_files.save_model(model, folder / "portable.keras")
    model.save(folder / "legacy.keras")  # as train.py saved before model_files existed
    return {"portable": folder / "portable.keras", "legacy": folder / "legacy.keras", "model": model}


def archive_config(path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read("config.json").decode()


def rewritten(source, target, edit):
    """Copy the zip `source` to `target`, each member through edit(name, bytes) -> bytes, or None to drop it."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            content = edit(name, old.read(name))
            if content is not None:
                new.writestr(name, content)
    return target


def edited_config(change):
    """An edit for rewritten() that applies change(config dict) to config.json."""
    def edit(name, content):
        if name != "config.json":
            return content
        config = json.loads(content)
        change(config)
        return json.dumps(config)
    return edit


def layer_configs(config: dict) -> list[dict]:
    """The entries of a functional model's config.json, one per layer."""
    return config["config"]["layers"]


# ------------------------------------------------------------------ portable files


def test_portable_file_holds_only_keras_classes(portable):
    _, path = portable
    config = archive_config(path)
    assert "FusedBatchNormalization" not in config and PROJECT not in config
    modules = {layer["module"] for layer in layer_configs(json.loads(config))}
    assert all(module.startswith("keras") for module in modules), modules
    assert sorted(item.name for item in path.parent.iterdir()) == [atomic.RECORD, runs.MODEL_FILE]  # no temporary


def test_plain_python_loads_every_portable_file_and_predicts_the_same(trained, portable_files, convnet_files,
                                                                     tmp_path):
    # One fresh Python for all the files: starting one (TensorFlow's import) takes seconds. The
    # legacy file, with the project's class in it, shows that this Python really lacks the project.
    files = {**portable_files, "legacy": convnet_files["legacy"]}
    np.save(tmp_path / "images.npy", images())
    arguments = [str(item) for name, path in files.items()
                 for item in (path, tmp_path / "images.npy", tmp_path / f"{name}.npy")]
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-I", "-c", PLAIN_KERAS, *arguments], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    described = dict(zip(files, json.loads(done.stdout.splitlines()[-1])))
    assert "FusedBatchNormalization" in described.pop("legacy").get("error", "")
    for name, seen in described.items():
        model = trained[name]
        assert seen == {"name": model.name, "inputs": [tensor.name for tensor in model.inputs],
                        "layers": [layer.name for layer in model.layers]}, name
        expected = np.asarray(model(images(), training=False))
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected, rtol=0, atol=1e-6, err_msg=name)


def test_portable_file_has_the_trained_weights_layer_by_layer(portable):
    model, path = portable
    reloaded = keras.saving.load_model(path)
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]
    for ours, theirs in zip(model.layers, reloaded.layers):
        expected_class = keras.layers.BatchNormalization if type(ours) is FusedBatchNormalization else type(ours)
        assert type(theirs) is expected_class, ours.name
        assert len(theirs.weights) == len(ours.weights), ours.name
        for mine, saved in zip(ours.weights, theirs.weights):
            np.testing.assert_array_equal(saved, mine, err_msg=f"{ours.name}/{mine.name}")
    # Inference of the fused layer is BatchNormalization's own code: equal bit for bit.
    np.testing.assert_array_equal(reloaded(images(), training=False), model(images(), training=False))


def test_portable_file_keeps_the_optimizer_state(portable):
    model, path = portable
    reloaded = keras.saving.load_model(path)
    assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) > 0
    assert len(reloaded.optimizer.variables) == len(model.optimizer.variables)
    for mine, saved in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(saved, mine, err_msg=mine.path)


def test_convnet_is_covered_by_a_fused_layer():
    # Otherwise the portable tests above would pass without testing the replacement.
    model = MODELS["convnet"].build(SHAPE, 10)
    assert any(type(layer) is FusedBatchNormalization for layer in model.layers)


class ProjectDense(keras.layers.Dense):
    """A project class with no standard form in model_files.STANDARD_LAYERS."""


def test_a_layer_without_a_standard_form_is_refused_and_the_old_file_kept(convnet_files, tmp_path):
    path = tmp_path / runs.MODEL_FILE
    shutil.copy(convnet_files["portable"], path)
    before = path.read_bytes()
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, ProjectDense(2, name="project_dense")(inputs))
    with pytest.raises(ValueError, match="project_dense"):
        model_files.save_model(model, path)
    assert path.read_bytes() == before
    assert sorted(item.name for item in tmp_path.iterdir()) == [runs.MODEL_FILE]


# ------------------------------------------------------------------ loading inside the project


def test_a_legacy_file_with_the_fused_layer_still_loads(convnet_files):
    assert f"{PROJECT}FusedBatchNormalization" in archive_config(convnet_files["legacy"])
    reloaded = model_files.load_model(convnet_files["legacy"])
    assert type(reloaded.get_layer("conv1_bn")) is FusedBatchNormalization
    np.testing.assert_array_equal(reloaded(images(), training=False), convnet_files["model"](images(), training=False))


def test_models_export_makes_an_old_run_portable(convnet_files, tmp_path, capsys):
    run_dir = tmp_path / "old_run"
    run_dir.mkdir()
    atomic.write_bytes(run_dir / runs.MODEL_FILE, convnet_files["legacy"].read_bytes())  # ours, in the old form
    # What train.py recorded in an old run; a small limit keeps the int8 calibration quick.
    atomic.write_json(run_dir / runs.CONFIG_FILE, {runs.RUN_MARKER: runs.RUN_LAYOUT, "kind": "classifier",
                                                   "dataset": "synthetic",
                                                   "limit": 200})
    assert export.main(["--run-dir", str(run_dir)]) == 0
    assert f"wrote {runs.MODEL_FILE} (standard Keras layers)" in capsys.readouterr().out
    config = archive_config(run_dir / runs.MODEL_FILE)
    assert "FusedBatchNormalization" not in config and PROJECT not in config
    reloaded = keras.saving.load_model(run_dir / runs.MODEL_FILE)
    np.testing.assert_array_equal(reloaded(images(), training=False), convnet_files["model"](images(), training=False))
    assert (run_dir / runs.TFLITE_INT8_FILE).is_file() and (run_dir / runs.SAVED_MODEL_DIR).is_dir()
    leftovers = [item.name for item in run_dir.iterdir() if item.name.startswith(".") and item.name != atomic.RECORD]
    assert not leftovers


# ------------------------------------------------------------------ files that cannot be loaded


def lambda_model_file(path):
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2, name="double")(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns that it serialises a lambda: that is the point here
        model.save(path)
    return path


def unknown_class(config):
    layer = layer_configs(config)[1]
    layer.update(class_name="Frobnicator", module="other_project.layers", registered_name="other_project>Frobnicator")


def future_and_broken(name, content):
    """metadata.json from a future Keras, and a config.json this Keras cannot build a model from."""
    if name == "metadata.json":
        return json.dumps({"keras_version": "9.0.0", "date_saved": "2031-01-01@00:00:00"})
    return edited_config(lambda config: config["config"].pop("layers"))(name, content)


def fewer_logits(config):
    next(layer for layer in layer_configs(config) if layer["name"] == "logits")["config"]["units"] = 7


def unknown_function(config):
    dense1 = next(layer for layer in layer_configs(config) if layer["name"] == "dense1")
    dense1["config"]["activation"] = {"module": "other_project.activations", "class_name": "function",
                                      "config": "swishy", "registered_name": "other_project>swishy"}


def deeply_nested(name, content):
    return b"[" * 100_000 + b"]" * 100_000 if name == "config.json" else content


def weights_replaced_by(make_bytes):
    """An edit for rewritten() that replaces model.weights.h5 (its zip checksum stays right)."""
    return lambda name, content: make_bytes(content) if name == "model.weights.h5" else content


def written(path, content: bytes):
    path.write_bytes(content)
    return path


def flipped_weight_byte(source, target):
    """A copy of `source` with one byte inside model.weights.h5 changed, as a bad disk or download does."""
    content = bytearray(source.read_bytes())
    content[content.find(b"\x89HDF") + 4000] ^= 0xFF
    return written(target, bytes(content))


def legacy_hdf5(path):
    model = MODELS["mlp"].build(SHAPE, 10)
    h5 = path.with_suffix(".h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(h5)  # Keras warns that .h5 is legacy
    os.replace(h5, path)
    return path


# name -> (make(good .keras file, path to write) -> path to load, what the message must say)
BAD_FILES = {
    "missing": (lambda good, path: path, "there is no such file"),
    "folder": (lambda good, path: path.parent, "it is a folder, not a .keras model file"),
    "empty": (lambda good, path: written(path, b""), "it is empty (0 bytes)"),
    "random bytes": (lambda good, path: written(path, np.random.default_rng(0).bytes(4096)),
                     "it is not a Keras model file (a .keras file is a zip archive"),
    "hdf5": (lambda good, path: legacy_hdf5(path), "it is an HDF5 file (the legacy Keras .h5 format)"),
    "truncated to half": (lambda good, path: written(path, good.read_bytes()[:good.stat().st_size // 2]),
                          "it is a truncated or damaged zip archive"),
    "one byte changed": (flipped_weight_byte, "it is damaged (model.weights.h5 inside it fails its checksum)"),
    "no config.json": (lambda good, path: rewritten(good, path, lambda name, c: None if name == "config.json" else c),
                       "not a Keras model archive (it has no config.json)"),
    "no weights": (lambda good, path: rewritten(good, path, lambda name, c: None if name.startswith("model.w") else c),
                   "(it has no model.weights.h5)"),
    "not named .keras": (lambda good, path: shutil.copy(good, path.with_suffix(".zip")), "rename it"),
    "lambda": (lambda good, path: lambda_model_file(path),
               "layer 'double' (Lambda) holds Python code, which loading would run; Keras safe mode refuses that"),
    "unknown class": (lambda good, path: rewritten(good, path, edited_config(unknown_class)),
                      "it uses the class 'Frobnicator', which this Keras does not know (custom code from another"),
    "future keras": (lambda good, path: rewritten(good, path, future_and_broken),
                     f"it was made with Keras 9.0.0, this is Keras {keras.__version__}"),
    "weights not matching": (lambda good, path: rewritten(good, path, edited_config(fewer_logits)),
                             "its weights do not match its configuration (first at Dense layer 'logits')"),
    "unknown function": (lambda good, path: rewritten(good, path, edited_config(unknown_function)),
                         "it uses the function 'swishy', which this Keras does not know (custom code from another"),
    "deeply nested config": (lambda good, path: rewritten(good, path, deeply_nested),
                             "it is damaged (its config.json nests deeper than any model)"),
    "config not a model's": (lambda good, path: rewritten(good, path, lambda name, c: b"[]" if name == "config.json"
                                                           else c),
                             "it is damaged (its config.json is JSON but no model's configuration)"),
    "weights not HDF5": (lambda good, path: rewritten(good, path, weights_replaced_by(
                             lambda content: np.random.default_rng(3).bytes(5000))),
                         "it is damaged (its model.weights.h5 is not a readable HDF5 file"),
    "weights cut short": (lambda good, path: rewritten(good, path,
                                                       weights_replaced_by(lambda content: content[:20000])),
                          "it is damaged (its model.weights.h5 is not a readable HDF5 file"),
    "a layer argument Keras refuses": (lambda good, path: rewritten(good, path, edited_config(
                                           lambda config: layer_configs(config)[1]["config"].update(frobs=3))),
                                       "Keras could not build a model from it (ValueError: "),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_one_line_saying_what_is_wrong(case, convnet_files, tmp_path):
    make, expected = BAD_FILES[case]
    path = make(convnet_files["portable"], tmp_path / "model.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about skipped weights before it raises
        with pytest.raises(UserError) as raised:
            model_files.load_model(path)
    message = str(raised.value)
    assert expected in message, message
    assert message.startswith(f"cannot load {path}: "), message
    assert "\n" not in message and len(message) < 400, message
    # The user brought this file: retraining is not the remedy.
    assert "train" not in message.replace(str(path), "").lower(), message


def test_unknown_classes_are_found_before_keras_reads_the_file(convnet_files, tmp_path, monkeypatch):
    path = rewritten(convnet_files["portable"], tmp_path / "model.keras", edited_config(unknown_class))
    monkeypatch.setattr(keras.saving, "load_model", lambda *args, **kwargs: pytest.fail("Keras was asked"))
    with pytest.raises(UserError, match="it uses the class 'Frobnicator', which this Keras does not know"):
        model_files.load_model(path)


def test_an_unknown_class_from_a_newer_keras_is_refused_by_version(convnet_files, tmp_path):
    def newer(name, content):
        if name == "metadata.json":
            return json.dumps({"keras_version": "9.0.0", "date_saved": "2031-01-01@00:00:00"})
        return edited_config(unknown_class)(name, content)
    with pytest.raises(UserError, match="it was made with Keras 9.0.0"):
        model_files.load_model(rewritten(convnet_files["portable"], tmp_path / "model.keras", newer))


@pytest.mark.parametrize("case", ["weights not matching", "unknown class", "weights not HDF5"])
def test_messages_do_not_depend_on_the_wording_of_keras_errors(case, convnet_files, tmp_path, monkeypatch):
    # A Keras that words every error differently (or says nothing) gets the same refusals.
    make, expected = BAD_FILES[case]
    path = make(convnet_files["portable"], tmp_path / "model.keras")

    def reworded(*args, **kwargs):
        raise RuntimeError("something went wrong")
    monkeypatch.setattr(keras.saving, "load_model", reworded)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match=re.escape(expected)):
            model_files.load_model(path)


def test_an_unexplained_keras_failure_is_quoted_by_type_and_first_line(convnet_files, monkeypatch):
    def failing(*args, **kwargs):
        try:
            raise TypeError("no spam here\nsecond line")
        except TypeError as inner:
            raise ValueError("outer wrapper\nwith more") from inner
    monkeypatch.setattr(keras.saving, "load_model", failing)
    with pytest.raises(UserError) as raised:
        model_files.load_model(convnet_files["portable"])
    assert str(raised.value).endswith("Keras could not build a model from it (TypeError: no spam here).")


def test_a_loss_of_someone_elses_still_loads(convnet_files, tmp_path):
    # Loading does not compile, so a class only the compile configuration names does not matter.
    def their_loss(config):
        config["compile_config"]["loss"] = {"module": "other_project.losses", "class_name": "TheirLoss",
                                            "config": {}, "registered_name": "other_project>TheirLoss"}
    path = rewritten(convnet_files["portable"], tmp_path / "model.keras", edited_config(their_loss))
    assert model_files.load_model(path).name == convnet_files["model"].name


def test_keras_classes_by_module_path_and_builtin_functions_are_known():
    assert model_files.unknown_object({"class_name": "Functional", "module": "keras.src.models.functional",
                                       "registered_name": "Functional", "config": {}}) is None
    assert model_files.unknown_object([{"class_name": "function", "module": "builtins", "config": "relu"},
                                       {"class_name": "function", "module": "keras.activations", "config": "gelu"},
                                       {"class_name": "HeNormal", "config": {}},  # no module: looked up by name
                                       {"class_name": "__keras_tensor__", "config": {}}]) is None
    assert model_files.unknown_object({"class_name": "Dense", "module": "keras.no_such_module",
                                       "config": {}}) == ("class", "Dense")
    assert model_files.unknown_object({"class_name": "Dense", "module": "os", "config": {}}) == ("class", "Dense")


def test_mismatched_weights_in_a_nested_model_name_the_inner_layer(tmp_path):
    inner_input = keras.Input((4,), name="features")
    inner = keras.Model(inner_input, keras.layers.Dense(3, name="inner_dense")(inner_input), name="inner")
    outer_input = keras.Input((4,), name="x")
    model = keras.Model(outer_input, keras.layers.Dense(2, name="head")(inner(outer_input)), name="outer")
    good = tmp_path / "good.keras"
    model.save(good)

    def without_bias(config):  # the same shapes between layers, one variable fewer in inner_dense
        nested = next(layer for layer in layer_configs(config) if layer["name"] == "inner")
        inner = next(layer for layer in nested["config"]["layers"] if layer["name"] == "inner_dense")
        inner["config"]["use_bias"] = False
    path = rewritten(good, tmp_path / "model.keras", edited_config(without_bias))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UserError, match="first at Dense layer 'inner_dense'"):
            model_files.load_model(path)


def test_runs_load_model_gives_the_same_refusal(tmp_path):
    path = lambda_model_file(tmp_path / "model.keras")
    with pytest.raises(UserError, match="holds Python code"):
        model_files.load_model(path)


def test_lambda_is_refused_even_after_unsafe_deserialization_was_enabled(tmp_path):
    # keras.config.enable_unsafe_deserialization() overrides load_model(safe_mode=True) for the whole
    # process; the global setting it changes is put back afterwards, which keeps the rest of this process safe
    # (in this process rather than a fresh Python, which would import TensorFlow again for one load).
    from keras.src.backend.common import global_state

    path = lambda_model_file(tmp_path / "model.keras")
    before = global_state.get_global_attribute("safe_mode_saving")
    keras.config.enable_unsafe_deserialization()
    try:
        with pytest.raises(UserError, match="holds Python code"):
            model_files.load_model(path)
    finally:
        global_state.set_global_attribute("safe_mode_saving", before)
    with pytest.raises(ValueError, match="[Ll]ambda"):  # safe again: plain Keras refuses the file too
        keras.saving.load_model(path)
