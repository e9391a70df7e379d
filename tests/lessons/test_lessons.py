"""The lessons' claims, each checked against a computation of its own, and each lesson run end to end, tiny."""

import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from data import default_data_dir
from lessons import fitting, hidden, neuron, pixels, xor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_pngs(folder: Path, names: list[str]) -> None:
    for name in names:
        assert (folder / name).read_bytes()[:8] == PNG_SIGNATURE, f"{name} is not a PNG"


def has_mnist(folder: Path) -> bool:
    return (folder / "mnist.npz").is_file() or (folder / "train-images-idx3-ubyte.gz").is_file()


# ---------------------------------------------------------------- neuron


def test_a_neuron_is_a_keras_dense_unit():
    rng = np.random.default_rng(0)
    inputs, weights, bias = rng.normal(size=(5, 3)), rng.normal(size=3), 0.7
    for name in ("sigmoid", "tanh", "relu"):
        dense = keras.layers.Dense(1, activation=name, dtype="float64")
        dense.build((None, 3))
        dense.set_weights([weights[:, None], np.array([bias])])
        np.testing.assert_allclose(neuron.neuron(inputs, weights, bias, neuron.ACTIVATIONS[name]),
                                   dense(inputs).numpy()[:, 0], atol=1e-12)


def test_two_steep_sigmoids_make_a_bump_of_the_given_height():
    x = np.linspace(-10, 10, 2001)
    height = 0.7
    bump = neuron.bump(x, -5, 5, height)
    np.testing.assert_allclose(bump[np.abs(x) < 4.99], height, atol=1e-3)
    np.testing.assert_allclose(bump[np.abs(x) > 5.01], 0, atol=1e-3)


def test_step_sum_error_falls_as_n_grows():
    x = np.linspace(-10, 10, 4001)[1:-1]
    counts = [4, 8, 16, 32, 64, 128]
    errors = [np.max(np.abs(neuron.step_sum(np.sin, count, x) - np.sin(x))) for count in counts]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False)), errors
    for count, error in zip(counts, errors, strict=True):
        # Each bump is 20 / count wide and as high as sin at its middle; sin's slope is at most 1.
        assert error <= 10 / count + 1e-3, (count, error)


def test_neuron_lesson_runs(tmp_path, capsys):
    assert neuron.main(["--steps", "2", "8", "--hidden", "4", "--epochs", "2", "--out", str(tmp_path)]) == 0
    assert_pngs(tmp_path, ["activations.png", "steps.png", "trained.png"])
    assert "largest error" in capsys.readouterr().out


# ---------------------------------------------------------------- pixels


def test_training_images_are_64_zeros_and_ones_with_at_most_two_pixels_flipped():
    images, targets = pixels.training_images()
    assert images.shape == (64, 12) and targets.shape == (64, 2)
    assert len({image.tobytes() for image in images}) == 64
    for image, target in zip(images, targets, strict=True):
        base = (pixels.ZERO, pixels.ONE)[int(target.argmax())].flatten()
        assert np.sum(image != base) <= 2
    np.testing.assert_array_equal(targets.sum(axis=0), [32, 32])


def test_hand_written_backpropagation_equals_keras_and_finite_differences():
    images, targets = pixels.training_images()
    weights = pixels.initial_weights(np.random.default_rng(5))
    mine = pixels.gradients(weights, images, targets).as_list()
    model = pixels.keras_network()
    model.get_layer("hidden").set_weights([weights.hidden_w, weights.hidden_b])
    model.get_layer("output").set_weights([weights.output_w, weights.output_b])
    with tf.GradientTape() as tape:
        cost = 0.5 * tf.reduce_sum(tf.square(model(images) - targets))
    theirs = tape.gradient(cost, model.trainable_weights)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-6, rtol=0)
    # And every weight by central differences of the numpy cost alone.
    shift = 1e-6
    for array, gradient in enumerate(mine):
        for index in np.ndindex(gradient.shape):
            moved = []
            for sign in (1, -1):
                copies = [w.copy() for w in weights.as_list()]
                copies[array][index] += sign * shift
                moved.append(pixels.cost(pixels.Weights(*copies), images, targets))
            assert abs((moved[0] - moved[1]) / (2 * shift) - gradient[index]) < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trained_12_3_2_net_classifies_all_64_training_images(seed):
    images, targets = pixels.training_images()
    weights, costs = pixels.train(pixels.initial_weights(np.random.default_rng(seed)), images, targets, 1000, 0.2)
    assert costs[-1] < costs[0]
    model = pixels.keras_network()  # an independent forward pass of the trained weights
    model.get_layer("hidden").set_weights([weights.hidden_w, weights.hidden_b])
    model.get_layer("output").set_weights([weights.output_w, weights.output_b])
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    np.testing.assert_array_equal(predicted, targets.argmax(axis=1))


