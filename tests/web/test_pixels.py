"""serving/web/pixels.js in Chromium against the Python it ports: every byte the same.

Each test builds inputs here, runs the JavaScript on them in one page.evaluate call, and compares the result
with the project's Python (data.framing, data.photos, Pillow) with np.array_equal. The inputs are seeded noise
(the hardest case for rounding), hard edges (Lanczos overshoots, so clipping is exercised), real SVHN
pictures and MNIST digits where the data folder has them.
"""

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import photos
from data.conventions import dark_ink_to_mnist
from data.framing import fit_to_input, placement
from data.mnist import read_idx

WEB = Path(__file__).resolve().parents[2] / "serving" / "web"
DATA_DIR = Path(os.environ.get("DIGITS_DATA_DIR", "/nonexistent"))
SVHN_PICTURES = DATA_DIR / "svhn-numbers" / "test"
MNIST_TEST_IMAGES = DATA_DIR / "t10k-images-idx3-ubyte.gz"
SAMPLE = 20  # real pictures per test

# (width, height) -> (new width, new height): down and up, odd, one pixel wide, one pass only, unchanged.
RESIZES = [
    ((640, 480), (96, 32)), ((640, 480), (32, 32)), ((31, 29), (13, 11)), ((7, 5), (64, 48)),
    ((1, 50), (3, 17)), ((50, 1), (9, 1)), ((1, 1), (5, 4)), ((40, 30), (17, 30)), ((40, 30), (40, 9)),
    ((20, 20), (20, 20)), ((5, 3), (200, 3)), ((97, 13), (1, 1)), ((300, 7), (28, 28)), ((28, 28), (20, 13)),
    # Pillow 13 resamples vertically first when the height shrinks by more than twice the width's pixels.
    ((95, 54), (96, 32)), ((100, 100), (80, 50)), ((100, 100), (75, 50)), ((100, 200), (50, 100)),
]
RANDOM_RESIZES = 80  # seeded (width, height) -> (new width, new height) pairs of 1 to 70 pixels

RUN = """async ({calls}) => {
  const pixels = await import("/pixels.js");
  const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const decode = (arg) => {
    if (arg === null || typeof arg !== "object" || Array.isArray(arg)) return arg;
    if ("image" in arg) return {data: bytes(arg.image), width: arg.width, height: arg.height, channels: arg.channels};
    if ("f32" in arg) return new Float32Array(bytes(arg.f32).buffer);
    return bytes(arg.u8);
  };
  const encode = (data) => {
    let text = "";
    for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode(...data.subarray(i, i + 0x8000));
    return btoa(text);
  };
  return calls.map(([name, args]) => {
    try {
      const result = pixels[name](...args.map(decode));
      if (result && result.data) {
        return {image: encode(result.data), width: result.width, height: result.height, channels: result.channels};
      }
      return {value: result};
    } catch (error) {
      return {error: String(error)};
    }
  });
}"""


@pytest.fixture
def run_js(serve_folder, new_page):
    """run_js([(function name, [arguments]), ...]) -> their results: images as arrays (h, w) or (h, w, C), other
    values as JSON gives them. Arguments: image_arg, float32_arg, bytes_arg or JSON values."""
    base_url = serve_folder(WEB)
    watched = new_page()
    watched.page.goto(base_url + "/pixels.js")

    def run(calls):
        results = watched.page.evaluate(RUN, {"calls": [[name, list(args)] for name, args in calls]})
        for (name, _), result in zip(calls, results):
            assert "error" not in result, f"{name}: {result['error']}"
        return [image_of(result) if "image" in result else result["value"] for result in results]

    yield run
    assert watched.blocked == [], f"requests left 127.0.0.1: {watched.blocked}"
    assert watched.errors == [], f"the page reported errors: {watched.errors}"


def image_arg(array: np.ndarray) -> dict:
    """uint8 (h, w) or (h, w, C) -> pixels.js's image {data, width, height, channels}, the data as base64."""
    array = np.ascontiguousarray(array, np.uint8)
    channels = 1 if array.ndim == 2 else array.shape[2]
    return {"image": base64.b64encode(array.tobytes()).decode(), "width": array.shape[1], "height": array.shape[0],
            "channels": channels}


