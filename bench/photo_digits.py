"""Photo-like MNIST test digits through data/photos.py's `prepare` and a trained model: accuracy per scene.

    python bench/photo_digits.py                                  # runs/convnet_mnist, 200 digits per scene
    python bench/photo_digits.py --run-dir /tmp/convnet_mnist --count 500 --seed 1
    git show HEAD:data/photos.py > /tmp/old_photos.py
    python bench/photo_digits.py --baseline /tmp/old_photos.py    # also score another photos.py, side by side
    python bench/photo_digits.py --examples /tmp/scenes           # also save each scene's first photos as PNG

Every scene photographs the same MNIST test digits (chosen by --seed): the
digit is scaled, turned and placed on a canvas of phone-like size, printed in
ink on paper (or a card, or a board) whose colours, texture, lighting, focus,
sensor noise and compression are drawn per photo from the ranges in SCENES.
Each photo goes through `prepare` (as predict.py does) and the model; a photo
that `prepare` refuses counts as wrong. For reference the table also gives the
model's accuracy on the same digits as stored (28x28, no preparation) and on
those 28x28 digits passed through `prepare`.

tests/test_photos.py draws its photos with `photograph` from this file.
"""

import importlib.util
import os
import sys
import time
from dataclasses import dataclass, replace
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: the project's packages sit at the root
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's start-up chatter

from data.photos import PhotoError, prepare

SIDES = (200, 600)  # pixels: each side of a photo is drawn from this range, phone-like after a crop
MNIST_BOX = 20  # pixels of a stored MNIST digit's longer side (in its 28x28 field)


@dataclass(frozen=True)
class Scene:
    """How one kind of photo is drawn; each range is sampled per photo."""

    light_ink: bool = False  # chalk on a dark board instead of pen on light paper
    card: bool = False  # the digit is on a white card lying on a darker, coloured, textured surface
    gradient: bool = False  # the light falls off linearly across the picture
    shadow: bool = False  # a soft-edged shadow covers part of the picture, the digit included
    jpeg_quality: int | None = None  # None: the photo is kept as decoded pixels (a PNG)
    max_rotation: float = 0.0  # degrees either way
    offset: tuple[float, float] = (0.0, 0.0)  # digit centre's distance from the picture centre, share of the side
    digit_share: tuple[float, float] = (0.45, 0.75)  # digit's height (its MNIST box) over the shorter side


PAPER = Scene()
CARD = Scene(card=True, digit_share=(0.28, 0.42), max_rotation=3.0)
SCENES = {
    "dark_on_light": PAPER,
    "light_on_dark": replace(PAPER, light_ink=True),
    "card_on_surface": CARD,
    "lighting_gradient": replace(PAPER, gradient=True),
    "shadow": replace(PAPER, shadow=True),
    "jpeg_40": replace(PAPER, jpeg_quality=40),
    "rotated": replace(PAPER, max_rotation=10.0),
    "off_centre": replace(PAPER, offset=(0.12, 0.25), digit_share=(0.3, 0.45)),
    "wide_margins": replace(PAPER, digit_share=(0.12, 0.22)),
    "card_gradient_jpeg": replace(CARD, gradient=True, jpeg_quality=40, max_rotation=10.0),
    "card_shadow_off_centre": replace(CARD, shadow=True, offset=(0.05, 0.15), digit_share=(0.25, 0.35)),
    "chalk_shadow_jpeg": replace(PAPER, light_ink=True, shadow=True, jpeg_quality=40, max_rotation=10.0,
                                 digit_share=(0.2, 0.5)),
    "everything": replace(CARD, gradient=True, shadow=True, jpeg_quality=40, max_rotation=10.0,
                          offset=(0.05, 0.15), digit_share=(0.2, 0.32)),
}


def upright_ink(digit: np.ndarray, scale: float, angle: float) -> np.ndarray:
    """A stored MNIST digit (28, 28) uint8 white on black -> float ink cover in 0..1, scaled and turned.

    Bicubic enlargement blurs the strokes' edges over several pixels; a mild contrast stretch makes them
    as crisp as a pen's again.
    """
    side = max(1, round(28 * scale))
    big = Image.fromarray(digit.astype(np.float32) / 255, "F").resize((side, side), Image.Resampling.BICUBIC)
    big = big.rotate(angle, Image.Resampling.BICUBIC, expand=True)
    return np.clip(1.5 * np.asarray(big) - 0.25, 0, 1)


