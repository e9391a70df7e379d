"""predict.py and the photo preparation in data/photos.py, on images the tests draw and write."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import predict
from data import photos
from data.photos import PhotoError, prepare, read_image
from data.synthetic import draw_digit
from models import MODELS


def drawn_digit(digit=8, size=(300, 200), seed=0):
    """A seven-segment digit as a photo would show it: dark ink (uint8 (h, w)) on light paper, off-centre."""
    rng = np.random.default_rng(seed)
    ink = draw_digit(digit, max(size), rng)[:size[0], :size[1]]  # (h, w) in 0..1
    return (225 - 200 * ink).astype(np.uint8)


def test_handwriting_is_white_on_black_20_pixels_and_centred_by_mass():
    seen = prepare(Image.fromarray(drawn_digit()), (28, 28, 1))
    assert seen.shape == (28, 28, 1) and seen.dtype == np.uint8
    grey = seen[..., 0]
    rows, cols = np.nonzero(grey)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == 20  # the longer side, as in MNIST
    assert grey[0].max() == grey[-1].max() == grey[:, 0].max() == grey[:, -1].max() == 0  # black frame
    mass_row, mass_col = ndimage.center_of_mass(grey.astype(float))
    assert abs(mass_row - 14) <= 0.5 and abs(mass_col - 14) <= 0.5  # pixel (14, 14), where MNIST has it


def test_inverted_and_colour_and_transparent_versions_give_the_same_pixels():
    dark_on_light = drawn_digit(3, seed=1)
    expected = prepare(Image.fromarray(dark_on_light), (28, 28, 1))
    light_on_dark = Image.fromarray(255 - dark_on_light)
    assert np.array_equal(prepare(light_on_dark, (28, 28, 1)), expected)
    as_rgb = Image.fromarray(np.repeat(dark_on_light[..., None], 3, axis=2))
    assert np.array_equal(prepare(as_rgb, (28, 28, 1)), expected)
    # Black ink on a transparent sheet is read as ink on white paper.
    ink = (225 - dark_on_light.astype(int)) / 200
    rgba = np.zeros((*dark_on_light.shape, 4), np.uint8)
    rgba[..., 3] = (255 * ink).round().astype(np.uint8)
    seen = prepare(Image.fromarray(rgba, "RGBA"), (28, 28, 1))
    assert np.abs(seen.astype(int) - expected.astype(int)).mean() < 3


def test_street_photo_is_padded_with_its_edges_and_resized_to_32():
    picture = np.zeros((40, 80, 3), np.uint8)  # a wide photo: red left half, blue right half
    picture[:, :40] = (200, 0, 0)
    picture[:, 40:] = (0, 0, 200)
    seen = prepare(Image.fromarray(picture), (32, 32, 3))
    assert seen.shape == (32, 32, 3) and seen.dtype == np.uint8
    # Padding repeats the top and bottom rows, so every row matches; no black bars.
    assert np.abs(seen.astype(int) - seen[16].astype(int)).max() <= 2
    assert tuple(seen[16, 4]) == (200, 0, 0) and tuple(seen[16, 27]) == (0, 0, 200)


def test_blank_picture_is_refused():
    with pytest.raises(PhotoError, match="no digit"):
        prepare(Image.new("L", (50, 50), 128), (28, 28, 1))


def write_bad_files(folder):
    """{name: message fragment} for files that must be refused, written into folder."""
    (folder / "notes.png").write_text("this is text, not a picture")
    (folder / "empty.jpg").write_bytes(b"")
    Image.new("1", (8000, 7000)).save(folder / "huge.png")  # 56 megapixels, a few kB on disk
    good = folder / "whole.png"
    Image.fromarray(drawn_digit()).save(good)
    (folder / "truncated.png").write_bytes(good.read_bytes()[:200])
    return {"notes.png": "not an image", "empty.jpg": "empty", "huge.png": "too large",
            "truncated.png": "damaged", "missing.png": "no such file"}


def test_read_image_refuses_bad_files_with_reasons(tmp_path):
    for name, reason in write_bad_files(tmp_path).items():
        with pytest.raises(PhotoError, match=reason):
            read_image(tmp_path / name)
    assert read_image(tmp_path / "whole.png").size == (200, 300)
    assert photos.MAX_PIXELS < 8000 * 7000


def model_top3(model, image_path, input_shape=(28, 28, 1)):
    """[[digit, probability], ...] computed here, without predict.py: prepare, scale, call the model."""
    pixels = prepare(read_image(image_path), input_shape)[None].astype(np.float32) / 255
    probabilities = np.asarray(model(pixels, training=False))[0]
    order = np.argsort(-probabilities)[:3]
    return [[int(digit), round(float(probabilities[digit]), 4)] for digit in order]


def write_photos(folder):
    """A drawn 8 (dark on light), the same inverted, and a coloured version as JPEG: three good files."""
    eight = drawn_digit(8, seed=4)
    Image.fromarray(eight).save(folder / "eight.png")
    Image.fromarray(255 - eight).save(folder / "eight_inverted.png")
    colour = np.stack([eight, np.clip(eight.astype(int) + 20, 0, 255), eight // 2], axis=2).astype(np.uint8)
    Image.fromarray(colour).save(folder / "eight_colour.jpg", quality=95)
    return ["eight.png", "eight_inverted.png", "eight_colour.jpg"]


def test_predict_prints_the_top_three_of_each_image(trained_mlp, tmp_path, capsys):
    model_file, model, _ = trained_mlp
    names = write_photos(tmp_path)
    assert predict.main([str(tmp_path / name) for name in names] + ["--model-file", str(model_file)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    for name, line in zip(names, lines):
        top = model_top3(model, tmp_path / name)
        assert line == f"{tmp_path / name}: " + ", ".join(f"{digit} ({probability:.2f})" for digit, probability in top)
    # The inverted picture is the same digit to the model.
    assert lines[0].split(": ")[1] == lines[1].split(": ")[1]


def test_predict_json_and_bad_files_in_the_same_call(trained_mlp, tmp_path, capsys):
    model_file, model, _ = trained_mlp
    reasons = write_bad_files(tmp_path)
    names = write_photos(tmp_path)[:1] + list(reasons) + ["whole.png"]
    code = predict.main([str(tmp_path / name) for name in names] + ["--model-file", str(model_file), "--json"])
    assert code == 2
    records = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [record["file"] for record in records] == [str(tmp_path / name) for name in names]
    for name, record in zip(names, records):
        if name in reasons:
            assert set(record) == {"file", "error"} and reasons[name] in record["error"]
        else:
            assert set(record) == {"file", "top"} and record["top"] == model_top3(model, tmp_path / name)
            probabilities = [probability for _, probability in record["top"]]
            assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0001


def test_bad_files_are_one_line_each_and_the_good_ones_still_print(trained_mlp, tmp_path, capsys):
    model_file, _, _ = trained_mlp
    reasons = write_bad_files(tmp_path)
    names = ["notes.png", "whole.png", "empty.jpg"]
    assert predict.main([str(tmp_path / name) for name in names] + ["--model-file", str(model_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{tmp_path / 'whole.png'}: ") and captured.out.count("\n") == 1
    errors = captured.err.strip().splitlines()
    assert errors == [f"error: {tmp_path / 'notes.png'}: " + errors[0].split(": ", 2)[2],
                      f"error: {tmp_path / 'empty.jpg'}: " + errors[1].split(": ", 2)[2]]
    assert reasons["notes.png"] in errors[0] and reasons["empty.jpg"] in errors[1]


def test_show_saves_what_the_model_saw_and_never_overwrites_an_input(trained_mlp, tmp_path, capsys):
    model_file, _, _ = trained_mlp
    write_photos(tmp_path)
    # An input that happens to carry the name the picture would get.
    (tmp_path / "eight_seen.png").write_bytes((tmp_path / "eight.png").read_bytes())
    before = (tmp_path / "eight_seen.png").read_bytes()
    argv = [str(tmp_path / "eight.png"), str(tmp_path / "eight_seen.png"), "--model-file", str(model_file),
            "--show", "--show-dir", str(tmp_path)]
    assert predict.main(argv) == 0
    assert (tmp_path / "eight_seen.png").read_bytes() == before
    for name in ["eight_2_seen.png", "eight_seen_seen.png"]:
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and picture.width > 300


def test_street_model_reads_a_colour_photo(tmp_path, capsys):
    keras.utils.set_random_seed(3)
    model = MODELS["convnet"].build((32, 32, 3), 10)  # untrained: the answer is checked against the model itself
    model.save(tmp_path / "street.keras")
    photo = np.random.default_rng(0).integers(0, 256, (90, 60, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "door.png")
    assert predict.main([str(tmp_path / "door.png"), "--model-file", str(tmp_path / "street.keras"), "--json"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert record["top"] == model_top3(model, tmp_path / "door.png", (32, 32, 3))


@pytest.mark.parametrize("argv, message", [
    (["--run-dir", "no/such/run"], "no model file"),
    (["--model-file", "README.md"], "cannot load"),
])
def test_missing_or_bad_model_is_one_line(tmp_path, capsys, argv, message):
    Image.fromarray(drawn_digit()).save(tmp_path / "eight.png")
    assert predict.main([str(tmp_path / "eight.png"), *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and error.count("\n") == 0 and message in error


def test_a_long_thin_street_photo_is_shrunk_before_padding_and_gives_the_same_pixels(monkeypatch):
    # A strip whose padded square would exceed MAX_PIXELS is shrunk first. Computed here the direct way (pad the
    # whole strip with its edge pixels, resize once), the pixels must agree up to resampling differences.
    monkeypatch.setattr(photos, "MAX_PIXELS", 100 * 100)
    columns = np.linspace(0, 255, 600)
    strip = np.stack([np.tile(columns, (40, 1)), np.tile(columns[::-1], (40, 1)),
                      np.full((40, 600), 90.0)], axis=2).astype(np.uint8)  # (40, 600, 3): smooth ramps
    padded = np.pad(strip, ((280, 280), (0, 0), (0, 0)), mode="edge")  # (600, 600, 3)
    direct = np.asarray(Image.fromarray(padded).resize((32, 32), Image.Resampling.LANCZOS)).astype(int)
    seen = prepare(Image.fromarray(strip), (32, 32, 3)).astype(int)
    assert seen.shape == (32, 32, 3) and np.abs(seen - direct).max() <= 3


def test_images_too_small_to_show_a_digit_are_refused(tmp_path):
    for height, width in [(1, 1), (1, 500), (7, 300)]:
        Image.new("L", (width, height), 128).save(tmp_path / "strip.png")
        with pytest.raises(PhotoError, match=f"{width}x{height} pixels is too small"):
            read_image(tmp_path / "strip.png")
    Image.new("L", (photos.MIN_SIDE, photos.MIN_SIDE), 128).save(tmp_path / "smallest.png")
    assert read_image(tmp_path / "smallest.png").size == (photos.MIN_SIDE, photos.MIN_SIDE)


def test_links_that_loop_and_files_that_are_no_files_are_refused(tmp_path):
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    with pytest.raises(PhotoError, match="cannot be opened"):
        read_image(tmp_path / "loop.png")
    with pytest.raises(PhotoError, match="not a regular file"):
        read_image("/dev/zero")


def test_without_a_run_dir_the_handwriting_model_is_read_where_it_was_trained(good_run, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    assert predict.parse_args(["x.png"]).model_file == Path("runs/convnet_mnist/model.keras")
    shutil.copytree(good_run, tmp_path / "runs" / "convnet_mnist")
    assert predict.parse_args(["x.png"]).model_file == Path("runs/convnet_mnist/model.keras")
    (tmp_path / "runs" / "convnet_handwriting").mkdir()  # a folder, not yet a run: not chosen
    assert predict.parse_args(["x.png"]).model_file == Path("runs/convnet_mnist/model.keras")
    shutil.rmtree(tmp_path / "runs" / "convnet_handwriting")
    shutil.copytree(good_run, tmp_path / "runs" / "convnet_handwriting")
    assert predict.parse_args(["x.png"]).model_file == Path("runs/convnet_handwriting/model.keras")
