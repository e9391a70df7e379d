"""Every registered network in a tiny configuration: build, one training step, save and load, serving parity.

A few units a layer make each case take about a second, so every network (and
each new one, the moment it is registered: TINY must name it) is checked end to
end without a whole train.py run.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from data.numbers import MAX_DIGITS, PADDING
from data.pipeline import normalise
from harness import kinds, model_files
from models import MODELS
from models.training import compile_for_training
from serving import export

# Per registered network: its builder's size settings, shrunk, and the image shape it is tried on.
TINY = {
    "mlp": ({"hidden_units": (8, 8)}, (28, 28, 1)),
    "convnet": ({"filters": (4, 4, 8), "dense_units": 8}, (28, 28, 1)),
    "reader": ({"trunk": ((4, (2, 2)), (4, (2, 2)), (8, None), (8, (2, 1)), (8, None))}, (32, 96, 3)),
}
IMAGES = 8


def test_every_registered_network_has_a_tiny_configuration():
    assert set(TINY) == set(MODELS), "add the new network's tiny settings to TINY"


def labels_for(kind: kinds.Kind, rng: np.random.Generator) -> np.ndarray:
    """Random labels of the kind's form: (N,) classes, or (N, MAX_DIGITS) numbers of 1-3 digits padded."""
    if kind is kinds.CLASSIFIER:
        return rng.integers(0, 10, IMAGES).astype(np.int32)
    labels = np.full((IMAGES, MAX_DIGITS), PADDING, np.int32)
    for row, length in enumerate(rng.integers(1, 4, IMAGES)):
        labels[row, :length] = rng.integers(0, 10, length)
    return labels


@pytest.fixture(scope="module", params=sorted(TINY))
def trained(request):
    """(name, kind, model after one step, uint8 pixels) for one registered network, tiny."""
    name = request.param
    settings, shape = TINY[name]
    architecture = MODELS[name]
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = architecture.build(shape, 10, **settings)
    compile_for_training(model, 1e-3, 10, architecture.kind)
    pixels = rng.integers(0, 256, (IMAGES, *shape), dtype=np.uint8)
    before = [weight.copy() for weight in model.get_weights()]
    logs = model.train_on_batch(normalise(pixels), labels_for(architecture.kind, rng), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert any(not np.array_equal(old, new) for old, new in zip(before, model.get_weights()))  # it learned
    return name, architecture.kind, model, pixels


def test_its_output_is_its_kinds(trained):
    name, kind, model, pixels = trained
    assert kinds.of_model(model) is kind
    output = np.asarray(model(normalise(pixels), training=False))
    assert output.ndim == kind.output_rank
    np.testing.assert_allclose(output.sum(axis=-1), 1, rtol=1e-5)  # a probability over classes (or symbols)


def test_saved_and_loaded_it_predicts_the_same(trained, tmp_path):
    name, kind, model, pixels = trained
    path = tmp_path / "model.keras"
    model_files.save_model(model, path, training_setup=kind.portable_objective)
    loaded = model_files.load_model(path)
    np.testing.assert_array_equal(loaded(normalise(pixels), training=False), model(normalise(pixels), training=False))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_its_saved_model_serves_what_it_computes(trained, tmp_path):
    name, kind, model, pixels = trained
    export.export_saved_model(model, tmp_path / "saved_model", kind)
    served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures[export.SIGNATURE](pixels=pixels)
    assert set(served) == set(kind.serving_outputs)
    here = kind.serving_function(model)(pixels)
    for output in kind.serving_outputs:
        np.testing.assert_allclose(np.asarray(served[output]), np.asarray(here[output]), rtol=1e-5, atol=1e-6)