def paste(canvas: np.ndarray, patch: np.ndarray, centre_row: float, centre_col: float) -> None:
    """Add `patch` into `canvas` (both 2-D) with its centre at the given point; parts outside are cut off."""
    top = round(centre_row - patch.shape[0] / 2)
    left = round(centre_col - patch.shape[1] / 2)
    rows = slice(max(top, 0), min(top + patch.shape[0], canvas.shape[0]))
    cols = slice(max(left, 0), min(left + patch.shape[1], canvas.shape[1]))
    canvas[rows, cols] += patch[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left]


def rectangle(shape, centre, half_sides, angle: float) -> np.ndarray:
    """Cover (H, W) in 0..1 of a turned rectangle, edges antialiased over one pixel."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    turn = np.deg2rad(angle)
    along = (cols - centre[1]) * np.cos(turn) - (rows - centre[0]) * np.sin(turn)
    across = (cols - centre[1]) * np.sin(turn) + (rows - centre[0]) * np.cos(turn)
    inside = np.minimum(half_sides[1] - np.abs(along), half_sides[0] - np.abs(across))
    return np.clip(inside + 0.5, 0, 1)


def ramp(shape, rng, low: float) -> np.ndarray:
    """(H, W) factor rising linearly from `low` at one side to 1 at the other, in a random direction."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    turn = rng.uniform(0, 2 * np.pi)
    along = np.cos(turn) * cols + np.sin(turn) * rows
    along = (along - along.min()) / np.ptp(along)
    return low + (1 - low) * along


