"""The web page in Chromium, against serve.py's folder for two small real runs: a convnet and a number reader.

Every answer the page gives is checked against the project's Python on the same input: predict.py's reading
(LiteRT) of the same photo file, Python LiteRT's digit for the page's own 28x28 input, and
data.photos.frame_like_mnist for a drawing. No request may leave 127.0.0.1 and the console stays free of
errors throughout (tests/web/conftest.py watches both).
"""

import base64
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.photos import frame_like_mnist, read_image
from harness import kinds, runs
from serving.litert import LiteModel

READ = "/index.html#read"
DRAW = "/index.html#draw"
SURVEY_IMAGES = 200  # training images surveyed for the draw view's unit details: enough to fill every unit's top


@pytest.fixture(scope="module")
def site(tmp_path_factory, good_run, reader_dry_run):
    """(folder, classifier run, reader run, reader's data folder): the page built for the session's two dry-run
    runs (only read)."""
    from serving import webapp

    reader_run, data_dir = reader_dry_run
    classifier_run = good_run
    folder = tmp_path_factory.mktemp("site") / "web"
    webapp.build([classifier_run, reader_run], folder, survey_images=SURVEY_IMAGES)
    return folder, classifier_run, reader_run, data_dir


@pytest.fixture
def page(site, serve_folder, new_page):
    """A watched page at the read view, the page ready; checked afterwards for outside requests and errors."""
    base = serve_folder(site[0])
    watched = new_page()
    watched.page.goto(base + READ)
    watched.page.evaluate("() => digitsPage.ready.then(() => true)")
    watched.base = base
    yield watched
    assert watched.blocked == [], watched.blocked
    assert watched.errors == [], watched.errors


def read_in_page(page, path: Path) -> dict:
    """The page's reading of a file's bytes, through the same code as its file input."""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return page.evaluate("""async ([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const answer = await digitsPage.read.readFile(new Blob([bytes]), name);
        return {text: answer.text, probability: answer.probability, digits: answer.digits ?? null,
                region: answer.region ?? null, pixels: Array.from(answer.pixels.data)};
    }""", [data, Path(path).name])


def predict_number(runner: LiteModel, path: Path) -> dict:
    """predict.py's answer for a photo file with a LiteRT runner (serving/answers.py)."""
    pixels, answer = runner.kind.answer(runner, read_image(path))
    return {"number": answer["json"].get("number"), "probability": answer["json"].get("probability"),
            "top": answer["json"].get("top"), "region": answer.get("region"), "pixels": pixels}


def test_the_manifest_describes_each_model_and_the_folder_is_self_contained(site):
    folder, classifier_run, reader_run, _ = site
    manifest = json.loads((folder / "manifest.json").read_text())
    classifier, reader = manifest["models"]
    assert classifier["kind"] == "classifier" and reader["kind"] == "reader"
    assert classifier["input"] == {"height": 28, "width": 28, "channels": 1, "colour": "bright ink on black"}
    assert [layer["output"] for layer in classifier["layers"]] == ["conv1_relu", "conv2_relu", "conv3_relu"]
    assert reader["column_width"] == LiteModel(reader_run / runs.TFLITE_FLOAT32_FILE).column_width()
    # Every file the page names is in the folder, and the service worker's list holds every file.
    named = [manifest["runtime"], classifier["model"], classifier["layers_model"], reader["model"],
             *(layer["survey"]["picture"] for layer in classifier["layers"])]
    assert all((folder / name).is_file() for name in named)
    precache = json.loads((folder / "precache.js").read_text().removeprefix("self.PRECACHE = ").rstrip(";\n"))
    assert set(precache["files"]) == {"./"} | {str(path.relative_to(folder)) for path in folder.rglob("*")
                                               if path.is_file()}
    # A survey picture has a row of top patches per unit, each the unit's receptive field.
    conv2 = classifier["layers"][1]
    survey = Image.open(folder / conv2["survey"]["picture"])
    assert survey.size == (conv2["survey"]["top"] * conv2["field"]["width"], conv2["units"] * conv2["field"]["height"])


