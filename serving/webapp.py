"""The web page's folder: trained runs made into a static, offline-capable app (serve.py builds and serves it).

    from serving import webapp
    webapp.build([Path("runs/convnet_mnist"), Path("runs/reader_svhn-numbers")], Path("runs/web"))

The folder holds everything the page needs and nothing from elsewhere, so any
static host serves it (the photo never leaves the device):

    index.html, style.css, *.js        the page (serving/web/, plain ES modules, no bundler)
    app.webmanifest, icon-*.png        what lets a phone add it to its home screen
    sw.js, precache.js                 the service worker and its list of files, for offline use
    manifest.json                      every model the page can run: kind, input, classes, layers (strict JSON)
    models/<run>/model.tflite          the run's serving signature as float32 LiteRT, for one image at a time
    models/<run>/layers.tflite         a classifier's: its answer and every drawn layer's maps (the draw view)
    models/<run>/<layer>.png           a classifier's survey: each unit's top patches over the training images
    vendor/litertjs/...                LiteRT.js, the one runtime variant the page loads (from node_modules)

The page reads every size, name and threshold from manifest.json; nothing about a
model is written into the JavaScript.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from data import photos
from harness import atomic, kinds, runs
from harness.errors import UserError
from serving import answers

SOURCE = Path(__file__).parent / "web"  # the page's own files, copied as they are
NODE_MODULES = Path(__file__).parent.parent / "node_modules"  # npm ci installs LiteRT.js here (package.json)
# LiteRT.js: the ES module, the helper it imports by bare name (index.html's import map), and one WebAssembly
# build. The "compat" build needs no relaxed-SIMD support, so it runs in every current browser, Safari on an
# iPhone included; the models are small enough that the faster builds would save a fraction of a millisecond.
RUNTIME_FILES = {
    "@litertjs/core/dist/index.js": "vendor/litertjs/core/index.js",
    "@litertjs/wasm-utils/dist/index.js": "vendor/litertjs/wasm-utils/index.js",
    "@litertjs/core/wasm/litert_wasm_compat_internal.js": "vendor/litertjs/wasm/litert_wasm_compat_internal.js",
    "@litertjs/core/wasm/litert_wasm_compat_internal.wasm": "vendor/litertjs/wasm/litert_wasm_compat_internal.wasm",
}
RUNTIME_SCRIPT = "vendor/litertjs/wasm/litert_wasm_compat_internal.js"
MODELS_DIR = "models"
MANIFEST = "manifest.json"
PRECACHE = "precache.js"
ICON_SIZES = (192, 512)  # pixels: the sizes browsers ask of a web app's icons
SURVEY_IMAGES = 10_000  # training images scanned for each unit's top patches (evenly spread; all if fewer)
SURVEY_TOP = 8  # patches shown per unit


def build(run_dirs: list[Path], out: Path, data_dir: Path | None = None, survey_images: int = SURVEY_IMAGES) -> dict:
    """Write the page's folder for these runs at `out` (replaced whole; refused unless the project wrote it).

    Returns the manifest. data_dir replaces the runs' recorded data folder (their training images are
    surveyed). UserError for a run that cannot be opened, two runs of the same name, or no LiteRT.js.
    """
    names = [Path(run_dir).name for run_dir in run_dirs]
    if len(set(names)) != len(names):
        raise UserError(f"two --run-dir folders have the same name ({', '.join(names)}); the page names models "
                        f"by their folder: copy one under another name.")
    missing = [source for source in RUNTIME_FILES if not (NODE_MODULES / source).is_file()]
    if missing:
        raise UserError(f"LiteRT.js is not installed ({NODE_MODULES / missing[0]} is missing); run npm ci in "
                        f"{NODE_MODULES.parent} first.")
    with atomic.replacing_folder(out, "another --out") as folder:  # refuses a folder not ours, before any work
        models = [add_model(Path(run_dir), folder, data_dir, survey_images) for run_dir in run_dirs]
        manifest = {"runtime": RUNTIME_SCRIPT, "photo": photo_settings(), "models": models}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=False) + "\n")
        copy_page(folder)
        write_precache(folder)
    return manifest


def photo_settings() -> dict:
    """How the page checks and prepares a photo: predict.py's limits and settings (data/photos.py,
    serving/answers.py), so both read a photo alike."""
    return {"max_pixels": photos.MAX_PIXELS, "min_side": photos.MIN_SIDE, "digit_share": photos.DIGIT_SHARE,
            "ink_floor": photos.INK_FLOOR, "top": answers.TOP,
            "zoom": {"span": answers.ZOOM_SPAN, "margin": answers.ZOOM_MARGIN, "rounds": answers.ZOOM_ROUNDS,
                     "min_width": answers.MIN_ZOOM_WIDTH, "lone_digit_width": answers.LONE_DIGIT_WIDTH}}


def add_model(run_dir: Path, folder: Path, data_dir: Path | None, survey_images: int) -> dict:
    """Export one run's LiteRT file for one image into folder/models/<run>/ (a classifier: with its layers file
    and survey); its entry in the manifest."""
    from serving.export import page_flatbuffers

    run = runs.open_run(run_dir, data_dir)
    home = Path(MODELS_DIR) / run.folder.name
    (folder / home).mkdir(parents=True)
    layers = shown_layers(run.model) if run.kind is kinds.CLASSIFIER else []
    for name, flatbuffer in page_flatbuffers(run.model, run.kind, [layer.response for layer in layers]).items():
        (folder / home / f"{name}.tflite").write_bytes(flatbuffer)
    height, width, channels = run.model.input_shape[1:]
    entry = {"name": run.folder.name, "kind": run.kind.name, "dataset": run.dataset,
             "model": str(home / "model.tflite"),
             "input": {"height": height, "width": width, "channels": channels,
                       "colour": "bright ink on black" if channels == 1 else "RGB"}}
    accuracy = test_accuracy(run.folder)
    if accuracy is not None:
        entry["test_accuracy"] = accuracy
    if run.kind is kinds.READER:
        columns = run.model.output_shape[1]
        entry.update(digits=[str(digit) for digit in range(run.model.output_shape[2] - 1)], columns=columns,
                     column_width=width / columns)
        return entry
    entry["classes"] = [str(digit) for digit in range(run.model.output_shape[1])]
    entry["layers_model"] = str(home / "layers.tflite")
    entry["layers"] = survey(run, layers, folder, home, survey_images)
    return entry


def test_accuracy(run_dir: Path) -> float | None:
    """The run's test accuracy as train.py recorded it (metrics.json), if it did."""
    try:
        value = runs.read_json(run_dir / runs.METRICS_FILE).get("test_accuracy")
    except UserError:
        return None
    return value if isinstance(value, float) else None


