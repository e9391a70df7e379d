"""visualize.py on a number reader: a real --dry-run reader run on a tiny svhn-numbers folder drawn here.

    python -m pytest tests/test_visualize_reader.py -q

The trunk gets the classifier's figures, the probes read each number's first
digit, and evidence.png shows where each digit read came from. The evidence
numbers are checked against independent computations: finite differences
through the trained reader's own layers, and a hand-built reader whose columns
each see only their own strip of pixels, where the answer is known.
"""

import base64
import csv
import io
import itertools
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers
from matplotlib.image import imread

from conftest import copied_run
import visualize
from data import load_dataset
from analysis import drawing
from analysis.drawing.layers import FIELD_COLOUR
from analysis.introspection import (LayerError, activations, as_floats, crop_receptive_field, digit_evidence,
                                  receptive_field)

BLANK = 10  # the reader's last class (models/ctc.py)
TILE = 32  # pixels per drawn digit, square
NUMBERS = {"train": 40, "test": 20}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRUNK = ["conv1", "conv2", "conv3", "conv4", "conv5"]
VIEWS = ["feature_maps", "top_patches", "filter_patterns"]


@pytest.fixture(scope="module")
def reader_run(tmp_path_factory, reader_dry_run):
    """(run folder, data folder) of a reader trained for one --dry-run pass: conftest's reader_dry_run (1 to 3 digits,
    NUMBERS, TILE), its run folder copied for this module's figures."""
    run_dir, data_dir = reader_dry_run
    return copied_run(run_dir, tmp_path_factory, run_dir.name), data_dir


@pytest.fixture(scope="module")
def reader(reader_run):
    """(model, float test images) of the run."""
    run_dir, data_dir = reader_run
    model = keras.saving.load_model(run_dir / "model.keras")
    return model, as_floats(load_dataset("svhn-numbers", data_dir).x_test)


def png_pixels(content: bytes) -> np.ndarray:
    assert content[:8] == PNG_SIGNATURE, "not a PNG"
    pixels = imread(io.BytesIO(content), format="png")
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    return pixels[..., :3]


def greedy(columns: np.ndarray) -> list[list[tuple[int, int]]]:
    """CTC greedy reading of (N, T, 11) scores written out: per image [(digit, column where its run starts)]."""
    readings = []
    for row in columns.argmax(-1):
        runs, column = [], 0
        for symbol, run in itertools.groupby(row):
            if symbol != BLANK:
                runs.append((int(symbol), column))
            column += len(list(run))
        readings.append(runs)
    return readings


# ----------------------------------------------------------------------------- visualize.py end to end


def test_default_figures_of_a_reader(reader_run, capsys):
    run_dir, _ = reader_run
    assert visualize.main(["--run-dir", str(run_dir), "--probe-images", "36", "20"]) == 0
    out = capsys.readouterr().out.splitlines()
    figures = run_dir / "figures"
    for name in ["hierarchy.png", "probe.png", "evidence.png"]:
        assert str(figures / name) in out
        png_pixels((figures / name).read_bytes())
    assert not (figures / "gradcam.png").exists()  # a reader's columns are explained by evidence.png instead
    probe = json.loads((figures / "probe.json").read_text())
    # The trunk is drawn and probed; the layers that read its columns are probed too, the logits last.
    assert [row["layer"] for row in probe["layers"]] == TRUNK + ["columns", "sequence1", "sequence2", "logits"]
    assert [row["response"] for row in probe["layers"]] == \
        [f"{name}_relu" for name in TRUNK] + ["columns_relu", "sequence1", "sequence2", "logits"]
    # Mean and max per channel: over the map for the trunk, over the columns for the rest.
    assert [row["features"] for row in probe["layers"]] == [64, 128, 256, 256, 384, 384, 384, 384, 22]
    assert probe["target"] == "first digit" and (probe["train_images"], probe["test_images"]) == (36, 20)
    first_digits = np.array([int(number[0]) for number in _numbers(reader_run[1] / "svhn-numbers" / "test")])
    assert probe["majority"] == pytest.approx(np.bincount(first_digits).max() / len(first_digits))
    assert any("linear-probe test accuracy" in line for line in out)