def test_the_page_files_answer_as_the_runs_own_files(site):
    """The page's one-image LiteRT files give the run's answers (the run's own files take any batch size), and
    the layers file's maps are the Keras model's layer outputs."""
    import keras

    from data.pipeline import normalise
    from harness import model_files

    folder, classifier_run, reader_run, _ = site
    rng = np.random.default_rng(0)
    for run_dir, shape in ((classifier_run, (28, 28, 1)), (reader_run, (32, 96, 3))):
        own, page = LiteModel(run_dir / runs.TFLITE_FLOAT32_FILE), LiteModel(folder / "models" / run_dir.name /
                                                                             "model.tflite")
        for image in rng.integers(0, 256, (3, 1, *shape), np.uint8):
            expected, got = own(image), page(image)
            assert set(got) == set(expected)
            for name, value in expected.items():
                assert got[name].dtype == value.dtype and value.dtype in (np.int32, np.float32)
                np.testing.assert_allclose(got[name], value, atol=1e-5)
    layers = LiteModel(folder / "models" / classifier_run.name / "layers.tflite")
    model = model_files.load_model(classifier_run / runs.MODEL_FILE)
    names = ["conv1_relu", "conv2_relu", "conv3_relu"]
    inside = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    image = rng.integers(0, 256, (1, 28, 28, 1), np.uint8)
    got = layers(image)
    for name, expected in zip(names, inside(normalise(image), training=False)):
        np.testing.assert_allclose(got[name], np.asarray(expected), atol=1e-4)


def test_photos_are_read_as_predict_py_reads_them(site, page, tmp_path):
    """Every test picture of the reader's data folder, and real house numbers where the shared data is, read
    in the page and by predict.py's LiteRT path: the same numbers, from the same pixels."""
    _, _, reader_run, data_dir = site
    runner = LiteModel(reader_run / runs.TFLITE_FLOAT32_FILE)
    assert runner.kind is kinds.READER
    pictures = sorted((data_dir / "svhn-numbers" / "test").glob("*.png"))
    shared = Path(__import__("os").environ.get("DIGITS_DATA_DIR", "/nonexistent")) / "svhn-numbers" / "test"
    pictures += sorted(shared.glob("*.png"))[:40]
    # Numbers far narrower than their photos, which predict.py reads again zoomed in (serving/answers.py).
    for index, path in enumerate(pictures[:4]):
        number = Image.open(path).convert("RGB")
        wide = Image.new("RGB", (number.width * 6, number.height), (60, 60, 60))
        wide.paste(number, (number.width * (1 + index), 0))
        pictures.append(tmp_path / f"wide-{path.name}")
        wide.save(pictures[-1])
    same_pixels = same_numbers = same_regions = 0
    for path in pictures:
        got, expected = read_in_page(page.page, path), predict_number(runner, path)
        same_pixels += np.array_equal(np.array(got["pixels"], np.uint8), expected["pixels"].ravel())
        same_numbers += got["text"] == expected["number"]
        same_regions += tuple(got["region"]) == tuple(expected["region"])
        if got["text"] == expected["number"] and got["text"]:
            assert abs(got["probability"] - expected["probability"]) <= 2e-4
    assert same_pixels == same_numbers == same_regions == len(pictures)


def test_the_file_input_reads_a_photo_into_the_page(site, page, tmp_path):
    _, _, reader_run, data_dir = site
    path = sorted((data_dir / "svhn-numbers" / "test").glob("*.png"))[4]
    expected = predict_number(LiteModel(reader_run / runs.TFLITE_FLOAT32_FILE), path)
    assert page.page.is_visible("#read-view") and not page.page.is_visible("#draw-view")
    page.page.set_input_files("#photo", str(path))
    page.page.wait_for_function("() => document.querySelector('#read-message').textContent !== 'Reading…'")
    assert page.page.text_content("#number") == expected["number"]
    probability = page.page.text_content("#probability")
    assert probability == (f"{expected['probability']:.2f}" if expected["number"] else "")