def shown_layers(model) -> list:
    """The layers the draw view shows: those visualize.py draws whose output keeps an image (convolutions; a
    dense layer's units have no map), as analysis.introspection.survey describes them."""
    from analysis.introspection.survey import describe, drawn_paths

    return [layer for layer in (describe(model, path) for path in drawn_paths(model)) if layer.spatial]


def survey(run, layers: list, folder: Path, home: Path, survey_images: int) -> list[dict]:
    """Each shown layer surveyed on the run's training images (visualize.py's survey): per unit its SURVEY_TOP
    top patches, each the unit's true receptive field, in one PNG per layer (a row per unit); the layers'
    entries in the manifest."""
    from analysis.introspection.survey import scan_images, top_crops, typical_content
    from serving.export import representative_sample

    model = run.model
    images = representative_sample(run.training_images(), survey_images)
    scan = scan_images(model, images, [layer.response for layer in layers], k=SURVEY_TOP)
    entries = []
    for number, layer in enumerate(layers):
        patches, values = top_crops(images, layer, scan.top[layer.response], SURVEY_TOP)
        units, top, rows, cols, channels = patches.shape
        # (U, k, s, t, C) -> one picture: unit u's patches side by side in row u.
        sprite = (np.nan_to_num(patches) * 255).round().astype(np.uint8).transpose(0, 2, 1, 3, 4)
        sprite = sprite.reshape(units * rows, top * cols, channels)
        picture = home / f"{layer.file_stem}.png"
        Image.fromarray(sprite[..., 0] if channels == 1 else sprite).save(folder / picture)
        shape = model.get_layer(layer.response).output.shape
        entries.append({
            "name": layer.path, "output": layer.response, "units": layer.units, "height": shape[1],
            "width": shape[2], "detects": typical_content(layer, model.input_shape[1], number == len(layers) - 1),
            "field": {"height": layer.field.size, "width": layer.field.width, "stride": layer.field.stride,
                      "offset": layer.field.offset},
            "survey": {"picture": str(picture), "top": top, "images": len(images),
                       "values": np.round(np.nan_to_num(values, nan=-1.0), 3).tolist()}})
    return entries


def copy_page(folder: Path) -> None:
    """The page's own files, LiteRT.js and the home-screen icons into folder."""
    for source in sorted(SOURCE.iterdir()):
        if source.is_file():
            shutil.copyfile(source, folder / source.name)
    for source, target in RUNTIME_FILES.items():
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NODE_MODULES / source, folder / target)
    for size in ICON_SIZES:
        icon(size).save(folder / f"icon-{size}.png")


def icon(size: int) -> Image.Image:
    """A `size`-pixel square icon: a bright seven-segment 7 on the page's dark blue."""
    from data.synthetic import draw_digit

    ink = draw_digit(7, size * 3 // 4, np.random.default_rng(0))  # (s, s) float in 0..1
    background, foreground = np.array([16, 32, 64.0]), np.array([255, 214, 0.0])
    picture = np.tile(background, (size, size, 1))
    start = (size - ink.shape[0]) // 2
    area = picture[start:start + ink.shape[0], start:start + ink.shape[1]]
    area[:] = area * (1 - ink[..., None]) + foreground * ink[..., None]
    return Image.fromarray(picture.round().astype(np.uint8))


def write_precache(folder: Path) -> None:
    """precache.js: every file the page may need offline, and a version that changes with any of their bytes,
    which makes browsers install the new service worker (they compare the scripts it imports byte for byte)."""
    files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    version = hashlib.sha256()
    for name in files:
        version.update(name.encode() + b"\0" + (folder / name).read_bytes())
    content = {"version": version.hexdigest()[:16], "files": sorted(["./", PRECACHE, *files])}
    (folder / PRECACHE).write_text(f"self.PRECACHE = {json.dumps(content, indent=1)};\n")