def float32_arg(array: np.ndarray) -> dict:
    return {"f32": base64.b64encode(np.ascontiguousarray(array, "<f4").tobytes()).decode()}


def bytes_arg(array: np.ndarray) -> dict:
    return {"u8": base64.b64encode(np.ascontiguousarray(array, np.uint8).tobytes()).decode()}


def image_of(result: dict) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(result["image"]), np.uint8)
    shape = (result["height"], result["width"]) + (() if result["channels"] == 1 else (result["channels"],))
    return data.reshape(shape)


def assert_same(got: np.ndarray, expected: np.ndarray, label: str) -> None:
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"{label}: shape {got.shape}, Python's {expected.shape}"
    if not np.array_equal(got, expected):
        difference = np.abs(got.astype(int) - expected.astype(int))
        raise AssertionError(f"{label}: {np.count_nonzero(difference)} of {difference.size} values differ, "
                             f"by at most {difference.max()}")


def lanczos(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))


def structured(rng, height: int, width: int, channels: int) -> list[np.ndarray]:
    """Seeded noise, a hard-edged pattern (black and white blocks, where Lanczos overshoots) and a gradient."""
    shape = (height, width) if channels == 1 else (height, width, channels)
    rows, cols = np.indices((height, width))
    blocks = np.where(((rows // 3) + (cols // 2)) % 2, 255, 0).astype(np.uint8)
    gradient = ((rows * 7 + cols * 3) % 256).astype(np.uint8)
    if channels > 1:
        blocks = np.repeat(blocks[..., None], channels, 2)
        gradient = np.stack([gradient, 255 - gradient, blocks[..., 0]][:channels], 2)
    return [rng.integers(0, 256, shape, dtype=np.uint8), blocks, gradient]


def svhn_sample(count: int = SAMPLE) -> list[np.ndarray]:
    """`count` SVHN number pictures (h, w, 3) uint8, a seeded sample; skips the test without them."""
    files = sorted(SVHN_PICTURES.glob("*.png"))
    if not files:
        pytest.skip(f"no SVHN number pictures in {SVHN_PICTURES} (set DIGITS_DATA_DIR)")
    chosen = np.random.default_rng(0).choice(len(files), min(count, len(files)), replace=False)
    return [np.asarray(Image.open(files[index]).convert("RGB")) for index in chosen]


def mnist_sample(count: int) -> np.ndarray:
    """`count` MNIST test digits (N, 28, 28) uint8, a seeded sample; skips the test without them."""
    if not MNIST_TEST_IMAGES.exists():
        pytest.skip(f"no MNIST test images at {MNIST_TEST_IMAGES} (set DIGITS_DATA_DIR)")
    digits = read_idx(MNIST_TEST_IMAGES, 3)
    return digits[np.random.default_rng(0).choice(len(digits), count, replace=False)]


def test_resize_is_pillows_lanczos(run_js):
    rng = np.random.default_rng(1)
    cases = []
    for (width, height), size in RESIZES:
        for channels in (1, 3):
            for picture in structured(rng, height, width, channels):
                cases.append((picture, size))
    for width, height, new_width, new_height in rng.integers(1, 71, (RANDOM_RESIZES, 4)):
        channels = int(rng.choice([1, 3]))
        cases.append((structured(rng, height, width, channels)[0], (int(new_width), int(new_height))))
    results = run_js([("resize", [image_arg(picture), *size]) for picture, size in cases])
    for (picture, size), got in zip(cases, results):
        assert_same(got, lanczos(picture, size), f"{picture.shape} -> {size}")


def test_resize_of_real_pictures(run_js):
    pictures = svhn_sample()
    sizes = [(96, 32), (32, 32), (13, 7), (200, 150)]
    cases = [(picture, size) for picture in pictures for size in sizes]
    cases += [(np.asarray(Image.fromarray(picture).convert("L")), (96, 32)) for picture in pictures]
    results = run_js([("resize", [image_arg(picture), *size]) for picture, size in cases])
    for (picture, size), got in zip(cases, results):
        assert_same(got, lanczos(picture, size), f"SVHN {picture.shape} -> {size}")


def test_colour_conversions_are_pillows(run_js):
    """RGBA over white paper (any alpha, the same bytes), RGB and grey both ways; prepare_number's plain convert
    drops alpha instead, which prepareNumber follows."""
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[:5, :, 3] = 0  # fully transparent: the paper
    rgba[5:10, :, 3] = 255  # opaque
    rgb, grey = rgba[..., :3], rgba[..., 0]
    # Colours whose luma falls within two 65536ths of a half: where the rounding constant decides.
    colours = rng.integers(0, 256, (1_000_000, 3), dtype=np.int32)
    fraction = (colours @ np.array([19595, 38470, 7471], np.int32)) % 65536
    close = colours[np.abs(fraction - 32768) <= 2].astype(np.uint8)
    rgb = np.concatenate([rgb.reshape(-1, 3), close[rng.choice(len(close), 53 * 20)]]).reshape(-1, 53, 3)
    calls = [("toRgb", [image_arg(rgba)]), ("toGrey", [image_arg(rgba)]), ("toRgb", [image_arg(rgb)]),
             ("toGrey", [image_arg(rgb)]), ("toRgb", [image_arg(grey)]), ("toGrey", [image_arg(grey)])]
    results = run_js(calls)
    expected = [photos._flattened(Image.fromarray(array), mode)
                for array in (rgba, rgb, grey) for mode in ("RGB", "L")]
    for (name, _), got, want in zip(calls, results, expected):
        assert_same(got, np.asarray(want), f"{name} of {want.mode}")


def test_crop_is_pillows(run_js):
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    boxes = [(0, 0, 30, 20), (3, 2, 17, 19), (2.5, 3.5, 10.5, 11.5), (-4, -3, 12, 9), (25, 15, 40, 26), (5, 5, 6, 6)]
    results = run_js([("crop", [image_arg(picture), *box]) for box in boxes])
    for box, got in zip(boxes, results):
        assert_same(got, np.asarray(Image.fromarray(picture).crop(box)), f"crop {box}")


def test_placement_and_fit_are_framings(run_js):
    rng = np.random.default_rng(4)
    shapes = [(32, 96), (28, 28), (32, 100), (48, 160)]
    sizes = [(1, 1), (1, 300), (300, 1), (19, 25), (96, 32), (480, 640), (33, 97), (17, 51), (64, 192), (5, 3)]
    geometry = [(rows, columns, height, width) for rows, columns in sizes for height, width in shapes]
    fits = []
    for rows, columns in sizes:
        for channels in (1, 3):
            for height, width in shapes[:2]:
                fits.append((structured(rng, rows, columns, channels)[0], height, width))
    results = run_js([("placement", list(args)) for args in geometry]
                     + [("fitToInput", [image_arg(picture), height, width]) for picture, height, width in fits])
    for args, got in zip(geometry, results):
        assert got == list(placement(*args)), f"placement{args}"
    for (picture, height, width), got in zip(fits, results[len(geometry):]):
        want = fit_to_input(picture if picture.ndim == 3 else picture[..., None], height, width)
        assert_same(got, want if picture.ndim == 3 else want[..., 0], f"fit {picture.shape} into {height}x{width}")


def prepare_number_cases(pictures, shapes=((32, 96, 3), (32, 96, 1), (28, 140, 1))):
    return [(picture, shape) for picture in pictures for shape in shapes]


def check_prepare_number(run_js, cases, label):
    results = run_js([("prepareNumber", [image_arg(picture), list(shape)]) for picture, shape in cases])
    for (picture, shape), got in zip(cases, results):
        want = photos.prepare_number(Image.fromarray(picture), shape)
        assert_same(got, want if shape[2] == 3 else want[..., 0], f"{label} {picture.shape} as {shape}")


def test_prepare_number_is_pythons(run_js):
    """Noise, both polarities, a half-integer median (even pixel count), dim and blank pictures, RGBA (alpha
    dropped as Pillow's convert does)."""
    rng = np.random.default_rng(5)
    pictures = structured(rng, 24, 61, 3) + structured(rng, 40, 30, 1)
    dark_on_light = np.full((30, 80), 200, np.uint8)
    dark_on_light[10:20, 15:60] = rng.integers(0, 90, (10, 45))
    light_on_dark = 255 - dark_on_light
    half_median = np.array([[10, 20], [30, 255]], np.uint8).repeat(9, 0).repeat(13, 1)  # median 25
    dim = (rng.integers(0, 6, (21, 47))).astype(np.uint8)
    blank = np.full((16, 16), 128, np.uint8)
    rgba = rng.integers(0, 256, (20, 50, 4), dtype=np.uint8)
    pictures += [dark_on_light, light_on_dark, half_median, dim, blank, rgba]
    check_prepare_number(run_js, prepare_number_cases(pictures), "")


def test_prepare_number_of_real_pictures(run_js):
    check_prepare_number(run_js, prepare_number_cases(svhn_sample()), "SVHN")


def frame_cases(rng) -> list[np.ndarray]:
    """Float32 inks in 0..1, zero around a digit: blobs of several shapes, a one-pixel line, a lone dot, none."""
    inks = []
    blobs = [(40, 30, 5, 7, 20, 11), (28, 28, 0, 0, 28, 28), (60, 90, 10, 3, 7, 80), (33, 17, 2, 5, 29, 1),
             (10, 100, 4, 50, 1, 40), (25, 25, 12, 12, 1, 1)]  # (height, width, top, left, rows, columns)
    for height, width, top, left, rows, cols in blobs:
        ink = np.zeros((height, width), np.float32)
        ink[top:top + rows, left:left + cols] = rng.uniform(0.1, 1, (rows, cols)).astype(np.float32)
        inks.append(ink)
    inks.append(np.zeros((12, 12), np.float32))
    return inks


def test_frame_like_mnist_is_pythons(run_js):
    rng = np.random.default_rng(6)
    inks = frame_cases(rng)
    cases = [(ink, shape) for ink in inks for shape in [(28, 28), (32, 20)]]
    results = run_js([("frameLikeMnist", [float32_arg(ink), ink.shape[1], ink.shape[0], *shape, photos.DIGIT_SHARE])
                      for ink, shape in cases])
    for (ink, shape), got in zip(cases, results):
        assert_same(got, photos.frame_like_mnist(ink, shape), f"frame {ink.shape} into {shape}")


def test_frame_like_mnist_of_ink_too_faint_to_show(run_js):
    """Ink that rounds to nothing: Python fails on the NaN centre of mass; the page shows a black field."""
    faint = np.zeros((10, 10), np.float32)
    faint[3:6, 4:7] = 0.001
    with np.errstate(invalid="ignore", divide="ignore"), pytest.raises(ValueError):  # 0 / 0, then round(nan)
        photos.frame_like_mnist(faint, (28, 28))
    [got] = run_js([("frameLikeMnist", [float32_arg(faint), 10, 10, 28, 28, photos.DIGIT_SHARE])])
    assert_same(got, np.zeros((28, 28), np.uint8), "faint ink")


def test_frame_like_mnist_of_mnist_digits(run_js):
    """MNIST's own digits as ink (already framed), and drawn on a canvas: white on black RGBA."""
    digits = mnist_sample(60)
    canvas = np.zeros((len(digits), 28, 28, 4), np.uint8)
    canvas[..., :3] = digits[..., None]
    canvas[..., 3] = 255
    calls = [("frameLikeMnist", [float32_arg(digit.astype(np.float32) / 255), 28, 28, 28, 28, photos.DIGIT_SHARE])
             for digit in digits]
    calls += [("canvasToMnist", [bytes_arg(picture), 28, 28, [28, 28], photos.DIGIT_SHARE]) for picture in canvas]
    results = run_js(calls)
    for index, got in enumerate(results):
        digit = digits[index % len(digits)]
        assert_same(got, photos.frame_like_mnist(digit.astype(np.float32) / 255, (28, 28)), f"MNIST digit {index}")


def scan_to_mnist(grey: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The page's declared rule, in numpy: prepare_number's polarity, dark_ink_to_mnist's ink, INK_FLOOR."""
    grey = grey.astype(np.float32)
    if np.median(grey) > 127:
        grey = 255 - grey
    ink = np.clip(grey - np.median(grey), 0, None)
    ink /= max(float(ink.max()), 1.0)
    ink[ink < photos.INK_FLOOR] = 0
    return photos.frame_like_mnist(ink, shape)


def test_scan_to_mnist_is_the_declared_rule(run_js):
    """Scans dark on light and light on dark, noise, a colour photo; and with no floor on light paper it is
    data/conventions.py's dark_ink_to_mnist exactly."""
    rng = np.random.default_rng(7)
    digits = mnist_sample(20)
    scans = [255 - digit for digit in digits[:10]] + list(digits[10:])
    scans += [rng.integers(0, 256, (30, 45), dtype=np.uint8), rng.integers(100, 256, (50, 50, 3), dtype=np.uint8)]
    calls = [("scanToMnist", [image_arg(scan), [28, 28], photos.INK_FLOOR, photos.DIGIT_SHARE]) for scan in scans]
    calls += [("scanToMnist", [image_arg(255 - digit), [28, 28], 0, photos.DIGIT_SHARE]) for digit in digits[:10]]
    results = run_js(calls)
    for index, (scan, got) in enumerate(zip(scans, results)):
        grey = scan if scan.ndim == 2 else np.asarray(Image.fromarray(scan).convert("L"))
        assert_same(got, scan_to_mnist(grey, (28, 28)), f"scan {index}")
    for index, got in enumerate(results[len(scans):]):
        assert_same(got, dark_ink_to_mnist(255 - digits[index:index + 1])[0], f"dark ink {index}")


def test_to_street_is_pythons(run_js, monkeypatch):
    """Squares from both sides, RGBA over white, and the shrink of a long strip (MAX_PIXELS made small here)."""
    rng = np.random.default_rng(8)
    pictures = structured(rng, 20, 57, 3) + structured(rng, 61, 12, 3) + [rng.integers(0, 256, (9, 9, 4),
                                                                                       dtype=np.uint8)]
    pictures += svhn_sample(5) if SVHN_PICTURES.is_dir() else []
    strips = [rng.integers(0, 256, (3, 90, 3), dtype=np.uint8), rng.integers(0, 256, (120, 7), dtype=np.uint8)]
    small = 5000  # pixels: a 70-pixel square fits, 90 or 120 do not
    calls = [("toStreet", [image_arg(picture), [32, 32], photos.MAX_PIXELS]) for picture in pictures]
    calls += [("toStreet", [image_arg(strip), [32, 32], small]) for strip in strips]
    results = run_js(calls)
    for picture, got in zip(pictures, results):
        assert_same(got, photos.to_street(Image.fromarray(picture), (32, 32)), f"street {picture.shape}")
    monkeypatch.setattr(photos, "MAX_PIXELS", small)
    for strip, got in zip(strips, results[len(pictures):]):
        assert_same(got, photos.to_street(Image.fromarray(strip), (32, 32)), f"shrunk strip {strip.shape}")


def test_bad_arguments_are_refused(serve_folder, new_page):
    """Wrong sizes and missing manifest numbers raise with a message instead of giving wrong pixels."""
    base_url = serve_folder(WEB)
    watched = new_page()
    watched.page.goto(base_url + "/pixels.js")
    errors = watched.page.evaluate("""async () => {
      const pixels = await import("/pixels.js");
      const grey = {data: new Uint8Array(6), width: 3, height: 2, channels: 1};
      const attempts = [
        () => pixels.resize({...grey, width: 4}, 2, 2),
        () => pixels.resize(grey, 0, 2),
        () => pixels.resize({data: new Uint8Array(24), width: 3, height: 2, channels: 4}, 2, 2),
        () => pixels.toStreet(grey, [32, 32]),
        () => pixels.scanToMnist(grey, [28, 28], undefined, 20 / 28),
        () => pixels.frameLikeMnist(new Float32Array(6), 3, 2, 28, 28),
        () => pixels.crop(grey, 2, 0, 1, 2),
      ];
      return attempts.map((attempt) => { try { attempt(); return null; } catch (error) { return error.message; } });
    }""")
    assert all(errors), errors
    assert "6 bytes, not 4x2x1" in errors[0] and "maxPixels" in errors[3] and "inkFloor" in errors[4]