def test_a_classifier_reads_one_digit_from_a_photo(site, page, tmp_path):
    """A dark digit on light paper, chosen with the one-digit model: the page's 28x28 input is data/conventions'
    rule computed here, and its digit Python LiteRT's for that input."""
    folder, classifier_run, _, _ = site
    paper = np.full((60, 50), 230, np.uint8)
    paper[10:50, 22:28] = 20  # a 1
    path = tmp_path / "one.png"
    Image.fromarray(paper).save(path)
    page.page.select_option("#read-model", classifier_run.name)
    got = read_in_page(page.page, path)
    ink = np.clip(np.median(paper) - paper.astype(np.float32), 0, None) / 210
    expected_pixels = frame_like_mnist(np.where(ink < 0.15, 0, ink).astype(np.float32), (28, 28))
    assert np.array_equal(np.array(got["pixels"], np.uint8).reshape(28, 28), expected_pixels)
    digit = LiteModel(classifier_run / runs.TFLITE_FLOAT32_FILE)(expected_pixels[np.newaxis, ..., np.newaxis])
    assert got["text"] == str(digit["digit"][0])


def canvas_state(page) -> dict:
    return page.evaluate("""() => ({digit: document.querySelector('#digit').textContent,
        message: document.querySelector('#draw-message').textContent,
        pixels: Array.from(digitsPage.draw.last.pixels.data),
        maps: [...document.querySelectorAll('.maps canvas')].map((canvas) => canvas.toDataURL())})""")


def wait_for_update(page) -> None:
    page.wait_for_function("() => !digitsPage.draw.busy && digitsPage.draw.pending === null")


def stroke(page, points, touch: bool = False) -> None:
    """A stroke through `points` (canvas fractions), by mouse or by touch (Chrome's touch events)."""
    box = page.locator("#canvas").bounding_box()
    where = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    if not touch:
        page.mouse.move(*where[0])
        page.mouse.down()
        for point in where[1:]:
            page.mouse.move(*point, steps=4)
        page.mouse.up()
        return
    session = page.context.new_cdp_session(page)
    for number, (x, y) in enumerate(where):
        kind = "touchStart" if number == 0 else "touchMove"
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


@pytest.mark.parametrize("touch", [False, True], ids=["mouse", "touch"])
def test_strokes_are_read_and_every_layer_answers(site, serve_folder, new_page, touch):
    """A stroke by mouse or finger: the page's 28x28 input is frame_like_mnist of its canvas (computed here), its
    digit is Python LiteRT's for that input, and adding a stroke changes the layers' maps."""
    folder, classifier_run, _, _ = site
    watched = new_page(has_touch=touch)
    page = watched.page
    page.goto(serve_folder(folder) + DRAW)
    page.evaluate("() => digitsPage.ready.then(() => true)")
    assert page.is_visible("#draw-view") and not page.is_visible("#read-view")
    wait_for_update(page)
    blank = canvas_state(page)
    assert blank["digit"] == "" and blank["message"] == "Draw a digit in the black box."
    stroke(page, [(0.5, 0.15), (0.5, 0.5), (0.5, 0.85)], touch)
    wait_for_update(page)
    first = canvas_state(page)
    canvas = page.evaluate("() => Array.from(digitsPage.draw.context.getImageData(0, 0, 280, 280).data)")
    ink = np.array(canvas, np.float32).reshape(280, 280, 4)[..., 0] / 255
    assert ink.max() == 1  # the stroke is on the canvas
    assert np.array_equal(np.array(first["pixels"], np.uint8).reshape(28, 28), frame_like_mnist(ink, (28, 28)))
    digit = LiteModel(classifier_run / runs.TFLITE_FLOAT32_FILE)(
        np.array(first["pixels"], np.uint8).reshape(1, 28, 28, 1))["digit"][0]
    assert first["digit"] == str(digit) and first["message"] == ""
    stroke(page, [(0.2, 0.2), (0.5, 0.2), (0.8, 0.2)], touch)
    wait_for_update(page)
    second = canvas_state(page)
    assert second["maps"] != first["maps"] and second["pixels"] != first["pixels"]
    page.click("#clear")
    wait_for_update(page)
    assert canvas_state(page)["digit"] == ""
    assert watched.blocked == [] and watched.errors == []