def test_pixels_lesson_runs(tmp_path, capsys):
    assert pixels.main(["--iterations", "20", "--out", str(tmp_path)]) == 0
    assert_pngs(tmp_path, ["images.png", "cost.png", "hidden_units.png", "outputs.png"])
    assert "largest difference" in capsys.readouterr().out


# ---------------------------------------------------------------- xor


def test_one_sgd_step_follows_the_error_gradient():
    network = xor.NeuralNetwork([2, 3, 2, 1], np.random.default_rng(1))
    before = [w.copy() for w in network.weights]
    x, target, rate = xor.INPUTS[2], xor.TARGETS[2], 0.1

    def error(weights):
        probe = xor.NeuralNetwork([2, 3, 2, 1], np.random.default_rng(0))
        probe.weights = weights
        return 0.5 * (probe.predict(x) - target) ** 2

    network.step(x, target, rate)
    shift = 1e-6
    for layer, weights in enumerate(before):
        for index in np.ndindex(weights.shape):
            plus, minus = [w.copy() for w in before], [w.copy() for w in before]
            plus[layer][index] += shift
            minus[layer][index] -= shift
            gradient = (error(plus) - error(minus)) / (2 * shift)
            assert abs((before[layer][index] - network.weights[layer][index]) / rate - gradient) < 1e-6


def test_numpy_updates_equal_keras_sgd():
    keras_weights = xor.keras_trained_weights([2, 2, 1], seed=3, epochs=1)
    mine = xor.trained([2, 2, 1], 3, learning_rate=xor.KERAS_LEARNING_RATE, epochs=1)
    for a, b in zip(mine.weights, keras_weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)


def test_2_2_1_solves_xor_for_most_seeds_and_no_hidden_layer_never_does():
    seeds = range(10)
    solved = [xor.solves(xor.trained([2, 2, 1], seed)) for seed in seeds]
    assert sum(solved) >= 6, solved
    for seed in seeds:
        outputs = xor.trained([2, 1], seed).predict(xor.INPUTS)
        # A single tanh unit is above 0.5 on one side of a line; XOR's ones and zeros lie on crossed diagonals.
        assert np.sum((outputs > 0.5) != (xor.TARGETS == 1)) >= 1


def test_the_texts_derivative_is_the_slope_at_the_wrong_point():
    z = np.linspace(-2, 2, 9)
    y = np.tanh(z)
    np.testing.assert_allclose(xor.tanh_slope(y), 1 / np.cosh(z) ** 2, atol=1e-12)
    np.testing.assert_allclose(xor.texts_tanh_slope(y), 1 / np.cosh(y) ** 2, atol=1e-12)


def test_xor_lesson_runs(tmp_path, capsys):
    assert xor.main(["--layers", "2", "3", "1", "--seeds", "2", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert_pngs(tmp_path, ["regions.png"])
    assert "solved over seeds" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--layers", "0"], ["--layers", "2", "-1", "1"], ["--seeds", "0"],
                                  ["--seed", "-3"]])
def test_xor_refuses_bad_numbers_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        xor.main(argv)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and error.count("\n") == 1


