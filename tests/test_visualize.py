"""visualize.py end to end, in process, on tiny models trained for one quick pass on synthetic digits.

    python -m pytest tests/test_visualize.py -q

The convnet is trained on colour (synthetic-rgb, 32x32x3) images and the MLP on
greyscale (synthetic, 28x28x1) ones, so both drawing paths run. The report is
also opened in headless Chromium when /usr/bin/chromium (or chromium on PATH)
is installed, to check that a real browser shows every image.
"""

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from matplotlib.image import imread

import train
from conftest import copied_run
import visualize
from data import load_dataset
from analysis.drawing.layers import as_rgb, cell_side, enlarge
from analysis.introspection import activations, as_floats, forward, survey, top_activations

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_pixels(content: bytes) -> np.ndarray:
    """The RGB(A) pixels of PNG bytes, after checking they are a PNG of a sensible size."""
    assert content[:8] == PNG_MAGIC, "not a PNG"
    pixels = imread(io.BytesIO(content), format="png")
    height, width, channels = pixels.shape
    assert height > 100 and width > 100 and channels in (3, 4)
    return pixels[..., :3]


def trained_run(tmp_path_factory, model: str, dataset: str) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / f"{model}_{dataset}"
    assert train.main(["--model", model, "--dataset", dataset, "--dry-run", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def convnet_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "convnet", "synthetic-rgb")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, mlp_dry_run):
    """conftest's mlp_dry_run (train.py --model mlp --dataset synthetic --dry-run), copied for this module's figures."""
    return copied_run(mlp_dry_run, tmp_path_factory, "mlp_synthetic")


