"""predict.py and the serving files with a number reader, on photos of numbers the tests draw.

The expected answers are computed here independently: the model run on the prepared
pixels and its columns read by a few lines of numpy (argmax, merge runs, drop blanks).
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import predict
from data.numbers import MAX_DIGITS, PADDING, decode
from data.photos import prepare_number, read_image
from data.synthetic import draw_digit
from serving import answers, export, litert
from harness import model_files
from models.ctc import BLANK
from models.reader import build_reader

SHAPES = [(32, 96, 3), (32, 128, 1)]


def numpy_reading(columns: np.ndarray) -> str:
    """The CTC greedy reading of one image's column probabilities (T, 11), written out plainly."""
    best = columns.argmax(axis=1)
    digits, previous = [], BLANK
    for symbol in best:
        if symbol != BLANK and symbol != previous:
            digits.append(str(symbol))
        previous = symbol
    return "".join(digits)[:MAX_DIGITS]


def drawn_number(number: str, seed=0, dark_on_light=True, colour=False) -> Image.Image:
    """A photo-sized picture of `number` in seven-segment digits, with a margin."""
    rng = np.random.default_rng(seed)
    glyphs = [draw_digit(int(digit), 120, rng) for digit in number]
    ink = np.pad(np.concatenate(glyphs, axis=1), 30)  # (h, w) in 0..1
    grey = (225 - 200 * ink) if dark_on_light else (30 + 200 * ink)
    pixels = grey.astype(np.uint8)
    if colour:
        pixels = np.stack([pixels, (pixels * 0.8).astype(np.uint8), pixels // 2], axis=-1)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module", params=SHAPES, ids=lambda shape: "x".join(map(str, shape)))
def reader_file(request, tmp_path_factory):
    """(model file of an untrained reader with randomised batch norms, its model) for each input shape."""
    keras.utils.set_random_seed(3)
    model = build_reader(request.param, 10)
    rng = np.random.default_rng(3)
    for layer in model.layers:  # an untrained reader reads blanks only; moved statistics give it opinions
        if layer.name.endswith("_bn"):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape).astype("float32"),
                               rng.normal(0, 1, beta.shape).astype("float32"), mean,
                               rng.uniform(0.5, 2, variance.shape).astype("float32")])
    path = tmp_path_factory.mktemp("reader") / "model.keras"
    model_files.save_model(model, path, training_setup=False)
    return path, keras.saving.load_model(path)


