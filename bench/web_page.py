"""The web page measured in Chromium against Python: agreement, speed, stroke latency, first load; screenshots.

    python bench/web_page.py --run-dir runs/convnet_mnist --run-dir runs/reader_svhn-numbers --out bench-web.json

It builds the page with serve.py's code, serves it on 127.0.0.1 and drives Debian's Chromium with Playwright
(no request leaves the machine: every other address is aborted and counted). Measured:

- agreement: every svhn-numbers test picture read in the page and by predict.py's LiteRT path (same number?
  same input pixels?); MNIST test digits painted into the draw view's canvas at 10x, read by the page, against
  Python LiteRT on the original 28x28 (same digit?), and how far the page's 28x28 input is from the original;
- time per digit and per number in the page (LiteRT.js, WebAssembly) beside Python LiteRT, median of 100:
  the model alone, and the whole reading (decoding, preparation, zooms) for a number;
- stroke-to-update latency: mouse strokes, from the pointer event to the page updated (answer, maps);
- first load: bytes and time from navigation to the page ready, in a fresh browser;
- digits drawn by mouse (1, 7, 0) and the digit the page gives;
- screenshots of both views at desktop (1280x800) and phone (390x844) size, written to --screenshots.
"""

import argparse
import base64
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from data import load_dataset, recorded_data_dir  # noqa: E402
from data.photos import read_image  # noqa: E402
from harness import atomic, kinds, runs  # noqa: E402
from harness.cli import entry_point  # noqa: E402
from serving.litert import LiteModel  # noqa: E402

REPEATS = 100
SCREENSHOTS = tuple(f"web_{view}_{size}.png" for view in ("read", "draw") for size in ("desktop", "phone"))
SHOWN_NUMBER = "04044.png"  # the svhn-numbers test picture in the screenshots: 174, read right at 0.99
DRAWN = {  # strokes in canvas fractions, as a person draws these digits
    "1": [[(0.52, 0.12), (0.5, 0.5), (0.48, 0.88)]],
    "7": [[(0.22, 0.18), (0.5, 0.17), (0.8, 0.18), (0.62, 0.5), (0.45, 0.88)]],
    "0": [[(0.5, 0.12), (0.26, 0.3), (0.22, 0.55), (0.32, 0.82), (0.55, 0.88), (0.76, 0.65), (0.78, 0.35),
           (0.62, 0.14), (0.5, 0.12)]],
}


def data_folder(run_dir: Path) -> Path:
    """The data folder a run was trained from, as its config.json records it."""
    return recorded_data_dir(runs.read_config(run_dir), run_dir / runs.CONFIG_FILE)


def median_ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 3)


def python_times(model: LiteModel, pixels: np.ndarray) -> float:
    """Median ms of one Python LiteRT call on one image."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        model(pixels[np.newaxis])
        times.append(time.perf_counter() - start)
    return median_ms(times)


def page_model_ms(page, model_path: str, pixels: np.ndarray) -> float:
    """Median ms of one LiteRT.js run of the page's model file on one image, in the page."""
    return page.evaluate("""async ([path, values, shape, repeats]) => {
        const {loadModel, run} = await import('./runtime.js');
        const model = await loadModel(path);
        const pixels = Uint8Array.from(values);
        await run(model, pixels, shape);  // the first run allocates
        const times = [];
        for (let i = 0; i < repeats; i++) {
            const start = performance.now();
            await run(model, pixels, shape);
            times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        return (times[(repeats - 1) >> 1] + times[repeats >> 1]) / 2;
    }""", [model_path, pixels.ravel().tolist(), list(pixels.shape), REPEATS])


def read_bytes(page, path: Path) -> dict:
    return page.evaluate("""async ([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const start = performance.now();
        const answer = await digitsPage.read.readFile(new Blob([bytes]), name);
        return {text: answer.text, ms: performance.now() - start, pixels: Array.from(answer.pixels.data)};
    }""", [base64.b64encode(path.read_bytes()).decode(), path.name])