def soft_shadow(shape, rng) -> np.ndarray:
    """(H, W) factor: 1 in the light, 0.45-0.65 in a shadow whose straight, blurred edge crosses the middle."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    short = min(shape)
    turn = rng.uniform(0, 2 * np.pi)
    # Signed distance (pixels) to a line through a point near the centre; the edge blurs over 3-12 % of the side.
    point = np.array(shape) / 2 + rng.uniform(-0.2, 0.2, 2) * short
    distance = np.cos(turn) * (cols - point[1]) + np.sin(turn) * (rows - point[0])
    light = 1 / (1 + np.exp(-distance / (rng.uniform(0.03, 0.12) * short / 4)))
    return 1 - rng.uniform(0.35, 0.55) * (1 - light)


def textured_surface(shape, rng) -> np.ndarray:
    """(H, W, 3) reflectance of a table or floor: a dark or coloured base, blotches and wood-like grain."""
    base = rng.uniform(0.08, 0.55, 3)
    blotches = ndimage.gaussian_filter(rng.normal(0, 1, shape), rng.uniform(2, 8))
    blotches *= rng.uniform(0.1, 0.25) / (blotches.std() + 1e-9)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    turn = rng.uniform(0, np.pi)
    period = rng.uniform(6, 30)  # pixels between grain lines
    grain = np.sin(2 * np.pi * (np.cos(turn) * cols + np.sin(turn) * rows) / period + 3 * blotches)
    texture = 1 + blotches + rng.uniform(0, 0.15) * grain
    return np.clip(base * texture[..., None], 0, 1)


def photograph(digit: np.ndarray, scene: Scene, rng: np.random.Generator) -> Image.Image:
    """A stored MNIST digit (28, 28) uint8 -> an RGB PIL photo of it written as `scene` says."""
    height, width = (int(side) for side in rng.integers(SIDES[0], SIDES[1] + 1, 2))
    shape, short = (height, width), min(height, width)
    scale = rng.uniform(*scene.digit_share) * short / MNIST_BOX
    angle = rng.uniform(-scene.max_rotation, scene.max_rotation)
    patch = upright_ink(digit, scale, angle)
    # The digit's centre: moved off the picture's centre by a share of the side, each way at random.
    centre = np.array(shape) / 2
    if scene.offset[1] > 0:
        distance = rng.uniform(*scene.offset) * short
        turn = rng.uniform(0, 2 * np.pi)
        centre += distance * np.array([np.sin(turn), np.cos(turn)])
    # ... but kept inside the picture, so the photo still shows the whole digit.
    margin = 28 * scale / 2
    centre = np.clip(centre, margin, np.array(shape) - margin)
    ink = np.zeros(shape, np.float32)
    paste(ink, patch, *centre)
    ink = np.clip(ink, 0, 1)[..., None]

    tint = rng.uniform(-0.04, 0.04, 3)
    if scene.light_ink:
        background = rng.uniform(0.04, 0.25) + rng.uniform(0, 0.06, 3)  # a black or green board
        colour = rng.uniform(0.65, 0.95) + tint
    else:
        background = rng.uniform(0.7, 0.95) + tint  # white or greyish paper
        colour = rng.uniform(0.03, 0.3) + rng.choice([0, 0.25]) * np.array([0, 0.3, 1])  # black, grey or blue ink
    reflectance = background + ink * (colour - background)  # (H, W, 3)
    if scene.card:
        card_half = 14 * scale * rng.uniform(1.05, 1.45, 2)  # the card's half-sides around the digit's MNIST box
        card_centre = centre + rng.uniform(-0.1, 0.1, 2) * card_half
        cover = rectangle(shape, card_centre, card_half, angle + rng.uniform(-4, 4))
        # The card casts a soft shadow on the surface, a few pixels down and to the side.
        drop = ndimage.shift(ndimage.gaussian_filter(cover, 0.01 * short + 1), rng.uniform(0, 0.02, 2) * short)
        surface = textured_surface(shape, rng) * (1 - rng.uniform(0.2, 0.5) * drop)[..., None]
        reflectance = surface + cover[..., None] * (reflectance - surface)

    light = np.full(shape, rng.uniform(0.8, 1.0) * 255, np.float32)
    if scene.gradient:
        light *= ramp(shape, rng, rng.uniform(0.35, 0.6))
    if scene.shadow:
        light *= soft_shadow(shape, rng)
    pixels = reflectance * light[..., None]
    pixels = ndimage.gaussian_filter(pixels, (rng.uniform(0.3, 1.0),) * 2 + (0,))  # focus
    pixels += rng.normal(0, rng.uniform(1, 4), pixels.shape)  # sensor noise, grey levels
    photo = Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), "RGB")
    if scene.jpeg_quality is not None:
        encoded = BytesIO()
        photo.save(encoded, "JPEG", quality=scene.jpeg_quality)
        photo = Image.open(encoded)
        photo.load()
    return photo


@dataclass(frozen=True)
class BenchConfig:
    model_file: Path
    data_dir: Path
    count: int  # digits per scene
    seed: int
    scenes: tuple[str, ...]
    baseline: Path | None  # another photos.py whose `prepare` is scored beside the current one
    examples: Path | None  # folder for the first photos of each scene and what prepare made of them


EXAMPLES = 6  # photos saved per scene with --examples


def parse_args(argv: list[str] | None) -> BenchConfig:
    from data import default_data_dir
    from harness import runs
    from harness.cli import ArgumentParser, positive_int, seed_value

    parser = ArgumentParser(description="Accuracy of a digit model on photo-like MNIST test digits, per scene.")
    parser.add_argument("--run-dir", type=Path, default=runs.default_run_dir("convnet", "mnist"),
                        help="run directory of a 28x28x1 model written by train.py")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the MNIST files "
                        "(env DIGITS_DATA_DIR, else the Keras cache)")
    parser.add_argument("--count", type=positive_int, default=200, help="digits per scene")
    parser.add_argument("--seed", type=seed_value, default=0, help="chooses the digits and draws the scenes")
    parser.add_argument("--scenes", nargs="+", choices=list(SCENES), default=list(SCENES), metavar="SCENE",
                        help=f"scenes to draw: {', '.join(SCENES)}")
    parser.add_argument("--baseline", type=Path, help="a photos.py file (e.g. from git show) scored beside ours")
    parser.add_argument("--examples", type=Path, help="save each scene's first photos and their preparation here")
    args = parser.parse_args(argv)
    return BenchConfig(model_file=args.run_dir / runs.MODEL_FILE, data_dir=args.data_dir or default_data_dir(),
                       count=args.count, seed=args.seed, scenes=tuple(args.scenes), baseline=args.baseline,
                       examples=args.examples)


def load_prepare(path: Path):
    """`prepare` of the photos.py at `path`, imported under its own name beside ours."""
    from harness.errors import UserError

    spec = importlib.util.spec_from_file_location("baseline_photos", path)
    if spec is None or not Path(path).is_file():
        raise UserError(f"no photos.py at {path}; write one with git show HEAD:data/photos.py > FILE.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.prepare, module.PhotoError


def classify(model, pixels: np.ndarray) -> np.ndarray:
    """Predicted digits (N,) for uint8 images (N, 28, 28, 1), in batches."""
    from data.pipeline import normalise

    return np.concatenate([np.asarray(model(normalise(pixels[start:start + 500]), training=False)).argmax(1)
                           for start in range(0, len(pixels), 500)])


def prepared(photos, prepare_fn, error_type) -> tuple[np.ndarray, np.ndarray, float]:
    """(pixels (N, 28, 28, 1) uint8, refused (N,) bool, milliseconds per photo) of `prepare_fn` on the photos."""
    pixels = np.zeros((len(photos), 28, 28, 1), np.uint8)
    refused = np.zeros(len(photos), bool)
    start = time.perf_counter()
    for index, photo in enumerate(photos):
        try:
            pixels[index] = prepare_fn(photo, (28, 28, 1))
        except error_type:
            refused[index] = True
    return pixels, refused, 1000 * (time.perf_counter() - start) / len(photos)


def run(config: BenchConfig) -> str:
    """The table: one row per scene, accuracy (%) with our prepare and the baseline's, and ms per photo."""
    from data.mnist import load_mnist
    from harness import model_files

    model = model_files.load_model(config.model_file)
    mnist = load_mnist(config.data_dir)
    chosen = np.random.default_rng(config.seed).choice(len(mnist.y_test), config.count, replace=False)
    digits, labels = mnist.x_test[chosen, ..., 0], mnist.y_test[chosen]
    preparers = {"new": (prepare, PhotoError)}
    if config.baseline is not None:
        preparers["baseline"] = load_prepare(config.baseline)

    stored = (classify(model, digits[..., None]) == labels).mean()
    rows = [("stored 28x28 (no prepare)", {name: stored for name in preparers}, {})]
    scenes = [("stored 28x28 through prepare", None)] + [(name, SCENES[name]) for name in config.scenes]
    totals = {name: [] for name in preparers}
    for index, (name, scene) in enumerate(scenes):
        rng = np.random.default_rng([config.seed, index])
        if scene is None:
            photos = [Image.fromarray(digit) for digit in digits]
        else:
            photos = [photograph(digit, scene, rng) for digit in digits]
        scores, times = {}, {}
        for label, (prepare_fn, error_type) in preparers.items():
            pixels, refused, times[label] = prepared(photos, prepare_fn, error_type)
            right = (classify(model, pixels) == labels) & ~refused
            scores[label] = right.mean()
            if scene is not None:
                totals[label].append(right)
            if config.examples is not None and label == "new":
                save_examples(config.examples, name, photos, pixels, labels, right)
        rows.append((name, scores, times))
        print(f"{name}: " + ", ".join(f"{label} {100 * score:.1f} %" for label, score in scores.items()),
              file=sys.stderr, flush=True)
    rows.append(("all photo scenes", {label: np.concatenate(right).mean() for label, right in totals.items()}, {}))

    header = f"{'scene':<30}" + "".join(f"{label + ' %':>12}" for label in preparers) + f"{'new ms/photo':>14}"
    lines = [header, "-" * len(header)]
    for name, scores, times in rows:
        lines.append(f"{name:<30}" + "".join(f"{100 * scores[label]:>12.1f}" for label in preparers)
                     + (f"{times['new']:>14.1f}" if times else ""))
    return "\n".join(lines)


