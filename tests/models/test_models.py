"""Every registered classifier on both input shapes: outputs, layer names, round trips, a manual forward pass.

The reader's are in test_reader.py; every network, the reader too, in a tiny configuration in test_tiny.py.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

from harness.errors import UserError
from models import CLASSIFIERS, MODELS
from serving import export
from models.convnet import smallest_side
from models.mlp import build_mlp
from models.training import one_cycle

INPUT_SHAPES = [(28, 28, 1), (32, 32, 3)]
ADDRESSED_LAYERS = {
    "mlp": ["dense1", "dense2", "logits"],
    "convnet": ["conv1", "conv2", "conv3", "conv1_relu", "conv3_relu", "dense1", "logits"],
}


def images_for(shape, count=6, seed=0):
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


@pytest.fixture(scope="module", params=[(name, shape) for name in CLASSIFIERS for shape in INPUT_SHAPES],
                ids=lambda case: f"{case[0]}-{case[1][0]}x{case[1][1]}x{case[1][2]}")
def built(request):
    name, shape = request.param
    keras.utils.set_random_seed(1)
    return name, shape, MODELS[name].build(shape, 10)


def test_every_model_has_addressed_layers():
    assert set(ADDRESSED_LAYERS) == set(CLASSIFIERS), "add the new model's addressed layers above"


def test_output_is_a_probability_per_class(built):
    name, shape, model = built
    probabilities = np.asarray(model(images_for(shape), training=False))
    assert probabilities.shape == (6, 10)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.input_shape == (None, *shape)


def test_named_layers_and_logits_feed_softmax(built):
    name, shape, model = built
    names = {layer.name for layer in model.layers}
    assert set(ADDRESSED_LAYERS[name]) <= names
    # The output must be the softmax of the `logits` layer (Grad-CAM and probes rely on it).
    images = images_for(shape)
    logits = keras.Model(model.input, model.get_layer("logits").output)(images, training=False)
    np.testing.assert_allclose(model(images, training=False), tf.nn.softmax(logits), atol=1e-6)


def test_keras_file_round_trip_is_exact(built, tmp_path):
    name, shape, model = built
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    images = images_for(shape, seed=2)
    np.testing.assert_array_equal(model(images, training=False), reloaded(images, training=False))
    assert [layer.name for layer in reloaded.layers] == [layer.name for layer in model.layers]


def test_our_savedmodel_export_matches_model(built, tmp_path):
    """serving/export.py's SavedModel of every model and shape: raw uint8 pixels in, the model's answers out."""
    name, shape, model = built
    export.export_saved_model(model, tmp_path / "saved_model")
    serving = tf.saved_model.load(str(tmp_path / "saved_model")).signatures[export.SIGNATURE]
    pixels = np.random.default_rng(3).integers(0, 256, (6, *shape), dtype=np.uint8)
    outputs = serving(**{export.INPUT: tf.constant(pixels)})
    expected = np.asarray(model(pixels.astype(np.float32) / 255, training=False))  # the scaling training applies
    np.testing.assert_allclose(outputs[export.PROBABILITIES], expected, atol=1e-6)
    np.testing.assert_array_equal(outputs[export.DIGIT], expected.argmax(axis=1))


def test_mlp_matches_a_numpy_forward_pass():
    keras.utils.set_random_seed(4)
    model = build_mlp((28, 28, 1), 10, hidden_units=(32, 16), activation="tanh", dropout=0.5)
    images = images_for((28, 28, 1), seed=4)
    hidden = images.reshape(len(images), -1)
    for layer in ("dense1", "dense2"):
        kernel, bias = model.get_layer(layer).get_weights()
        hidden = np.tanh(hidden @ kernel + bias)  # dropout is off at inference
    kernel, bias = model.get_layer("logits").get_weights()
    logits = hidden @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model(images, training=False), expected, atol=1e-5)


def test_convnet_first_block_matches_a_numpy_convolution():
    keras.utils.set_random_seed(5)
    model = MODELS["convnet"].build((20, 20, 3), 10)  # the smallest inputs conv3 accepts are 18x18
    bn = model.get_layer("conv1_bn")
    # Give batch norm non-trivial statistics so the check covers it.
    rng = np.random.default_rng(5)
    bn.set_weights([rng.uniform(0.5, 2, w.shape).astype("float32") if i in (0, 3) else
                    rng.normal(0, 0.5, w.shape).astype("float32") for i, w in enumerate(bn.get_weights())])
    images = images_for((20, 20, 3), count=2, seed=5)
    (kernel,) = model.get_layer("conv1").get_weights()  # (3, 3, in, out), no bias
    conv = np.zeros((2, 18, 18, kernel.shape[-1]), np.float32)  # "valid": a 3x3 kernel trims one pixel per edge
    for row, column in np.ndindex(18, 18):
        conv[:, row, column] = np.einsum("bijc,ijco->bo", images[:, row:row + 3, column:column + 3], kernel)
    pooled = conv.reshape(2, 9, 2, 9, 2, -1).max(axis=(2, 4))  # 2x2 max pool, before the batch norm: 18x18 -> 9x9
    gamma, beta, mean, variance = bn.get_weights()
    expected = np.maximum((pooled - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta, 0)
    block = keras.Model(model.input, model.get_layer("conv1_relu").output)
    np.testing.assert_allclose(block(images, training=False), expected, atol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_mlp_settings(activation):
    model = build_mlp((28, 28, 1), 7, hidden_units=(64, 32, 16), activation=activation)
    dense = [layer for layer in model.layers if layer.name.startswith("dense")]
    assert [layer.units for layer in dense] == [64, 32, 16]
    assert all(layer.activation.__name__ == activation for layer in dense)
    assert model.output_shape == (None, 7)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        build_mlp((28, 28, 1), 10, activation="swish")


def test_one_cycle_schedule_warms_up_then_decays_to_zero():
    schedule = one_cycle(1e-2, total_steps=100)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(1e-3)
    assert rates.argmax() == 20 and rates.max() == pytest.approx(1e-2)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) <= 0)
    assert rates[-1] == pytest.approx(0, abs=1e-9)


def test_convnet_refuses_images_too_small_for_its_blocks():
    # Independent count: follow an image side through valid 3x3 convolutions and 2x2 poolings.
    def survives(side, blocks):
        for block in range(blocks):
            side -= 2
            if side < 1:
                return False
            if block < blocks - 1:
                side //= 2
        return True

    for blocks in (1, 2, 3, 4):
        assert smallest_side(blocks) == next(side for side in range(1, 200) if survives(side, blocks))
    assert MODELS["convnet"].build((18, 18, 1), 10).output_shape == (None, 10)
    with pytest.raises(UserError, match="at least 18x18 pixels, and these are 17x30"):
        MODELS["convnet"].build((17, 30, 1), 10)


def test_the_recipe_names_its_epochs_on_a_data_set_and_still_reaches_its_least_steps():
    from models import MODELS, default_epochs

    convnet = MODELS["convnet"]
    assert default_epochs(convnet, 310, "handwriting") == dict(convnet.epochs_on)["handwriting"] == 6
    assert default_epochs(convnet, 211, "mnist") == convnet.epochs == 3
    assert default_epochs(convnet, 10, "handwriting") == 63  # min_steps still holds: 630 steps of 10