def test_xor_refuses_layers_that_cannot_compute_xor(tmp_path, capsys):
    assert xor.main(["--layers", "3", "1", "--out", str(tmp_path)]) == 2
    assert "2 inputs first and 1 output last" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_out_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    assert pixels.main(["--iterations", "1", "--out", str(taken)]) == 2
    assert taken.read_text() == "mine"
    assert capsys.readouterr().err.count("\n") == 1


def test_out_may_be_an_existing_folder_whose_files_stay(tmp_path):
    other = tmp_path / "other.png"
    other.write_bytes(b"someone else's")
    assert pixels.main(["--iterations", "1", "--out", str(tmp_path)]) == 0
    assert other.read_bytes() == b"someone else's"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [".digits-written.json", "other.png", "images.png", "cost.png", "hidden_units.png", "outputs.png"])


def test_a_file_of_a_figure_s_name_that_no_lesson_wrote_is_refused_and_left_alone(tmp_path, capsys):
    mine = tmp_path / "cost.png"  # the user's own picture, with the name of one of the lesson's figures
    mine.write_bytes(b"someone else's")
    assert pixels.main(["--iterations", "1", "--out", str(tmp_path)]) == 2
    assert mine.read_bytes() == b"someone else's"
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cost.png"]  # nothing else written either