@entry_point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, action="append", required=True)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--digits", type=int, default=1000, help="MNIST test digits painted into the canvas")
    parser.add_argument("--numbers", type=int, default=None, help="svhn-numbers test pictures (default: all)")
    parser.add_argument("--screenshots", type=Path, help="folder for the four screenshots")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args(argv)
    # The folder may be the user's (docs/ in this repository): a file of these names that the project did not
    # write is refused before any work, never replaced (harness/atomic.py).
    if args.out:
        atomic.check_replaceable(args.out, "another --out")
    for name in SCREENSHOTS if args.screenshots else ():
        atomic.check_replaceable(args.screenshots / name, "another --screenshots folder")

    from playwright.sync_api import sync_playwright

    from serve import listen
    from serving import webapp
    import threading

    scratch = Path(tempfile.mkdtemp())  # the page's folder and a blank photo, removed at the end
    site = scratch / "web"
    manifest = webapp.build(args.run_dir, site, args.data_dir)
    server = listen(site, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    entries = {entry["kind"]: entry for entry in manifest["models"]}
    run_of = {Path(run_dir).name: Path(run_dir) for run_dir in args.run_dir}
    results, outside, errors = {"date": time.strftime("%Y-%m-%d"), "repeats": REPEATS}, [], []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        results["browser"] = f"Chromium {browser.version}"

        def open_page(view: str, **options):
            context = browser.new_context(**options)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                          else (outside.append(route.request.url), route.abort()))
            page = context.new_page()
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            start = time.perf_counter()
            page.goto(f"{base}/index.html#{view}")
            page.evaluate("() => digitsPage.ready.then(() => true)")
            return page, time.perf_counter() - start

        page, seconds = open_page("read")
        loaded = page.evaluate("() => performance.getEntriesByType('resource')"
                               ".concat(performance.getEntriesByType('navigation'))"
                               ".reduce((sum, e) => sum + e.transferSize, 0)")
        results["first_load"] = {"bytes": loaded, "seconds_to_ready": round(seconds, 2)}

        if "reader" in entries:
            entry = entries["reader"]
            run_dir = run_of[entry["name"]]
            runner = LiteModel(run_dir / runs.TFLITE_FLOAT32_FILE)
            data_dir = args.data_dir or data_folder(run_dir)
            pictures = sorted((data_dir / "svhn-numbers" / "test").glob("*.png"))[:args.numbers]
            same_number = same_pixels = 0
            differ, read_ms = [], []
            for path in pictures:
                got = read_bytes(page, path)
                pixels, answer = kinds.READER.answer(runner, read_image(path))
                same_number += got["text"] == answer["number"]
                same_pixels += np.array_equal(np.array(got["pixels"], np.uint8), pixels.ravel())
                read_ms.append(got["ms"] / 1000)
                if got["text"] != answer["number"]:
                    differ.append([path.name, got["text"], answer["number"]])
            blank = scratch / "blank.png"
            Image.new("RGB", (300, 100), (200, 200, 200)).save(blank)
            page.set_input_files("#photo", str(blank))
            page.wait_for_function("() => document.querySelector('#read-message').textContent !== 'Reading…'")
            results["blank_photo"] = {"page": page.text_content("#number"), "message": page.text_content(
                "#read-message"), "predict_py": kinds.READER.answer(runner, read_image(blank))[1]["number"]}
            shape = tuple(entry["input"][side] for side in ("height", "width", "channels"))
            sample = kinds.READER.answer(runner, read_image(pictures[0]))[0]
            results["numbers"] = {
                "pictures": len(pictures), "same_number": same_number, "same_input_pixels": same_pixels,
                "differ": differ, "page_whole_reading_ms": median_ms(read_ms),
                "page_model_ms": round(page_model_ms(page, entry["model"], sample), 3),
                "python_litert_model_ms": python_times(runner, sample), "input": list(shape)}

        if "classifier" in entries:
            entry = entries["classifier"]
            run_dir = run_of[entry["name"]]
            runner = LiteModel(run_dir / runs.TFLITE_FLOAT32_FILE)
            page.goto(f"{base}/index.html#draw")
            page.evaluate("() => digitsPage.ready.then(() => true)")
            digits = load_dataset("mnist", args.data_dir or data_folder(run_dir))
            originals = digits.x_test[:args.digits]
            expected = runner(originals)["digit"]
            same_digit, largest, mean = 0, [], []
            for original, digit in zip(originals, expected):
                got = page.evaluate("async (values) => { const r = await digitsPage.draw.paint(values); "
                                    "return [r.digit, Array.from(r.pixels.data)]; }", original.ravel().tolist())
                same_digit += got[0] == str(digit)
                difference = np.abs(np.array(got[1], int) - original.ravel().astype(int))
                largest.append(int(difference.max()))
                mean.append(float(difference.mean()))
            results["digits"] = {
                "digits": len(originals), "same_digit": same_digit,
                "largest_grey_difference": {"median": statistics.median(largest),
                                            "p90": float(np.percentile(largest, 90)), "max": max(largest)},
                "mean_grey_difference": round(statistics.mean(mean), 2),
                "page_model_ms": round(page_model_ms(page, entry["model"], originals[0]), 3),
                "page_layers_model_ms": round(page_model_ms(page, entry["layers_model"], originals[0]), 3),
                "python_litert_model_ms": python_times(runner, originals[0])}
            # Strokes by mouse: latency from each pointer event to the page updated, and the digits read.
            drawn, box = {}, page.locator("#canvas").bounding_box()
            page.evaluate("() => { digitsPage.draw.latencies.length = 0; }")
            for digit, strokes in DRAWN.items():
                page.click("#clear")
                for points in strokes:
                    where = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
                    page.mouse.move(*where[0])
                    page.mouse.down()
                    for point in where[1:]:
                        page.mouse.move(*point, steps=8)
                    page.mouse.up()
                page.wait_for_function("() => !digitsPage.draw.busy && digitsPage.draw.pending === null")
                drawn[digit] = page.text_content("#digit")
            latencies = page.evaluate("() => digitsPage.draw.latencies")
            results["drawn"] = drawn
            results["stroke_to_update_ms"] = {"updates": len(latencies),
                                              "median": round(statistics.median(latencies), 1),
                                              "p90": round(float(np.percentile(latencies, 90)), 1),
                                              "max": round(max(latencies), 1)}

        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
            picture = None
            if "reader" in entries:
                data_dir = args.data_dir or data_folder(run_of[entries["reader"]["name"]])
                picture = data_dir / "svhn-numbers" / "test" / SHOWN_NUMBER
            sizes = (("desktop", {"width": 1280, "height": 800}), ("phone", {"width": 390, "height": 844}))
            for size, viewport in sizes:
                options = {"viewport": viewport}
                if size == "phone":
                    options.update(device_scale_factor=2, is_mobile=True, has_touch=True)
                shot, _ = open_page("read", **options)
                if picture is not None:
                    shot.set_input_files("#photo", str(picture))
                    shot.wait_for_function("() => document.querySelector('#number').textContent !== ''")
                atomic.write_bytes(args.screenshots / f"web_read_{size}.png",
                                   shot.screenshot(full_page=size == "desktop"), "another --screenshots folder")
                shot.goto(f"{base}/index.html#draw")
                shot.evaluate("() => digitsPage.ready.then(() => true)")
                box = shot.locator("#canvas").bounding_box()
                for points in DRAWN["7"]:
                    shot.mouse.move(box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
                    shot.mouse.down()
                    for x, y in points[1:]:
                        shot.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
                    shot.mouse.up()
                shot.wait_for_function("() => !digitsPage.draw.busy && digitsPage.draw.pending === null")
                shot.locator(".maps canvas.active[data-layer=conv2]").first.click()  # a stroke detector
                shot.evaluate("() => window.scrollTo(0, 0)")
                atomic.write_bytes(args.screenshots / f"web_draw_{size}.png",
                                   shot.screenshot(full_page=size == "desktop"), "another --screenshots folder")
        browser.close()
    results["requests_to_other_hosts"] = len(outside)
    results["console_errors"] = errors
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        atomic.write_json(args.out, results, "another --out")
    shutil.rmtree(scratch)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