def save_examples(folder: Path, scene: str, photos, pixels, labels, right) -> None:
    """The scene's first photos as PNG, each with the 28x28 the model saw (enlarged) beside it.

    The folder may be the user's: a file of one of these names that the project did not write (harness/atomic.py
    keeps the record) is refused, not replaced.
    """
    import io

    from harness import atomic

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(min(EXAMPLES, len(photos))):
        photo = photos[index].convert("RGB")
        seen = Image.fromarray(pixels[index, ..., 0]).resize((photo.height, photo.height), Image.Resampling.NEAREST)
        sheet = Image.new("RGB", (photo.width + photo.height, photo.height))
        sheet.paste(photo, (0, 0))
        sheet.paste(seen.convert("RGB"), (photo.width, 0))
        verdict = "right" if right[index] else "wrong"
        png = io.BytesIO()
        sheet.save(png, format="PNG")
        atomic.write_bytes(folder / f"{scene}_{index}_digit{labels[index]}_{verdict}.png", png.getvalue(),
                           elsewhere="another --examples folder")


def main(argv: list[str] | None = None) -> int:
    # Imports Keras: only when the benchmark runs, not when a test draws photos.
    from harness.cli import entry_point

    @entry_point
    def benchmark(arguments: list[str] | None) -> int:
        print(run(parse_args(arguments)))
        return 0

    return benchmark(argv)


if __name__ == "__main__":
    sys.exit(main())