def run_visualize(argv, capsys) -> tuple[int, str, str]:
    code = visualize.main([str(argument) for argument in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def figure_listing(run_dir: Path) -> dict[str, bytes]:
    folder = run_dir / "figures"
    return {path.name: path.read_bytes() for path in folder.iterdir()} if folder.exists() else {}


def test_conv_layer_views(convnet_run, capsys):
    code, out, _ = run_visualize(["--run-dir", convnet_run, "--layer", "conv2", "--units", "5", "--top-k", "4"], capsys)
    assert code == 0
    names = ["conv2_feature_maps.png", "conv2_top_patches.png", "conv2_filter_patterns.png"]
    for name in names:
        path = convnet_run / "figures" / name
        assert str(path) in out.splitlines()
        pixels = png_pixels(path.read_bytes())
        if name == "conv2_top_patches.png":
            # Colour patches stay in colour: many pixels whose channels differ clearly.
            spread = pixels.max(axis=-1) - pixels.min(axis=-1)
            assert (spread > 0.15).mean() > 0.05
    assert not (convnet_run / "figures" / "conv2_templates.png").exists()


def test_dense_layer_views_of_a_greyscale_mlp(mlp_run, capsys):
    code, out, _ = run_visualize(["--run-dir", mlp_run, "--layer", "dense1", "--units", "6"], capsys)
    assert code == 0
    figures = mlp_run / "figures"
    assert out.splitlines() == [str(figures / "dense1_templates.png"), str(figures / "dense1_top_images.png")]
    top_images = png_pixels((figures / "dense1_top_images.png").read_bytes())
    # Greyscale images are drawn in grey: every pixel (text and frames included) has R = G = B.
    assert np.abs(top_images - top_images[..., :1]).max() < 0.02
    templates = png_pixels((figures / "dense1_templates.png").read_bytes())
    redder = templates[..., 0] - templates[..., 2]
    assert (redder > 0.3).any() and (redder < -0.3).any(), "the weight templates use a red-blue colour map"


@pytest.mark.parametrize("which", ["convnet", "mlp"])
def test_all_draws_hierarchy_probe_and_gradcam(which, convnet_run, mlp_run, capsys):
    run_dir = {"convnet": convnet_run, "mlp": mlp_run}[which]
    code, out, _ = run_visualize(["--run-dir", run_dir, "--all", "--probe-images", "200", "100"], capsys)
    assert code == 0
    figures = run_dir / "figures"
    expected = ["hierarchy.png", "probe.png"] + (["gradcam.png"] if which == "convnet" else [])
    for name in expected:
        assert str(figures / name) in out.splitlines()
        png_pixels((figures / name).read_bytes())
    if which == "mlp":
        assert not (figures / "gradcam.png").exists() and "no gradcam.png" in out
    probe = json.loads((figures / "probe.json").read_text())
    layers = {"convnet": ["conv1", "conv2", "conv3", "dense1", "logits"], "mlp": ["dense1", "dense2", "logits"]}[which]
    assert [row["layer"] for row in probe["layers"]] == layers
    # Each layer is probed after its own batch norm and activation; the MLP's dense layers hold their ReLU.
    responses = {"convnet": ["conv1_relu", "conv2_relu", "conv3_relu", "dense1_relu", "logits"],
                 "mlp": ["dense1", "dense2", "logits"]}[which]
    assert [row["response"] for row in probe["layers"]] == responses
    assert probe["train_images"] == 200 and probe["test_images"] == 100
    # Convolutional maps are probed as mean and max per channel: twice the channel count.
    if which == "convnet":
        model = keras.saving.load_model(run_dir / "model.keras")
        widths = [model.get_layer(name).filters * 2 for name in ("conv1", "conv2", "conv3")]
        assert [row["features"] for row in probe["layers"]] == widths + [model.get_layer("dense1").units, 10]


def test_probe_reads_the_digit_off_a_trained_models_logits(trained_mlp, tmp_path, capsys):
    """On a model that tells the digits apart (conftest: over 90 %), its logits must hold the answer."""
    model_file, model, digits = trained_mlp
    copy = tmp_path / "model.keras"  # figures/ goes beside the model file, not into the shared fixture's folder
    shutil.copyfile(model_file, copy)
    command = ["--model-file", copy, "--dataset", digits.name, "--all", "--probe-images", "1000", "500"]
    code, _, _ = run_visualize(command, capsys)
    assert code == 0
    probe = json.loads((tmp_path / "figures" / "probe.json").read_text())
    accuracy = {row["layer"]: row["accuracy"] for row in probe["layers"]}
    chance = 1 / digits.num_classes
    assert probe["test_images"] == len(digits.y_test)  # all of them
    assert accuracy["logits"] > chance + 0.7, accuracy
    # A linear read-out of the logits does about as well as the model's own argmax over them.
    own = (model.predict(as_floats(digits.x_test), verbose=0).argmax(axis=1) == digits.y_test).mean()
    assert accuracy["logits"] >= own - 0.03, (accuracy, own)


@pytest.fixture(scope="module")
def report(convnet_run):
    """The --report of the convnet run, made once: (html text, figures folder)."""
    argv = ["--run-dir", str(convnet_run), "--report", "--units", "4", "--top-k", "4", "--probe-images", "200", "100"]
    assert visualize.main(argv) == 0
    figures = convnet_run / "figures"
    return (figures / "report.html").read_text(encoding="utf-8"), figures


def test_report_is_self_contained(report):
    page, figures = report
    fetches = re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not fetches, f"the page fetches from a network: {fetches.group(0)}"
    assert "<link" not in page.lower() and "@import" not in page
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(sources) == len(re.findall(r"<img\b", page)) >= 13  # hierarchy, probe, Grad-CAM, 3 per conv, dense1
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        png_pixels(base64.b64decode(source.removeprefix("data:image/png;base64,"), validate=True))
    for heading in ["The model", "From edges to digits", "Layer conv2", "Where the model looks"]:
        assert heading in page
    for layer in ["conv1_bn", "pool2", "flatten", "logits"]:  # the model summary lists every layer
        assert f"<td>{layer}</td>" in page
    probe = json.loads((figures / "probe.json").read_text())
    for row in probe["layers"]:  # the probe table repeats probe.json
        assert f"{100 * row['accuracy']:.1f} %" in page


def chromium() -> str | None:
    return shutil.which("chromium") or (shutil.which("/usr/bin/chromium"))


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_shows_every_image_in_a_headless_browser(report, tmp_path):
    page, figures = report
    images = len(re.findall(r"<img\b", page))
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
               "--virtual-time-budget=5000", "--dump-dom", (figures / "report.html").resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r"<body\b[^>]*>", result.stdout)
    assert body, f"no <body> in the dumped page: {result.stdout[:500]!r}"
    # The page's own script marks the body once every image has decoded, and counts errors.
    assert f'data-images-loaded="{images}/{images}"' in body.group(0)
    assert 'data-errors="0"' in body.group(0)


def test_unknown_layer_lists_the_valid_ones_and_writes_nothing(convnet_run, capsys):
    before = figure_listing(convnet_run)
    code, out, err = run_visualize(["--run-dir", convnet_run, "--layer", "conv9"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    for name in ["conv1", "conv2", "conv3", "dense1", "logits"]:
        assert name in err
    assert figure_listing(convnet_run) == before


def test_a_layer_without_units_says_so(convnet_run, capsys):
    before = figure_listing(convnet_run)
    code, _, err = run_visualize(["--run-dir", convnet_run, "--layer", "flatten"], capsys)
    assert code == 2
    assert "flatten has no weights or units to show" in err and "conv2" in err and err.count("\n") == 1
    assert figure_listing(convnet_run) == before


def test_missing_run_says_train_first(tmp_path, capsys):
    code, _, err = run_visualize(["--run-dir", tmp_path / "nothing", "--layer", "conv2"], capsys)
    assert code == 2 and "run python train.py first" in err and err.count("\n") == 1
    assert not (tmp_path / "nothing").exists()


def test_unreadable_model_file(tmp_path, capsys):
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"not a zip file")
    code, _, err = run_visualize(["--model-file", damaged, "--dataset", "synthetic"], capsys)
    assert code == 2 and "cannot load" in err and err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["damaged.keras"]


def test_nested_model_file(convnet_run, tmp_path, capsys):
    """An outer functional model that wraps the trained convnet as one layer, saved as a bare .keras file."""
    convnet = keras.saving.load_model(convnet_run / "model.keras")
    image = keras.Input(convnet.input_shape[1:], name="photo")
    wrapper = keras.Model(image, convnet(image), name="wrapper")
    model_file = tmp_path / "wrapped" / "model.keras"
    model_file.parent.mkdir()
    wrapper.save(model_file)
    code, out, _ = run_visualize(["--model-file", model_file, "--dataset", "synthetic-rgb", "--layer", "convnet/conv2",
                                  "--units", "3", "--top-k", "3"], capsys)
    assert code == 0
    figures = model_file.parent / "figures"
    for view in ["feature_maps", "top_patches", "filter_patterns"]:
        path = figures / f"convnet__conv2_{view}.png"
        assert str(path) in out.splitlines()
        png_pixels(path.read_bytes())
    # The whole-model figures work through the wrapper too, Grad-CAM included.
    code, out, _ = run_visualize(["--model-file", model_file, "--dataset", "synthetic-rgb", "--all",
                                  "--probe-images", "100", "50"], capsys)
    assert code == 0
    probe = json.loads((figures / "probe.json").read_text())
    assert [row["layer"] for row in probe["layers"]][0] == "convnet/conv1"
    assert (figures / "gradcam.png").exists()
    code, _, err = run_visualize(["--model-file", model_file, "--dataset", "synthetic-rgb", "--layer", "conv2"], capsys)
    assert code == 2 and "convnet/conv2" in err  # the valid names are the nested paths


def test_model_and_data_set_must_fit(convnet_run, capsys):
    code, _, err = run_visualize(["--run-dir", convnet_run, "--dataset", "synthetic", "--layer", "conv2"], capsys)
    assert code == 2 and "32x32x3" in err and "28x28x1" in err


def test_chunked_scan_finds_the_same_top_activations_as_one_pass(convnet_run, monkeypatch):
    """The test set is searched in chunks; the merged top k must be the top k of all images at once."""
    model = keras.saving.load_model(convnet_run / "model.keras")
    images = load_dataset("synthetic-rgb", Path(".")).limited(256).x_test
    monkeypatch.setattr(forward, "CHUNK", 60)  # 5 chunks, the last one short
    paths = ["conv2_relu", "dense1_relu"]
    scan = survey.scan_images(model, images, paths, k=7, logits="logits")
    # The reference computes the same activations (same chunks, so the same floats) and ranks them in one go.
    chunks = [activations(model, as_floats(images[start:start + 60]), paths + ["logits"])
              for start in range(0, len(images), 60)]
    for number, path in enumerate(paths):
        acts = np.concatenate([chunk[number] for chunk in chunks])
        for unit in range(acts.shape[-1]):
            assert scan.top[path][unit] == top_activations(acts, unit, 7), (path, unit)
        peaks = acts.reshape(len(acts), -1, acts.shape[-1]).max(axis=1)
        np.testing.assert_allclose(scan.activity[path], peaks.mean(axis=0), rtol=1e-6)
    logits = np.concatenate([chunk[2] for chunk in chunks])
    np.testing.assert_array_equal(scan.predicted, logits.argmax(axis=1))


def test_patches_are_enlarged_by_whole_pixels_and_grey_stays_grey():
    patch = np.arange(9, dtype=np.float32).reshape(3, 3, 1) / 8
    side = cell_side(3, 20)
    assert side == 21  # the multiple of 3 nearest 20
    np.testing.assert_array_equal(enlarge(patch, side)[..., 0], np.kron(patch[..., 0], np.ones((7, 7))))
    grey = as_rgb(patch)
    assert grey.shape == (3, 3, 3) and np.all(grey == grey[..., :1])
    colour = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32)
    np.testing.assert_array_equal(as_rgb(colour), colour)