def png_header(width: int, height: int) -> bytes:
    """The start of a PNG file claiming width x height pixels (signature and IHDR chunk), then no image data."""
    fields = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + fields
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(fields)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize("name, content, message", [
    ("notes.png", b"these are my notes, not a picture",
     "notes.png: not an image this browser can open (give a PNG or JPEG)"),
    ("huge.png", png_header(20_000, 20_000) + bytes(1000),
     "huge.png: 20000x20000 pixels is too large (at most 50,000,000 pixels); crop or shrink it"),
    ("huge.jpg", b"\xff\xd8" + 2 * (b"\xff\xe1\xfe\xfe" + bytes(0xfefc)) + b"\xff\xff\xc0\x00\x11\x08"
     + struct.pack(">HH", 20_000, 20_000) + bytes(100),
     "huge.jpg: 20000x20000 pixels is too large (at most 50,000,000 pixels); crop or shrink it"),
    ("huge.gif", b"GIF89a" + struct.pack("<HH", 9_000, 9_000) + bytes(100),
     "huge.gif: 9000x9000 pixels is too large (at most 50,000,000 pixels); crop or shrink it"),
    ("empty.jpg", b"", "empty.jpg: the file is empty"),
    ("tiny.png", None, "tiny.png: 4x30 pixels is too small to show a digit (at least 8 pixels each way)"),
], ids=["not-an-image", "huge", "huge-jpeg-past-its-metadata", "huge-gif", "empty", "tiny"])
def test_bad_photos_get_a_clear_message_and_no_number(page, tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        Image.new("RGB", (4, 30), "white").save(path)
    else:
        path.write_bytes(content)
    page.page.set_input_files("#photo", str(path))
    page.page.wait_for_function("() => !['', 'Reading…'].includes("
                                "document.querySelector('#read-message').textContent)")
    assert page.page.text_content("#read-message") == message
    assert page.page.text_content("#number") == "" and page.page.text_content("#probability") == ""


def test_a_blank_photo_reads_no_digit(site, page, tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (64, 48), 200).save(path)
    page.page.select_option("#read-model", site[1].name)
    page.page.set_input_files("#photo", str(path))
    page.page.wait_for_function("() => !['', 'Reading…'].includes("
                                "document.querySelector('#read-message').textContent)")
    assert page.page.text_content("#read-message") == "no digit found: the picture is blank or has almost no contrast"
    assert page.page.text_content("#number") == ""


def test_after_one_visit_the_page_reads_a_photo_offline(site, serve_folder, new_page):
    """The service worker keeps every file: with the network gone, a reload still opens the page and reads."""
    folder, _, reader_run, data_dir = site
    watched = new_page()
    page = watched.page
    page.goto(serve_folder(folder) + READ)
    page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    page.reload()  # now under the service worker's control
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.context.set_offline(True)
    page.reload()
    page.evaluate("() => digitsPage.ready.then(() => true)")
    path = sorted((data_dir / "svhn-numbers" / "test").glob("*.png"))[2]
    got = read_in_page(page, path)
    assert got["text"] == predict_number(LiteModel(reader_run / runs.TFLITE_FLOAT32_FILE), path)["number"]
    assert watched.blocked == [] and watched.errors == []


def test_the_live_camera_reads_what_is_in_the_guide_box(site, serve_folder, browser):
    """Chromium's fake camera (a moving test pattern): the guide box takes the reader's proportions, and a
    reading of it completes: a number or the no-number message, never an error."""
    from tests.web.conftest import chromium_path

    with browser.browser_type.launch(executable_path=chromium_path(), args=[  # the session's Playwright
            "--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]) as camera:
        context = camera.new_context(permissions=["camera"])
        page = context.new_page()
        errors = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(serve_folder(site[0]) + READ)
        page.evaluate("() => digitsPage.ready.then(() => true)")
        page.click("#camera-start")
        page.wait_for_function("() => document.querySelector('#video').videoWidth > 0")
        guide = page.locator("#guide").bounding_box()
        entry = page.evaluate("() => digitsPage.read.entry.input")
        assert guide["width"] / guide["height"] == pytest.approx(entry["width"] / entry["height"], rel=0.05)
        page.click("#camera-read")
        page.wait_for_function("() => document.querySelector('#read-message').textContent !== 'Reading…'")
        message = page.text_content("#read-message")
        assert message in ("", "no number found in this photo"), message
        assert page.is_visible("#seen")
        page.click("#camera-stop")
        assert page.is_hidden("#camera") and errors == []