def test_report_of_a_reader(reader_run):
    run_dir, _ = reader_run
    assert visualize.main(["--run-dir", str(run_dir), "--report", "--units", "4", "--top-k", "4",
                           "--probe-images", "36", "20"]) == 0
    figures = run_dir / "figures"
    names = ["hierarchy.png", "probe.png", "evidence.png"] + [f"{layer}_{view}.png" for layer in TRUNK
                                                              for view in VIEWS]
    for name in names:
        png_pixels((figures / name).read_bytes())
    page = (figures / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r"<img\b[^>]*\bsrc=\"data:image/png;base64,([^\"]*)\"", page)
    assert len(sources) == len(re.findall(r"<img\b", page)) == len(names)
    for source in sources:
        png_pixels(base64.b64decode(source, validate=True))
    for heading in ["What the reader looks at for each digit", "first (leftmost) digit", "Layer conv5: 192 channels",
                    "whole-number test accuracy"]:
        assert heading in page
    # conv5 comes after a pooling of the height alone: its receptive field is a rectangle, height x width.
    field = receptive_field(keras.saving.load_model(run_dir / "model.keras"), "conv5_relu", rectangles=True)
    assert f"Layer conv5: 192 channels, {field.size}x{field.width} px receptive field" in page
    for layer in ["columns", "sequence2", "probabilities"]:  # the model table lists every layer
        assert f"<td>{layer}</td>" in page


