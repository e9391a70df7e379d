"""FusedBatchNormalization against a numpy batch norm and against Keras's own layer, step by step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.fused_batch_norm import FusedBatchNormalization

EPSILON = 1e-3  # Keras's default
MOMENTUM = 0.9


def pair(shape, seed=0):
    """Our layer and Keras's, built for inputs of `shape`, given the same random scale, shift and running statistics."""
    channels = shape[-1]
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 2.0, channels), rng.normal(0, 1, channels),  # gamma, beta
               rng.normal(0, 1, channels), rng.uniform(0.5, 2.0, channels)]  # moving mean, moving variance
    layers = []
    for kind in (FusedBatchNormalization, keras.layers.BatchNormalization):
        layer = kind(momentum=MOMENTUM, epsilon=EPSILON)
        layer.build((None, *shape[1:]))
        layer.set_weights([w.astype(np.float32) for w in weights])
        layers.append(layer)
    return layers


def feature_maps(shape=(8, 5, 6, 3), seed=1):
    # Far from zero mean and unit variance, so that normalising does something.
    return np.random.default_rng(seed).normal(3.0, 2.5, shape).astype(np.float32)


def test_training_output_and_running_statistics_match_numpy():
    x = feature_maps()
    fused, _ = pair(x.shape)
    gamma, beta, moving_mean, moving_variance = fused.get_weights()
    outputs = np.asarray(fused(x, training=True))

    mean, variance = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # per channel, biased
    np.testing.assert_allclose(outputs, (x - mean) / np.sqrt(variance + EPSILON) * gamma + beta, atol=2e-5)
    count = x.size // x.shape[-1]  # values per channel: 8 * 5 * 6 = 240
    new_mean, new_variance = fused.get_weights()[2:]
    np.testing.assert_allclose(new_mean, MOMENTUM * moving_mean + (1 - MOMENTUM) * mean, rtol=1e-5)
    # The fused kernel hands back the unbiased batch variance (Bessel's correction).
    np.testing.assert_allclose(new_variance, MOMENTUM * moving_variance
                               + (1 - MOMENTUM) * variance * count / (count - 1), rtol=1e-5)


def test_training_gradients_match_keras_batch_norm():
    x = tf.constant(feature_maps(seed=3))
    fused, plain = pair(x.shape, seed=2)
    upstream = tf.constant(np.random.default_rng(4).normal(size=x.shape).astype(np.float32))
    gradients = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for ours, theirs, name in zip(*gradients, ("inputs", "gamma", "beta")):
        np.testing.assert_allclose(ours, theirs, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("case", ["inference", "frozen", "dense inputs"])
def test_other_cases_are_keras_own_computation(case):
    x = feature_maps((8, 3, 3, 4), seed=6)
    if case == "dense inputs":
        x = x.reshape(-1, 4)
    fused, plain = pair(x.shape, seed=5)
    training = case != "inference"
    if case == "frozen":
        fused.trainable = plain.trainable = False  # a frozen batch norm uses its running statistics
    np.testing.assert_array_equal(fused(x, training=training), plain(x, training=training))
    np.testing.assert_array_equal(fused.get_weights()[2:], plain.get_weights()[2:])


def test_a_saved_model_loads_back_with_the_fused_layer(tmp_path):
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, FusedBatchNormalization(name="bn")(keras.layers.Conv2D(3, 3, name="conv")(inputs)))
    model.compile(optimizer="sgd", loss="mse")
    # One step moves the statistics.
    model.fit(feature_maps((16, 6, 6, 2)), np.zeros((16, 4, 4, 3), np.float32), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(reloaded.get_layer("bn"), FusedBatchNormalization)
    x = feature_maps((4, 6, 6, 2), seed=7)
    np.testing.assert_array_equal(reloaded(x, training=False), model(x, training=False))


def test_the_convnet_builds_with_keras_batch_norm_for_the_speed_bench():
    # bench/speed.py's ours-convnet-keras-bn times this against the default, which decides whether the fused
    # layer stays (it must save at least 10 % of the fit time; docs/history.md, 2026-12-07).
    from models.convnet import build_convnet

    default = build_convnet((28, 28, 1), 10)
    plain = build_convnet((28, 28, 1), 10, batch_norm=keras.layers.BatchNormalization)
    assert [layer.name for layer in plain.layers] == [layer.name for layer in default.layers]
    assert [type(layer).__name__ for layer in default.layers].count("FusedBatchNormalization") == 3
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert plain.count_params() == default.count_params()
