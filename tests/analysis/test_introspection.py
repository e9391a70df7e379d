"""analysis/introspection/ against independent computations: layer-by-layer forward passes, numpy
convolutions, hand-derived receptive fields and input gradients, brute-force rankings, numpy Grad-CAM."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from harness.errors import UserError
from models import MODELS
from analysis.introspection import (
    LayerError,
    ReceptiveField,
    activations,
    crop_receptive_field,
    feature_extractor,
    filter_patterns,
    find_layer,
    grad_cam,
    layer_paths,
    linear_probe,
    pooled_features,
    receptive_field,
    top_activations,
)

CONVNET_PATHS = [
    "conv1", "pool1", "conv1_bn", "conv1_relu", "conv2", "pool2", "conv2_bn", "conv2_relu",
    "conv3", "conv3_bn", "conv3_relu", "flatten", "dense1", "dense1_bn", "dense1_relu", "dropout",
    "logits", "probabilities",
]
MLP_PATHS = ["flatten", "dense1", "dropout1", "dense2", "dropout2", "logits", "probabilities"]


def random_images(shape, count=6, seed=0):
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


def randomise_batch_norms(model, seed=0):
    """Give every batch norm random statistics, so inference mode differs visibly from the identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape).astype("float32"),
                               rng.normal(0, 0.5, beta.shape).astype("float32"),
                               rng.normal(0, 0.5, mean.shape).astype("float32"),
                               rng.uniform(0.5, 2, variance.shape).astype("float32")])
    return model


def registry_model(name, shape=(28, 28, 1), seed=1):
    keras.utils.set_random_seed(seed)
    return randomise_batch_norms(MODELS[name].build(shape, 10), seed)


def nested_model(seed=2):
    """image -> stem -> stage[block[c, b, r], mix] -> pool -> head (Sequential)[flat, hidden] -> logits."""
    keras.utils.set_random_seed(seed)
    block_input = keras.Input((12, 12, 4))
    h = layers.Conv2D(5, 3, padding="same", name="c")(block_input)
    h = layers.BatchNormalization(name="b")(h)
    h = layers.ReLU(name="r")(h)
    block = keras.Model(block_input, h, name="block")
    randomise_batch_norms(block, seed)
    stage_input = keras.Input((12, 12, 4))
    s = layers.Conv2D(6, 3, padding="same", name="mix")(block(stage_input))
    stage = keras.Model(stage_input, s, name="stage")
    head = keras.Sequential([keras.Input((6, 6, 6)), layers.Flatten(name="flat"),
                             layers.Dense(8, activation="tanh", name="hidden")], name="head")
    image = keras.Input((12, 12, 2), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="stem")(image)
    x = layers.MaxPooling2D(2, name="pool")(stage(x))
    logits = layers.Dense(3, name="logits")(head(x))
    return keras.Model(image, layers.Softmax(name="probabilities")(logits), name="nested")


NESTED_PATHS = ["stem", "stage", "stage/block", "stage/block/c", "stage/block/b", "stage/block/r", "stage/mix",
                "pool", "head", "head/flat", "head/hidden", "logits", "probabilities"]


# ----------------------------------------------------------------------------- paths and activations


def test_layer_paths_of_registry_and_nested_models():
    assert layer_paths(registry_model("convnet")) == CONVNET_PATHS
    assert layer_paths(registry_model("mlp")) == MLP_PATHS
    assert layer_paths(nested_model()) == NESTED_PATHS


def test_find_layer_follows_paths_and_names_the_valid_ones():
    model = nested_model()
    assert find_layer(model, "stage/block/c") is model.get_layer("stage").get_layer("block").get_layer("c")
    assert find_layer(model, "head/hidden") is model.get_layer("head").get_layer("hidden")
    assert find_layer(model, "stage") is model.get_layer("stage")
    for wrong in ("conv9", "stage/nope", "stem/c", "stage/block/c/x", ""):
        with pytest.raises(LayerError) as caught:
            find_layer(model, wrong)
        assert str(caught.value) == f"unknown layer {wrong!r}; valid layers: {', '.join(NESTED_PATHS)}."
    assert issubclass(LayerError, UserError)  # the scripts turn it into one line and exit status 2
    with pytest.raises(LayerError, match="valid layers: conv1, pool1, conv1_bn, conv1_relu, conv2"):
        find_layer(registry_model("convnet"), "conv9")


@pytest.mark.parametrize("name,shape", [("convnet", (28, 28, 1)), ("convnet", (32, 32, 3)),
                                        ("mlp", (28, 28, 1)), ("mlp", (32, 32, 3))])