def test_a_lesson_replaces_its_own_figures(tmp_path):
    assert pixels.main(["--iterations", "1", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "cost.png").read_bytes()
    assert pixels.main(["--iterations", "2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "cost.png").read_bytes() != first


# ---------------------------------------------------------------- fitting


def test_a_learning_rate_past_the_limit_diverges():
    """Least squares: gradient descent converges below 2 / (the cost's largest curvature), diverges above."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.normal(size=(64, 1))
    curvature = np.linalg.eigvalsh(2 * x.T @ x / len(x)).max()  # the Hessian of mean (x w - y)^2
    limit = 2 / curvature
    finals = {}
    for factor in (0.9, 1.1):
        inputs = keras.Input(shape=(4,), dtype="float64")
        model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, dtype="float64")(inputs))
        model.compile(optimizer=keras.optimizers.SGD(factor * limit), loss=keras.losses.MeanSquaredError(
            dtype="float64"), steps_per_execution=60)
        start = model.evaluate(x, y, batch_size=64, verbose=0)
        history = model.fit(np.tile(x, (60, 1)), np.tile(y, (60, 1)), batch_size=64, shuffle=False, verbose=0)
        finals[factor] = (start, history.history["loss"][-1], model.evaluate(x, y, batch_size=64, verbose=0))
    start, _, end = finals[0.9]
    assert end < start
    start, _, end = finals[1.1]
    assert end > 10 * start


def tiny_synthetic(tmp_path, *extra):
    return ["--data", "synthetic", "--train-images", "100", "--validation-images", "100", "--out", str(tmp_path),
            *extra]


def test_the_sweeps_largest_learning_rate_diverges_and_a_moderate_one_does_not(tmp_path):
    data = fitting.load_slices(fitting.parse_args(tiny_synthetic(tmp_path)))
    runs = {rate: fitting.train(data, (32,), 0, 3, optimizer=keras.optimizers.SGD(rate), measure_start=True)
            for rate in (0.1, max(fitting.LEARNING_RATES))}
    assert not fitting.diverged(runs[0.1]) and runs[0.1].train_loss[-1] < runs[0.1].initial_loss
    largest = runs[max(fitting.LEARNING_RATES)]
    assert fitting.diverged(largest)
    assert not np.all(np.isfinite(largest.train_loss)) or max(largest.train_loss) > largest.initial_loss


@pytest.mark.skipif(not has_mnist(default_data_dir()), reason=f"no MNIST in {default_data_dir()} "
                                                               "(set DIGITS_DATA_DIR)")
def test_the_over_fit_network_validation_loss_rises_while_training_loss_falls(tmp_path):
    config = fitting.parse_args(["--out", str(tmp_path)])  # the lesson's slice and epochs
    curves = fitting.train(fitting.load_slices(config), fitting.CAPACITIES["too large"], config.seed, config.epochs)
    best = int(np.argmin(curves.validation_loss))
    assert best < len(curves.validation_loss) - 1
    assert curves.validation_loss[-1] > 1.05 * curves.validation_loss[best]
    assert curves.train_loss[-1] < 0.5 * curves.train_loss[best]
    assert fitting.overfits(curves)


def test_fitting_lesson_runs_on_synthetic_digits(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(fitting, "LEARNING_RATES", (0.1, 10.0))  # two rates are enough to run the sweep's code
    # Two epochs (as --epochs 2 for the other questions) are enough to run the learning-rate and batch-size code,
    # whose figures and lines use the first and the last epoch.
    monkeypatch.setattr(fitting, "LEARNING_RATE_EPOCHS", 2)
    monkeypatch.setattr(fitting, "BATCH_EPOCHS", 2)
    assert fitting.main(tiny_synthetic(tmp_path, "--epochs", "2")) == 0
    assert_pngs(tmp_path, ["capacity.png", "learning_rate.png", "batch_size.png", "regularisation.png"])
    assert "SGD learning rate" in capsys.readouterr().out


def test_fitting_refuses_more_images_than_the_split_holds(tmp_path, capsys):
    if not has_mnist(default_data_dir()):
        pytest.skip(f"no MNIST in {default_data_dir()} (set DIGITS_DATA_DIR)")
    assert fitting.main(["--train-images", "20000", "--out", str(tmp_path)]) == 2
    assert "more than the 60,000 training images" in capsys.readouterr().err


def test_out_below_a_file_is_one_line_and_status_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert neuron.main(["--out", str(tmp_path / "notes.txt" / "figures")]) == 2
    error = capsys.readouterr().err
    assert "pass a writable folder" in error and error.count("\n") == 1


def test_unwritable_out_is_one_line_and_status_2(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("tests run as a user whom chmod does not stop (root)")
        assert neuron.main(["--out", str(locked / "figures")]) == 2
        assert "pass a writable folder" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


# ---------------------------------------------------------------- hidden


def test_top_images_and_purity_against_brute_force():
    activations = np.random.default_rng(0).normal(size=(50, 6))
    best = hidden.top_images(activations, 4)
    for unit in range(6):
        assert best[unit].tolist() == sorted(range(50), key=lambda image: -activations[image, unit])[:4]
    np.testing.assert_allclose(hidden.purity(np.array([[1, 1, 2], [3, 4, 5], [7, 7, 7]])), [2 / 3, 1 / 3, 1])


@pytest.mark.skipif(not has_mnist(default_data_dir()), reason=f"no MNIST in {default_data_dir()} "
                                                               "(set DIGITS_DATA_DIR)")
def test_trained_mlp_units_top_images_are_mostly_one_digit(tmp_path):
    config = hidden.parse_args(["--train-images", "20000", "--out", str(tmp_path)])
    digits = hidden.load_digits(config.data, config.data_dir, config.seed, train_count=config.train_images)
    model, accuracy = hidden.train_mlp(digits, config)
    assert accuracy > 0.9
    kernel, bias = model.get_layer("dense1").get_weights()
    pixels_ = digits.x_test.reshape(len(digits.x_test), -1).astype("float32") / 255
    dense1 = np.maximum(pixels_ @ kernel + bias, 0)  # the first layer's ReLU units, by numpy
    responding = dense1.max(axis=0) > 0
    shares = hidden.purity(digits.y_test[hidden.top_images(dense1, 9)[responding]])
    chance = hidden.purity(digits.y_test[np.random.default_rng(0).integers(len(digits.y_test), size=(500, 9))])
    assert np.median(shares) >= 0.6 > np.median(chance)


def test_hidden_lesson_runs(tmp_path, capsys):
    assert hidden.main(["--data", "synthetic", "--train-images", "300", "--epochs", "1", "--out", str(tmp_path)]) == 0
    assert_pngs(tmp_path, ["templates.png", "top_images_dense1.png", "top_images_dense2.png"])
    assert "random sets of 9 test images" in capsys.readouterr().out