def test_a_column_layer_cannot_be_drawn_and_says_which_can(reader_run, capsys):
    run_dir, _ = reader_run
    code = visualize.main(["--run-dir", str(run_dir), "--layer", "sequence1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "sequence1 has no weights or units to show" in err and "conv1, conv2, conv3, conv4, conv5." in err


def _numbers(folder: Path) -> list[str]:
    with open(folder / "labels.csv", newline="") as stream:
        return [row["number"] for row in csv.DictReader(stream)]


# ----------------------------------------------------------------------------- the evidence, independently


def test_evidence_is_the_first_order_change_of_log_p_when_a_position_is_scaled(reader):
    """contribution(i, j) = d log p(d at c) / d epsilon when conv5's features at (i, j) are scaled by 1 + epsilon."""
    model, images = reader
    images = images[:3]
    probabilities = np.asarray(model(images, training=False))  # (3, T, 11)
    # Explain the likeliest digit (not the blank) of one column per image, whatever the reader read.
    columns = np.full((3, 6), -1, np.int32)
    digits = np.full((3, 6), -1, np.int32)
    columns[:, 0] = [5, 12, 18]
    digits[:, 0] = probabilities[np.arange(3), columns[:, 0], :BLANK].argmax(-1)
    evidence = digit_evidence(model, images, "conv5_relu", targets=(columns, digits))
    np.testing.assert_allclose(evidence.probabilities[:, 0], probabilities[np.arange(3), columns[:, 0], digits[:, 0]],
                               rtol=1e-4)
    assert np.all(evidence.contributions[:, 1:] == 0) and np.all(evidence.heatmaps[:, 1:] == 0)
    assert evidence.column_width == images.shape[2] / probabilities.shape[1]

    head = keras.Model(model.get_layer("conv5_relu").output, model.get_layer("logits").output)
    [maps] = activations(model, images, ["conv5_relu"])
    epsilon = 1e-2
    for image in range(3):
        contribution = evidence.contributions[image, 0]
        row, col = np.unravel_index(np.abs(contribution).argmax(), contribution.shape)
        changed = []
        for sign in (1, -1):
            scaled = maps[image:image + 1].copy()
            scaled[0, row, col] *= 1 + sign * epsilon
            log_p = tf.nn.log_softmax(head(scaled, training=False), axis=-1).numpy()
            changed.append(log_p[0, columns[image, 0], digits[image, 0]])
        assert (changed[0] - changed[1]) / (2 * epsilon) == pytest.approx(contribution[row, col], rel=0.05, abs=1e-4)
        # The heatmap is the positive part, upsampled and scaled to a peak of 1 (or all zero).
        heatmap = evidence.heatmaps[image, 0]
        assert heatmap.shape == images.shape[1:3] and heatmap.min() >= 0
        assert heatmap.max() == pytest.approx(1.0 if contribution.max() > 0 else 0.0)


def test_the_greedy_reading_is_what_is_explained(reader):
    model, images = reader
    evidence = digit_evidence(model, images, "conv5_relu", batch_size=7)  # batches of 7, the last one short
    expected = greedy(np.asarray(model(images, training=False)))
    for image, runs in enumerate(expected):
        runs = runs[:6]
        assert evidence.digits[image, :len(runs)].tolist() == [digit for digit, _ in runs]
        assert evidence.columns[image, :len(runs)].tolist() == [column for _, column in runs]
        assert np.all(evidence.digits[image, len(runs):] == -1) and np.all(evidence.columns[image, len(runs):] == -1)
        assert np.all(evidence.heatmaps[image, len(runs):] == 0)


def strip_reader(seed: int = 0) -> keras.Model:
    """A reader whose column c sees only pixel columns 4c..4c+3: 1x1 convolutions, then an average per strip.

    Without biases its logits are linear in the conv1_relu map A, so for every digit
    d at column c: sum over positions of A * d log p / dA = z_d - sum_k p_k z_k
    (Euler's theorem for the log-softmax of logits z(lambda A) = lambda z(A)).
    """
    image = keras.Input((8, 24, 2), name="image")
    x = layers.Conv2D(5, 1, use_bias=False, name="conv1")(image)
    x = layers.ReLU(name="conv1_relu")(x)
    x = layers.AveragePooling2D((8, 4), name="strips")(x)  # (1, 6, 5): one feature vector per strip
    x = layers.Reshape((6, 5), name="column_features")(x)
    logits = layers.Dense(BLANK + 1, use_bias=False, name="logits")(x)
    model = keras.Model(image, layers.Softmax(name="probabilities")(logits))
    rng = np.random.default_rng(seed)
    model.get_layer("conv1").set_weights([rng.normal(size=(1, 1, 2, 5))])
    model.get_layer("logits").set_weights([4 * rng.normal(size=(5, BLANK + 1))])
    return model


def test_a_digits_evidence_lies_in_the_strip_its_column_sees():
    model = strip_reader()
    rng = np.random.default_rng(1)
    # Each strip its own random colour, plus noise: columns that differ, pixels that differ within a strip.
    images = np.repeat(rng.random((12, 1, 6, 2)), 4, axis=2) * np.ones((1, 8, 1, 1)) + 0.2 * rng.random((12, 8, 24, 2))
    images = images.astype(np.float32)
    evidence = digit_evidence(model, images, "conv1_relu", batch_size=5)
    # The same map size as the image, so upsampling leaves it as it is.
    assert evidence.column_width == 4 and evidence.contributions.shape == (12, 6, 8, 24)
    [maps] = activations(model, images, ["conv1_relu"])
    kernel = model.get_layer("logits").get_weights()[0]
    logits = maps.reshape(12, 8, 6, 4, 5).mean(axis=(1, 3)) @ kernel  # (12, 6 columns, 11): numpy forward pass
    expected = greedy(logits)
    read = 0
    for image, runs in enumerate(expected):
        for slot, (digit, column) in enumerate(runs[:6]):
            read += 1
            assert (evidence.digits[image, slot], evidence.columns[image, slot]) == (digit, column)
            heatmap = evidence.heatmaps[image, slot]
            strip = np.zeros(24, bool)
            strip[4 * column:4 * column + 4] = True
            assert np.all(heatmap[:, ~strip] == 0), (image, slot)
            assert heatmap[:, strip].max() == pytest.approx(1.0)
            z = logits[image, column]
            p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            assert evidence.contributions[image, slot].sum() == pytest.approx(z[digit] - p @ z, rel=1e-3, abs=1e-5)
            assert evidence.probabilities[image, slot] == pytest.approx(p[digit], rel=1e-4)
    assert read >= 12, "the strip reader should read several digits"


def test_evidence_refuses_layers_that_do_not_fit():
    model = strip_reader()
    images = np.zeros((1, 8, 24, 2), np.float32)
    with pytest.raises(LayerError, match="needs a layer with a spatial map; column_features"):
        digit_evidence(model, images, "column_features")
    with pytest.raises(LayerError, match="column scores .* from conv1"):
        digit_evidence(model, images, "conv1_relu", logits_path="conv1")


# ----------------------------------------------------------------------------- rectangles and the drawing


def test_the_trunks_rectangular_field_is_where_the_input_gradient_reaches(reader):
    model, images = reader
    with pytest.raises(LayerError, match="pool4 makes the receptive field of conv5 non-square"):
        receptive_field(model, "conv5")
    field = receptive_field(model, "conv5", rectangles=True)
    assert field.columns is not None and (field.stride, field.horizontal.stride) == (8, 4)
    conv5 = keras.Model(model.input, model.get_layer("conv5").output)  # before the ReLU: a gradient everywhere
    image = tf.constant(images[:1])
    for row, col in [(0, 0), (2, 11), (3, 23)]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            unit = conv5(image, training=False)[0, row, col, 0]
        rows, cols = np.nonzero(np.abs(tape.gradient(unit, image)[0].numpy()).sum(axis=-1))
        assert rows.size
        # Max pooling passes the gradient to one input of each window, so only containment is checked.
        (top, bottom), (left, right) = field.bounds(row), field.horizontal.bounds(col)
        assert top <= rows.min() and rows.max() < bottom and left <= cols.min() and cols.max() < right
        # The crop is that rectangle of the image, zeros past its border.
        margin = max(field.size, field.width)
        padded = np.pad(images[0], ((margin, margin), (margin, margin), (0, 0)))
        np.testing.assert_array_equal(crop_receptive_field(images, field, 0, row, col),
                                      padded[top + margin:bottom + margin, left + margin:right + margin])


def test_evidence_figure_draws_a_panel_per_digit_and_marks_its_column(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.random((3, 32, 96, 3), dtype=np.float32)
    heatmaps = np.zeros((3, 6, 32, 96), np.float32)
    heatmaps[:, :2, 8:24, 30:50] = 1
    read = np.array([[1, 2] + [-1] * 4, [7, 3] + [-1] * 4, [-1] * 6])
    columns = np.array([[5, 12] + [-1] * 4, [2, 20] + [-1] * 4, [-1] * 6])
    truths = np.array([[1, 2] + [-1] * 4, [7, 8] + [-1] * 4, [4] + [-1] * 5])
    figure = drawing.layers.digit_evidence(images, heatmaps, read, np.full((3, 6), 0.5), columns, 4.0, truths,
                                           "conv5")
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "true 12 → read 12" in texts and "true 78 → read 73" in texts and "true 4 → read (nothing)" in texts
    assert texts.count("digit 7, p = 0.50") == 1 and {"correct", "mistakes"} <= set(texts)
    path = tmp_path / "evidence.png"
    drawing.save_figure(figure, path)
    pixels = png_pixels(path.read_bytes())
    orange = np.all(np.abs(pixels - np.array(FIELD_COLOUR)) < 0.02, axis=-1)
    # One bar per digit read, under its panel where its column is: the 96-px image is drawn 192 px wide, so a
    # 4-px column is an 8-px bar, and column 5's bar starts (5 - 2) * 8 px right of column 2's (20: 8 * 8 right of 12).
    bar_rows = np.flatnonzero(orange.any(axis=1))
    first, second = (orange[rows].any(axis=0) for rows in np.split(bar_rows, np.flatnonzero(np.diff(bar_rows) > 1) + 1))
    starts = [np.flatnonzero(np.diff(np.concatenate([[0], bars.astype(int)])) == 1) for bars in (first, second)]
    assert first.sum() == second.sum() == 2 * 8
    assert starts[0][0] - starts[1][0] == 3 * 8 and starts[1][1] - starts[0][1] == 8 * 8