def test_activations_equal_a_layer_by_layer_forward_pass(name, shape):
    model = registry_model(name, shape)
    images = random_images(shape, count=7)
    paths = layer_paths(model)
    # Batches of 3 out of 7 images: the last batch is partial.
    found = activations(model, images, paths, batch_size=3)
    x = images
    for path, result in zip(paths, found):  # these models are chains, so calling layers in order is the model
        x = model.get_layer(path)(x, training=False)
        assert result.dtype == np.float32
        np.testing.assert_allclose(result, x, atol=1e-5, err_msg=path)
    # Inference mode: dropout passes its input through.
    before_dropout = "dense1_relu" if name == "convnet" else "dense1"
    after_dropout = "dropout" if name == "convnet" else "dropout1"
    np.testing.assert_array_equal(found[paths.index(after_dropout)], found[paths.index(before_dropout)])


def test_convnet_conv1_activations_equal_a_numpy_convolution():
    model = registry_model("convnet", (20, 20, 3), seed=5)  # conv3 needs at least 18x18
    images = random_images((20, 20, 3), count=2, seed=5)
    conv, relu = activations(model, images, ["conv1", "conv1_relu"])
    (kernel,) = model.get_layer("conv1").get_weights()  # (3, 3, in, out), no bias
    expected = np.zeros((2, 18, 18, kernel.shape[-1]), np.float32)  # "valid": a 3x3 kernel trims one pixel per edge
    for row, column in np.ndindex(18, 18):
        expected[:, row, column] = np.einsum("bijc,ijco->bo", images[:, row:row + 3, column:column + 3], kernel)
    np.testing.assert_allclose(conv, expected, atol=1e-5)
    pooled = expected.reshape(2, 9, 2, 9, 2, -1).max(axis=(2, 4))  # 2x2 max pool: 18x18 -> 9x9
    bn = model.get_layer("conv1_bn")
    gamma, beta, mean, variance = bn.get_weights()
    np.testing.assert_allclose(relu, np.maximum((pooled - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta, 0),
                               atol=1e-4)


def test_nested_activations_equal_inner_extractors_on_the_outer_tensor():
    model = nested_model()
    images = random_images((12, 12, 2), count=5, seed=3)
    paths = ["stage/block/c", "stage/block/r", "stage/block", "stage/mix", "stage", "pool", "head/hidden", "logits"]
    found = dict(zip(paths, activations(model, images, paths, batch_size=2)))
    stage, head = model.get_layer("stage"), model.get_layer("head")
    block = stage.get_layer("block")
    stem = model.get_layer("stem")(images, training=False)  # the tensor that feeds "stage" in the outer graph
    c_of_block = keras.Model(block.input, block.get_layer("c").output)
    np.testing.assert_allclose(found["stage/block/c"], c_of_block(stem, training=False), atol=1e-5)
    block_out = block(stem, training=False)
    np.testing.assert_allclose(found["stage/block"], block_out, atol=1e-5)
    np.testing.assert_allclose(found["stage/block/r"], block_out, atol=1e-5)  # r is the block's output
    mix = stage.get_layer("mix")(block_out)
    np.testing.assert_allclose(found["stage/mix"], mix, atol=1e-5)
    np.testing.assert_allclose(found["stage"], mix, atol=1e-5)
    pooled = model.get_layer("pool")(mix)
    np.testing.assert_allclose(found["pool"], pooled, atol=1e-5)
    hidden = head.get_layer("hidden")(head.get_layer("flat")(pooled))
    np.testing.assert_allclose(found["head/hidden"], hidden, atol=1e-5)
    np.testing.assert_allclose(found["logits"], model.get_layer("logits")(hidden), atol=1e-5)


def test_nested_activations_survive_a_keras_file_round_trip(tmp_path):
    model = nested_model()
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert layer_paths(reloaded) == NESTED_PATHS
    images = random_images((12, 12, 2), count=3, seed=18)
    paths = ["stage/block/r", "stage/mix", "head/hidden"]
    for before, after in zip(activations(model, images, paths), activations(reloaded, images, paths)):
        np.testing.assert_allclose(after, before, atol=1e-6)
    assert receptive_field(reloaded, "stage/mix") == ReceptiveField(7, 1, 0.0)


def test_feature_extractor_outputs_in_the_order_asked():
    model = nested_model()
    extractor = feature_extractor(model, ["logits", "stage/block/c", "pool"])
    assert isinstance(extractor, keras.Model)
    assert [tuple(output.shape) for output in extractor.outputs] == [(None, 3), (None, 12, 12, 5), (None, 6, 6, 6)]
    single = feature_extractor(model, ["stem"])
    assert len(single.outputs) == 1


def test_activations_of_no_images_and_of_uint8_images():
    model = registry_model("convnet")
    [empty] = activations(model, np.zeros((0, 28, 28, 1), np.float32), ["conv2"])
    assert empty.shape == (0, 11, 11, model.get_layer("conv2").filters)  # 28 -conv1-> 26 -pool1-> 13 -conv2-> 11
    with pytest.raises(ValueError, match="normalise"):
        activations(model, np.zeros((2, 28, 28, 1), np.uint8), ["conv1"])


# ----------------------------------------------------------------------------- receptive fields
#
# Derivations, per axis, input pixel indices (a unit "sees" the listed input pixels):
# - 3x3 'same' conv (stride 1): unit i sees i-1 .. i+1: size 3, stride 1, centre i (offset 0).
# - a second 3x3 'same' conv sees first-conv units i-1 .. i+1, so pixels i-2 .. i+2: size 5, offset 0.
# - then a 2x2 pool (stride 2): unit j sees second-conv units 2j, 2j+1, so pixels 2j-2 .. 2j+3:
#   size 6, stride 2, centre 2j + 0.5 (offset 0.5).
# - 3x3 'valid' conv: unit i sees i .. i+2 (size 3, offset 1); a second one i .. i+4 (size 5, offset 2).
# - 3x3 stride-2 'same' conv on 8 pixels: 4 outputs; TensorFlow pads (4-1)*2 + 3 - 8 = 1 pixel in all,
#   0 before (the smaller half), so unit j sees 2j .. 2j+2: size 3, stride 2, offset 1. A 3x3 'same' conv
#   after it sees its units j-1 .. j+1, so pixels 2j-2 .. 2j+4: size 7, stride 2, offset 1.
# - the same conv on 9 pixels: 5 outputs, (5-1)*2 + 3 - 9 = 2 pixels of padding, 1 before, so unit j sees
#   2j-1 .. 2j+1: size 3, stride 2, offset 0.
# - 3x3 conv with dilation 2, 'valid': unit i taps i, i+2, i+4: size 5, offset 2; a 3x3 'same' conv after
#   it sees dilated units i-1 .. i+1, so pixels i-1 .. i+5: size 7, offset 2.
# - one pixel of zero padding then a 3x3 'valid' conv is a 'same' conv: size 3, offset 0.
# - registry convnet ('valid' 3x3 convs, 2x2 pools): conv1 as the 'valid' conv above (3, 1, 1); pool1 sees
#   conv1 units 2j, 2j+1, pixels 2j .. 2j+3 (4, 2, 1.5); conv2 sees pool1 units j .. j+2, pixels
#   2j .. 2(j+2)+3 = 2j+7 (8, 2, 3.5); pool2 sees conv2 units 2j, 2j+1, pixels 4j .. 4j+9 (10, 4, 4.5);
#   conv3 sees pool2 units j .. j+2, pixels 4j .. 4(j+2)+9 = 4j+17 (18, 4, 8.5).
# - nested model: stem and c are 3x3 'same' (5, 1, 0), mix another (7, 1, 0), the 2x2 pool (8, 2, 0.5).
# - cropping 1 pixel: cropped unit i is pixel i+1 (1, 1, 1); a 3x3 'valid' conv then sees i+1 .. i+3 (3, 1, 2).
# - residual model: a, a 3x3 'same' conv (3, 1, 0); b, another on a (5, 1, 0); their sum sees what either
#   sees (5, 1, 0); cropping the sum by 1 moves unit i's centre to i+1 (5, 1, 1); c, a 3x3 'valid' conv on
#   the sum, sees sum units i .. i+2, pixels i-2 .. i+4 (7, 1, 1); concatenating the two: the union (7, 1, 1).


def positive_conv(filters, kernel, name, **options):
    """All-positive weights: with a positive input no contribution cancels, so the input gradient of
    a unit is non-zero exactly where its field reaches (for dilated kernels, at its taps)."""
    return layers.Conv2D(filters, kernel, name=name, use_bias=False,
                         kernel_initializer=keras.initializers.RandomUniform(0.1, 1.0, seed=len(name)), **options)


def chain(size, *stack):
    image = keras.Input((size, size, 1), name="image")
    x = image
    for layer in stack:
        x = layer(x)
    return keras.Model(image, x)


def residual(size):
    image = keras.Input((size, size, 1), name="image")
    a = positive_conv(2, 3, "a", padding="same")(image)
    b = positive_conv(2, 3, "b", padding="same")(a)
    total = layers.Add(name="sum")([a, b])
    cropped = layers.Cropping2D(1, name="cropped")(total)
    c = positive_conv(2, 3, "c")(total)
    # c first: channel 0, which the gradient check follows, comes from the wider field.
    return keras.Model(image, layers.Concatenate(name="joined")([c, cropped]))


FIELD_CASES = {
    "same_same_pool": (lambda: chain(12, positive_conv(2, 3, "a", padding="same"), layers.ReLU(name="a_relu"),
                                     positive_conv(2, 3, "b", padding="same"),
                                     layers.AveragePooling2D(2, name="pool")),
                       {"a": (3, 1, 0.0), "a_relu": (3, 1, 0.0), "b": (5, 1, 0.0), "pool": (6, 2, 0.5)}),
    "valid": (lambda: chain(12, positive_conv(2, 3, "a"), positive_conv(2, 3, "b")),
              {"a": (3, 1, 1.0), "b": (5, 1, 2.0)}),
    "stride2_even": (lambda: chain(8, positive_conv(2, 3, "a", strides=2, padding="same"),
                                   positive_conv(2, 3, "b", padding="same")),
                     {"a": (3, 2, 1.0), "b": (7, 2, 1.0)}),
    "stride2_odd": (lambda: chain(9, positive_conv(2, 3, "a", strides=2, padding="same")),
                    {"a": (3, 2, 0.0)}),
    "dilated": (lambda: chain(12, positive_conv(2, 3, "a", dilation_rate=2), positive_conv(2, 3, "b", padding="same")),
                {"a": (5, 1, 2.0), "b": (7, 1, 2.0)}),
    "zero_padding": (lambda: chain(10, layers.ZeroPadding2D(1, name="padded"), positive_conv(2, 3, "a")),
                     {"padded": (1, 1, -1.0), "a": (3, 1, 0.0)}),
    "cropping": (lambda: chain(10, layers.Cropping2D(1, name="cropped"), positive_conv(2, 3, "a")),
                 {"cropped": (1, 1, 1.0), "a": (3, 1, 2.0)}),
    "residual": (lambda: residual(10),
                 {"a": (3, 1, 0.0), "b": (5, 1, 0.0), "sum": (5, 1, 0.0), "cropped": (5, 1, 1.0),
                  "c": (7, 1, 1.0), "joined": (7, 1, 1.0)}),
}


@pytest.mark.parametrize("case", FIELD_CASES)
def test_receptive_fields_match_derivations(case):
    build, expected = FIELD_CASES[case]
    model = build()
    for path, (size, stride, offset) in expected.items():
        assert receptive_field(model, path) == ReceptiveField(size, stride, offset), path


def test_registry_convnet_and_nested_receptive_fields_match_derivations():
    convnet = registry_model("convnet")
    # "valid" convolutions: unit 0 of conv1 sees pixels 0..2 (centre 1); each later layer's unit 0
    # is centred on the middle of the first window of units it reads.
    # Each block pools before its batch norm and ReLU, so conv1_relu sees what pool1 sees.
    expected = {"conv1": (3, 1, 1.0), "pool1": (4, 2, 1.5), "conv1_relu": (4, 2, 1.5), "conv2": (8, 2, 3.5),
                "pool2": (10, 4, 4.5), "conv2_relu": (10, 4, 4.5), "conv3": (18, 4, 8.5), "conv3_relu": (18, 4, 8.5)}
    for path, field in expected.items():
        assert receptive_field(convnet, path) == ReceptiveField(*field), path
    nested = nested_model()
    expected = {"stem": (3, 1, 0.0), "stage/block/c": (5, 1, 0.0), "stage/block/r": (5, 1, 0.0),
                "stage/block": (5, 1, 0.0), "stage/mix": (7, 1, 0.0), "stage": (7, 1, 0.0), "pool": (8, 2, 0.5)}
    for path, field in expected.items():
        assert receptive_field(nested, path) == ReceptiveField(*field), path


def test_a_layer_is_drawn_after_its_batch_norm_and_activation_wherever_its_block_pools():
    from analysis.introspection.survey import describe

    # The convnet pools before its batch norm: conv1's response is conv1_relu, with pool1's field.
    convnet = registry_model("convnet")
    conv1 = describe(convnet, "conv1")
    assert (conv1.response, conv1.field) == ("conv1_relu", ReceptiveField(4, 2, 1.5))
    assert describe(convnet, "conv3").response == "conv3_relu" and describe(convnet, "dense1").response == "dense1_relu"
    # A block that pools after its ReLU: the pool is not part of the response.
    inputs = keras.Input((12, 12, 1))
    x = layers.Conv2D(4, 3, name="conv")(inputs)
    x = layers.ReLU(name="relu")(layers.BatchNormalization(name="bn")(x))
    x = layers.MaxPooling2D(2, name="pool")(x)
    pooled_last = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    conv = describe(pooled_last, "conv")
    assert (conv.response, conv.field) == ("relu", ReceptiveField(3, 1, 1.0))
    # A pool followed by another convolution is not followed either.
    x = layers.MaxPooling2D(2, name="pool")(layers.Conv2D(4, 3, name="conv")(inputs))
    pool_then_conv = keras.Model(inputs, layers.Conv2D(2, 3, name="next")(x))
    assert describe(pool_then_conv, "conv").response == "conv"


def test_receptive_field_bounds_and_centres():
    field = ReceptiveField(6, 2, 0.5)
    assert field.centre(0) == 0.5 and field.centre(3) == 6.5
    assert field.bounds(0) == (-2, 4) and field.bounds(3) == (4, 10)
    assert ReceptiveField(3, 2, 1.0).bounds(3) == (6, 9)


def input_gradient(model, path, row, col, image=None):
    """|d unit (row, col, channel 0) / d input| summed over channels, (H, W), at `image` (default all ones)."""
    layer_output = keras.Model(model.input, model.get_layer(path).output)
    image = tf.ones((1, *model.input_shape[1:])) if image is None else tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(image)
        unit = layer_output(image, training=False)[0, row, col, 0]
    return np.abs(tape.gradient(unit, image)[0].numpy()).sum(axis=-1)


@pytest.mark.parametrize("case", FIELD_CASES)
def test_receptive_field_is_where_the_input_gradient_reaches(case):
    build, expected = FIELD_CASES[case]
    model = build()
    height, width = model.input_shape[1:3]
    for path in expected:
        field = receptive_field(model, path)
        last = model.get_layer(path).output.shape[1] - 1
        for row, col in [(0, 0), (last // 2, last), (last, 1)]:
            rows, cols = np.nonzero(input_gradient(model, path, row, col))
            (top, bottom), (left, right) = field.bounds(row), field.bounds(col)
            top, bottom, left, right = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
            if top >= bottom or left >= right:  # a unit of zero padding sees no pixel of the image
                assert rows.size == 0, (path, row, col)
                continue
            # Non-zero only inside the bounds, and at each bound's edge (clipped to the image): tight.
            assert (rows.min(), rows.max() + 1) == (top, bottom), (path, row, col)
            assert (cols.min(), cols.max() + 1) == (left, right), (path, row, col)


def test_registry_convnet_input_gradient_stays_inside_the_field():
    # Max pooling passes gradient to one input of each window, so only containment is checked here.
    # A random image and layers before their ReLU, so that the unit has a gradient.
    model = registry_model("convnet")
    [image] = random_images((28, 28, 1), count=1, seed=16)
    for path, row, col in [("conv2", 0, 0), ("conv2", 7, 10), ("conv3", 1, 1), ("conv3", 2, 0)]:
        field = receptive_field(model, path)
        rows, cols = np.nonzero(input_gradient(model, path, row, col, image))
        assert rows.size, path
        assert field.bounds(row)[0] <= rows.min() and rows.max() < field.bounds(row)[1]
        assert field.bounds(col)[0] <= cols.min() and cols.max() < field.bounds(col)[1]


def test_receptive_field_refuses_what_it_cannot_reason_about():
    convnet = registry_model("convnet")
    for path in ("flatten", "dense1", "dense1_relu", "logits", "probabilities"):
        with pytest.raises(LayerError, match=f"^{path} has no spatial receptive field; it sees the whole image"):
            receptive_field(convnet, path)
    with pytest.raises(LayerError, match="has no spatial receptive field"):
        receptive_field(registry_model("mlp"), "dense1")
    with pytest.raises(LayerError, match="head/hidden has no spatial"):
        receptive_field(nested_model(), "head/hidden")
    tall = chain(12, layers.Conv2D(2, (3, 1), name="tall"), layers.ReLU(name="after"))
    with pytest.raises(LayerError, match="tall makes the receptive field of after non-square"):
        receptive_field(tall, "after")
    open_size = chain(None, layers.Conv2D(2, 3, padding="same", name="a"),
                      layers.Conv2D(2, 3, strides=2, padding="same", name="b"))
    assert receptive_field(open_size, "a") == ReceptiveField(3, 1, 0.0)  # stride 1: the size does not matter
    with pytest.raises(LayerError, match="b pads 'same' with stride 2 on an input of open size"):
        receptive_field(open_size, "b")
    upsampled = chain(12, layers.UpSampling2D(name="up"), layers.Conv2D(2, 3, name="c"))
    with pytest.raises(LayerError, match=r"through up \(UpSampling2D\)"):
        receptive_field(upsampled, "c")
    with pytest.raises(LayerError, match="unknown layer"):
        receptive_field(convnet, "conv9")


# ----------------------------------------------------------------------------- top activations and crops


def test_top_activations_are_the_k_highest_one_per_image():
    maps = np.random.default_rng(6).normal(size=(12, 5, 4, 3)).astype(np.float32)
    unit, k = 2, 5
    found = top_activations(maps, unit, k)
    # Brute force: every (value, image, row, col), best per image, best images first.
    best = {}
    for image, row, col in np.ndindex(12, 5, 4):
        value = maps[image, row, col, unit]
        if image not in best or value > best[image][0]:
            best[image] = (value, row, col)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:k]
    assert found == [(image, row, col, pytest.approx(float(value))) for image, (value, row, col) in ranked]
    assert len({image for image, *_ in found}) == k
    assert [value for *_, value in found] == sorted((value for *_, value in found), reverse=True)
    assert max(value for value, *_ in best.values()) == pytest.approx(found[0][3])
    assert len(top_activations(maps, unit, 50)) == 12  # never more entries than images
    with pytest.raises(LayerError, match="unit 3 does not exist"):
        top_activations(maps, 3, 2)


def test_top_activations_of_a_dense_layer():
    values = np.random.default_rng(7).normal(size=(20, 6)).astype(np.float32)
    found = top_activations(values, 4, 3)
    order = np.argsort(-values[:, 4])[:3]
    assert found == [(int(i), None, None, pytest.approx(float(values[i, 4]))) for i in order]


@pytest.mark.parametrize("field", [ReceptiveField(6, 2, 0.5), ReceptiveField(3, 1, 1.0), ReceptiveField(3, 2, 1.0),
                                   ReceptiveField(18, 4, 1.5)])
def test_crop_receptive_field_returns_the_pixels_of_the_bounds(field):
    count, height, width, channels = 2, 10, 9, 2
    # Pixel value = a code of its coordinates (never 0, so zero-fill shows).
    codes = np.zeros((count, height, width, channels), np.float32)
    for image, row, col, channel in np.ndindex(codes.shape):
        codes[image, row, col, channel] = 1 + image * 100_000 + row * 1000 + col * 10 + channel
    for image, row, col in [(0, 0, 0), (1, 2, 3), (1, 4, 1), (0, 3, 3)]:
        patch = crop_receptive_field(codes, field, image, row, col)
        assert patch.shape == (field.size, field.size, channels) and patch.dtype == codes.dtype
        top = field.offset + row * field.stride - (field.size - 1) / 2
        left = field.offset + col * field.stride - (field.size - 1) / 2
        for a, b, channel in np.ndindex(patch.shape):
            r, c = int(top + a), int(left + b)
            inside = 0 <= r < height and 0 <= c < width
            assert patch[a, b, channel] == (codes[image, r, c, channel] if inside else 0), (row, col, a, b)


def test_crop_at_the_corner_is_zero_filled():
    images = np.arange(1, 1 + 6 * 6, dtype=np.float32).reshape(1, 6, 6, 1)
    patch = crop_receptive_field(images, ReceptiveField(6, 2, 0.5), 0, 0, 0)  # bounds [-2, 4)
    assert np.all(patch[:2] == 0) and np.all(patch[:, :2] == 0)
    np.testing.assert_array_equal(patch[2:, 2:, 0], images[0, :4, :4, 0])


# ----------------------------------------------------------------------------- filter patterns


def small_convnet(seed=8):
    keras.utils.set_random_seed(seed)
    image = keras.Input((12, 12, 1), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv1")(image)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = layers.BatchNormalization(name="conv2_bn")(x)
    x = layers.ReLU(name="conv2_relu")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(5, name="dense1")(x)
    return randomise_batch_norms(keras.Model(image, layers.Dense(3, name="logits")(x)), seed)


# conv2_relu's units 0, 1 and 5 cannot be reached from images in [0, 1] in this small random model (their
# pre-activation stays below zero); unit 3 starts silent and wakes up.
def small_mlp(seed=8):
    keras.utils.set_random_seed(seed)
    return MODELS["mlp"].build((12, 12, 1), 3, hidden_units=(16, 8))  # hidden layers: Dense(activation="relu")


@pytest.mark.parametrize("build,path,units", [(small_convnet, "conv2_relu", [2, 3, 4, 4]),
                                              (small_convnet, "conv1", [3, 0]), (small_convnet, "dense1", [1, 4]),
                                              (small_mlp, "dense1", list(range(16))), (small_mlp, "dense2", [0, 7])])
def test_filter_patterns_increase_each_unit(build, path, units):
    model = build()
    patterns, start, end = filter_patterns(model, path, units)  # the default 64 steps
    assert patterns.shape == (len(units), 12, 12, 1) and patterns.dtype == np.float32
    assert patterns.min() >= 0 and patterns.max() <= 1
    assert start.shape == end.shape == (len(units),)
    assert np.all(end > start), (start, end)
    # The activations reported are the unit's own mean activation, measured on the returned images.
    [measured] = activations(model, patterns, [path])
    measured = measured.reshape(len(units), -1, measured.shape[-1])
    np.testing.assert_allclose(end, [measured[i, :, unit].mean() for i, unit in enumerate(units)], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fused", [False, True], ids=["relu-layer", "conv-activation"])
def test_filter_patterns_wake_a_unit_silent_on_the_start_image(fused):
    image = keras.Input((8, 8, 1))
    conv = layers.Conv2D(1, 3, name="conv", activation="relu" if fused else None)
    x = conv(image) if fused else layers.ReLU(name="relu")(conv(image))
    model = keras.Model(image, x)
    # Mid-grey gives 9 * 0.5 - 6 < 0 everywhere: silent; a bright 3x3 patch gives 9 - 6 > 0.
    conv.set_weights([np.ones((3, 3, 1, 1), np.float32), np.array([-6.0], np.float32)])
    patterns, start, end = filter_patterns(model, "conv" if fused else "relu", [0], steps=32)
    assert start[0] == 0 and end[0] > 0
    [measured] = activations(model, patterns, ["conv" if fused else "relu"])
    assert end[0] == pytest.approx(measured.mean(), abs=1e-6)


def test_filter_patterns_on_a_nested_layer_and_a_bad_unit():
    model = nested_model()
    patterns, start, end = filter_patterns(model, "stage/block/r", [1, 4], steps=16)
    assert patterns.shape == (2, 12, 12, 2) and np.all(end > start)
    with pytest.raises(LayerError, match="conv2_relu has 6 units"):
        filter_patterns(small_convnet(), "conv2_relu", [0, 6])


# ----------------------------------------------------------------------------- Grad-CAM


def blob_model():
    """Class 1's logit is the mean of a bright-blob detector; class 0's that of a dark-area detector."""
    image = keras.Input((16, 16, 1))
    detect = layers.Conv2D(2, 3, padding="same", name="detect")
    x = layers.ReLU(name="detect_relu")(detect(image))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    logits = layers.Dense(2, name="logits")
    model = keras.Model(image, layers.Softmax()(logits(x)))
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[..., 0, 0], kernel[..., 0, 1] = 1 / 9, -1 / 9
    detect.set_weights([kernel, np.array([-0.5, 0.5], np.float32)])
    logits.set_weights([np.array([[0, 1], [1, 0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_grad_cam_points_at_the_blob():
    rng = np.random.default_rng(9)
    images = rng.uniform(0, 0.1, (6, 16, 16, 1)).astype(np.float32)
    corners = []
    for index, image in enumerate(images):
        bottom_right = index % 3 == 2
        row, col = rng.integers(1, 4, 2) + (9 if bottom_right else 0)
        image[row:row + 3, col:col + 3] = 1.0
        corners.append(bottom_right)
    heatmaps, classes = grad_cam(blob_model(), images, "detect_relu", class_indices=np.ones(6, int))
    assert heatmaps.shape == (6, 16, 16) and heatmaps.dtype == np.float32 and list(classes) == [1] * 6
    for heatmap, bottom_right in zip(heatmaps, corners):
        row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
        assert (row >= 8 and col >= 8) if bottom_right else (row < 8 and col < 8)
        assert heatmap.max() == pytest.approx(1.0)


def linear_head_model(nested, pooled, seed=10):
    """conv -> relu ("act", or "block/act" inside a nested model) [-> 2x2 average pool "pooled"] -> dense logits."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 1))
    stack = [layers.Conv2D(4, 3, padding="same", name="conv"), layers.ReLU(name="act")]
    if pooled:
        stack.append(layers.AveragePooling2D(2, name="pooled"))
    if nested:
        block = chain(8, *stack)
        x = keras.Model(block.input, block.output, name="block")(image)
    else:
        x = image
        for layer in stack:
            x = layer(x)
    logits = layers.Dense(3, name="logits")(layers.Flatten()(x))
    return keras.Model(image, layers.Softmax()(logits))


def upsample_bilinear(maps, size):
    """(N, h, w) -> (N, size, size), half-pixel centres, edges clamped: np.interp along each axis."""
    def along(values, axis):
        length = values.shape[axis]
        where = (np.arange(size) + 0.5) * length / size - 0.5
        return np.apply_along_axis(lambda line: np.interp(where, np.arange(length), line), axis, values)
    return along(along(maps, 1), 2)


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("pooled", [False, True], ids=["same-size", "upsampled"])
def test_grad_cam_equals_a_numpy_computation(nested, pooled):
    model = linear_head_model(nested, pooled)
    images = random_images((8, 8, 1), count=5, seed=11)
    conv_path = ("block/" if nested else "") + ("pooled" if pooled else "act")
    [maps, logits] = activations(model, images, [conv_path, "logits"])
    kernel, _ = model.get_layer("logits").get_weights()
    # logits = flatten(maps) @ kernel + bias, so d logit_k / d maps is kernel[:, k] in the maps' shape.
    gradients = kernel.reshape(*maps.shape[1:], 3)
    for classes in (None, np.array([2, 0, 1, 1, 0])):
        heatmaps, chosen = grad_cam(model, images, conv_path, class_indices=classes)
        expected_classes = logits.argmax(axis=1) if classes is None else classes
        np.testing.assert_array_equal(chosen, expected_classes)
        weights = gradients.mean(axis=(0, 1))[..., expected_classes].T  # (N, c)
        cams = np.maximum(np.einsum("nhwc,nc->nhw", maps, weights), 0)
        if pooled:
            cams = upsample_bilinear(cams, 8)
        peaks = cams.max(axis=(1, 2), keepdims=True)
        expected = np.where(peaks > 0, cams / np.where(peaks > 0, peaks, 1), 0)
        np.testing.assert_allclose(heatmaps, expected, atol=1e-5)


def test_grad_cam_through_nested_models_equals_manual_gradients():
    model = nested_model()
    images = random_images((12, 12, 2), count=4, seed=12)
    heatmaps, classes = grad_cam(model, images, "stage/block/r")
    # Independent: call the layers by hand, with the block's output as the watched tensor.
    stage, head = model.get_layer("stage"), model.get_layer("head")
    maps = stage.get_layer("block")(model.get_layer("stem")(images), training=False)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        logits = model.get_layer("logits")(head(model.get_layer("pool")(stage.get_layer("mix")(maps))))
        chosen = tf.reduce_sum(logits * tf.one_hot(classes, 3))
    gradients = tape.gradient(chosen, maps).numpy()
    np.testing.assert_array_equal(classes, logits.numpy().argmax(axis=1))
    cams = np.maximum((gradients.mean(axis=(1, 2), keepdims=True) * maps.numpy()).sum(-1), 0)
    peaks = cams.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(heatmaps, np.where(peaks > 0, cams / np.maximum(peaks, 1e-30), 0), atol=1e-5)


def test_grad_cam_inside_a_wrapped_classifier_equals_grad_cam_on_it():
    classifier = small_convnet()
    image = keras.Input((12, 12, 1))
    dimmed = layers.Rescaling(0.5, offset=0.25, name="dim")(image)
    wrapper = keras.Model(image, layers.Softmax()(classifier(dimmed)))
    images = random_images((12, 12, 1), count=4, seed=17)
    heatmaps, classes = grad_cam(wrapper, images, f"{classifier.name}/conv2_relu",
                                 logits_path=f"{classifier.name}/logits")
    expected, expected_classes = grad_cam(classifier, 0.5 * images + 0.25, "conv2_relu")
    np.testing.assert_allclose(heatmaps, expected, atol=1e-6)
    np.testing.assert_array_equal(classes, expected_classes)
    with pytest.raises(LayerError, match="in the outer model or in the same nested model"):
        grad_cam(wrapper, images, "dim", logits_path=f"{classifier.name}/logits")


def test_grad_cam_on_the_registry_convnet_and_on_a_dense_layer():
    model = registry_model("convnet")
    images = random_images((28, 28, 1), count=3, seed=13)
    heatmaps, classes = grad_cam(model, images, "conv3_relu", batch_size=2)
    assert heatmaps.shape == (3, 28, 28) and heatmaps.min() >= 0
    # Each map is scaled to its own peak: 1 exactly, unless nothing in the image raised the class at all.
    peaks = heatmaps.max(axis=(1, 2))
    assert np.all(np.isclose(peaks, 1, rtol=0, atol=1e-6) | (peaks == 0)) and np.isclose(peaks, 1).any(), peaks
    np.testing.assert_array_equal(classes, np.argmax(model(images, training=False), axis=1))
    with pytest.raises(LayerError, match="dense1"):
        grad_cam(model, images, "dense1")


# ----------------------------------------------------------------------------- linear probes


def test_pooled_features_are_channel_means_then_maxima():
    maps = np.random.default_rng(14).normal(size=(3, 4, 5, 6)).astype(np.float32)
    features = pooled_features(maps)
    assert features.shape == (3, 12)
    for image, channel in np.ndindex(3, 6):
        assert features[image, channel] == pytest.approx(maps[image, :, :, channel].mean(), abs=1e-6)
        assert features[image, 6 + channel] == maps[image, :, :, channel].max()
    dense = maps.reshape(3, -1)
    np.testing.assert_array_equal(pooled_features(dense), dense)


def test_linear_probe_separable_features_and_random_labels():
    rng = np.random.default_rng(15)
    centres = rng.normal(0, 3, (10, 20))
    labels = rng.integers(0, 10, 3000)
    features = centres[labels] + rng.normal(0, 0.5, (3000, 20))
    assert linear_probe(features[:1000], labels[:1000], features[1000:], labels[1000:]) > 0.98
    noise = rng.normal(size=(3000, 20))
    chance = linear_probe(noise[:1000], labels[:1000], noise[1000:], rng.integers(0, 10, 2000))
    assert 0.06 < chance < 0.14  # 10 classes; 2,000 test examples: standard deviation 0.7 points