def test_predict_prints_the_number_the_columns_spell(reader_file, tmp_path, capsys):
    path, model = reader_file
    photos = []
    for index, (number, dark, colour) in enumerate([("23", True, False), ("4051", False, False), ("7", True, True)]):
        photo = tmp_path / f"number{index}.png"
        drawn_number(number, index, dark, colour).save(photo)
        photos.append(photo)
    jpeg = tmp_path / "number.jpg"
    drawn_number("981", 5).convert("RGB").save(jpeg, quality=60)
    photos.append(jpeg)
    assert predict.main([*map(str, photos), "--model-file", str(path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(photo) for photo in photos]
    for photo, line in zip(photos, lines):
        pixels = prepare_number(read_image(photo), model.input_shape[1:])
        columns = np.asarray(model(pixels[np.newaxis].astype(np.float32) / 255, training=False))[0]
        expected = numpy_reading(columns)
        assert line["number"] == expected and len(line["digits"]) == len(expected)
        assert [digit for digit, _ in line["digits"]] == [int(digit) for digit in expected]
        path_probability = float(np.prod(columns.max(axis=1)))
        assert line["probability"] == pytest.approx(path_probability, abs=1e-4)
    assert predict.read_numbers(path.parent, photos) == [line["number"] for line in lines]  # the folder of model.keras


def test_plain_output_and_show(reader_file, tmp_path, capsys):
    path, _ = reader_file
    photo = tmp_path / "door.png"
    drawn_number("12", 1).save(photo)
    assert predict.main([str(photo), "--model-file", str(path), "--show", "--show-dir", str(tmp_path / "seen")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{photo}: ") and line.endswith(")")
    shown = tmp_path / "seen" / "door_seen.png"
    assert shown.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_photos_are_one_line_each(reader_file, tmp_path, capsys):
    path, _ = reader_file
    good, blank = tmp_path / "good.png", tmp_path / "empty.png"
    drawn_number("5").save(good)
    blank.write_bytes(b"")
    assert predict.main([str(good), str(blank), str(tmp_path / "missing.png"), "--model-file", str(path)]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and len(captured.err.splitlines()) == 2
    assert "the file is empty" in captured.err and "no such file" in captured.err


def test_prepare_number_makes_handwriting_bright_on_black_whatever_the_photo():
    dark_on_light = prepare_number(drawn_number("38", dark_on_light=True), (32, 128, 1))
    light_on_dark = prepare_number(drawn_number("38", dark_on_light=False), (32, 128, 1))
    for pixels in (dark_on_light, light_on_dark):
        assert pixels.shape == (32, 128, 1) and np.median(pixels) < 40 and pixels.max() == 255
    assert np.abs(dark_on_light.astype(int) - light_on_dark.astype(int)).mean() < 8


def test_read_numbers_refuses_a_classifier(tmp_path, trained_mlp):
    from data import UserError
    with pytest.raises(UserError, match="not a number reader"):
        predict.read_numbers(trained_mlp[0].parent, [tmp_path / "any.png"])


@pytest.mark.parametrize("shape", SHAPES[:1])
def test_litert_reading_matches_keras(shape, tmp_path):
    """The float32 LiteRT file reads what model.keras reads; the int8 one gives the same outputs' shapes."""
    keras.utils.set_random_seed(4)
    model = build_reader(shape, 10)
    pixels = np.random.default_rng(4).integers(0, 256, (8, *shape), dtype=np.uint8)
    export.write_serving_files(model, tmp_path, pixels)
    columns = np.asarray(model(pixels.astype(np.float32) / 255, training=False))
    expected = [numpy_reading(row) for row in columns]
    for name in ("model_float32.tflite", "model_int8.tflite"):
        lite = litert.LiteModel(tmp_path / name)
        outputs = {key: np.concatenate([lite(pixels[index:index + 1])[key] for index in range(len(pixels))])
                   for key in export.READING.values()}
        assert outputs["digits"].shape == (8, MAX_DIGITS) and outputs["digits"].dtype == np.int32
        assert ((outputs["digits"] >= 0) | (outputs["digits"] == PADDING)).all()
        if name == "model_float32.tflite":
            assert decode(outputs["digits"]) == expected


# What predict.py's LiteRT path never loads: TensorFlow and Keras (seconds to import), and the readers of data
# files it does not read (h5py for SVHN format 1, scipy.io for SVHN's .mat files).
HEAVY_MODULES = ("tensorflow", "keras", "h5py", "scipy.io")


def test_predict_with_litert_reads_what_keras_reads_without_importing_tensorflow(reader_file, tmp_path, capsys):
    """A run folder with model.keras and its LiteRT files: predict.py's default (LiteRT) and --runtime keras give
    the same numbers, and the LiteRT answer comes from a process that never imported TensorFlow.

    The LiteRT answer is a real process's (what it imported is the point); the Keras one, which imports TensorFlow
    anyway, is read in this process, where TensorFlow is already loaded."""
    import subprocess
    import sys

    path, model = reader_file
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model_files.save_model(model, run_dir / "model.keras", training_setup=False)
    pixels = np.random.default_rng(5).integers(0, 256, (8, *model.input_shape[1:]), dtype=np.uint8)
    export.write_serving_files(model, run_dir, pixels)
    photos = []
    for index, number in enumerate(["23", "4051", "7"]):
        photos.append(tmp_path / f"number{index}.png")
        drawn_number(number, index).save(photos[-1])
    arguments = [*map(str, photos), "--run-dir", str(run_dir), "--json", "--runtime"]
    command = ("import sys, predict; code = predict.main(sys.argv[1:]); "
               "print(any(name in sys.modules for name in HEAVY), code)").replace("HEAVY", repr(HEAVY_MODULES))
    result = subprocess.run([sys.executable, "-c", command, *arguments, "litert"], capture_output=True, text=True,
                            check=True, cwd=Path(predict.__file__).parent)
    *lines, imported = result.stdout.splitlines()
    assert imported == "False 0"
    answers = {"litert": [json.loads(line) for line in lines]}
    capsys.readouterr()
    assert predict.main([*arguments, "keras"]) == 0
    answers["keras"] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(answers["keras"]) == len(answers["litert"]) == len(photos)
    for lite, full in zip(answers["litert"], answers["keras"]):
        assert lite["number"] == full["number"]
        assert lite["probability"] == pytest.approx(full["probability"], abs=1e-3)


def test_runtime_litert_needs_the_run_file(reader_file, tmp_path, capsys):
    path, _ = reader_file
    photo = tmp_path / "door.png"
    drawn_number("12", 1).save(photo)
    assert predict.main([str(photo), "--run-dir", str(path.parent), "--runtime", "litert"]) == 2  # no .tflite there
    assert "model_float32.tflite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse's way out, one line and status 2
        predict.main([str(photo), "--model-file", str(path), "--runtime", "litert"])
    assert exit_.value.code == 2 and "--run-dir" in capsys.readouterr().err


class _Geometry:
    """A stand-in reader for zoomed_region: 32x96 input, 4 input pixels per column."""

    input_shape = (32, 96, 3)

    @staticmethod
    def column_width():
        return 4.0


def reading(columns) -> dict:
    return {"columns": np.array(list(columns) + [PADDING] * (MAX_DIGITS - len(columns)))}


def test_a_number_read_across_little_of_the_photo_is_read_again_around_it():
    # A 176x31 photo fits the 96x32 input as 96x17 (176 * 96 / 176 wide, no padding to the left), so input
    # column c covers photo pixels 4c * 176/96 to 4(c + 1) * 176/96.
    region = answers.zoomed_region(reading([10, 11]), (0, 176), 31, _Geometry)
    start, stop = 40 * 176 / 96, 48 * 176 / 96
    digit = (stop - start) / 2
    margin = answers.ZOOM_MARGIN * digit
    assert region == (round(start - margin), round(stop + margin))
    # The same within a region already zoomed: offsets add up.
    assert answers.zoomed_region(reading([10, 11]), (100, 276), 31, _Geometry) == (100 + region[0], 100 + region[1])
    # A lone digit: its width is taken from the photo's height.
    lone = answers.zoomed_region(reading([10]), (0, 176), 31, _Geometry)
    assert lone == (round(40 * 176 / 96 - answers.ZOOM_MARGIN * answers.LONE_DIGIT_WIDTH * 31),
                    round(44 * 176 / 96 + answers.ZOOM_MARGIN * answers.LONE_DIGIT_WIDTH * 31))


def test_a_number_filling_the_photo_or_nothing_read_is_not_zoomed():
    assert answers.zoomed_region(reading([2, 6, 12, 20]), (0, 176), 31, _Geometry) is None  # spans most of it
    assert answers.zoomed_region(reading([]), (0, 176), 31, _Geometry) is None


class _Shrinking(_Geometry):
    """A stand-in reader that reads one digit in column 10 of whatever it is given, so it always zooms."""

    calls = 0

    def __call__(self, pixels):
        _Shrinking.calls += 1
        columns = np.full((1, MAX_DIGITS), PADDING)
        columns[0, 0] = 10
        digits = columns.copy()
        digits[0, 0] = 7
        return {"digits": digits, "columns": columns, "digit_probabilities": np.zeros((1, MAX_DIGITS)),
                "probability": np.ones(1)}


def test_the_zoom_stops_after_its_rounds_and_reports_the_region_it_read():
    from PIL import Image

    photo = Image.new("RGB", (2000, 40), (90, 90, 90))
    _Shrinking.calls = 0
    pixels, answer = answers.read_number(_Shrinking(), photo)
    assert _Shrinking.calls == answers.ZOOM_ROUNDS + 1
    # The region reported is the one read last: reading it once more gives the same pixels.
    left, right = answer["region"]
    again = prepare_number(photo.crop((left, 0, right, photo.height)), _Geometry.input_shape)
    assert np.array_equal(pixels, again) and answer["number"] == "7" and right - left < 2000
