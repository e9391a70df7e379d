"""Time to accuracy: our recipes against the standard Keras MNIST recipes, in one invocation.

    python bench/speed.py                                   # seeds 0-4, all four recipes, then throughput
    python bench/speed.py --seeds 0 --recipes keras-convnet ours-convnet
    python bench/speed.py --throughput-only

Recipes (each run in a fresh process, on real MNIST from --data-dir):
- keras-convnet: keras.io "Simple MNIST convnet", written from its description:
  Conv2D(32, 3x3, relu) -> MaxPool(2) -> Conv2D(64, 3x3, relu) -> MaxPool(2) ->
  Flatten -> Dropout(0.5) -> Dense(10, softmax); Adam at its defaults, batch 128,
  15 epochs, 10 % of the training set held out (validation_split=0.1).
- keras-mlp: the Keras MLP recipe: 784-512-512-10, ReLU, dropout 0.2, RMSprop,
  batch 128, 20 epochs, the test set as validation data (as its script does).
- ours-convnet: `python train.py --seed S` (the defaults users get).
- ours-convnet-keras-bn: the same command, with the convolutions' batch norms
  Keras's own keras.layers.BatchNormalization instead of FusedBatchNormalization
  (train.py run in-process by this script, its convnet built with batch_norm=...;
  no option of train.py's); its ratio is to ours-convnet.
- ours-mlp: `python train.py --model mlp --seed S`.

Seeds are interleaved (seed 0 of every recipe, then seed 1, ...) so that a slow
spell of a shared machine falls on all recipes alike. The time compared is the
wall-clock time of model.fit (per-epoch validation included), the same for every
recipe; the whole command's time of our runs is shown beside it. Ratios are of
medians over seeds: ours / baseline.

Each trained model is also measured on the test split of the CVL writers, whom
MNIST never saw (cvl-digits.npz in --data-dir, brought to MNIST's convention by
data/cvl.py; the column shows "-" without that file): a recipe that gains on
MNIST's own test set by fitting MNIST's writers shows it there (docs/history.md,
2026-12-08).

Throughput (in process): training images/second of each of our models, and
inference images/second of its exported SavedModel (uint8 pixels in, batches of
1,000), for MNIST-shaped inputs and the convnet on 32x32x3; with the
multiply-accumulates per image that set the cost of a step, and the rate of the
input pipeline alone, to show whether input or compute sets the pace.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: the project's packages sit at the root
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hide TensorFlow's start-up chatter

from data import default_data_dir  # noqa: E402
from harness import atomic  # noqa: E402

RECIPES = ("keras-convnet", "ours-convnet", "keras-mlp", "ours-mlp", "ours-convnet-keras-bn")
DEFAULT_RECIPES = RECIPES[:4]
BASELINE_OF = {"ours-convnet": "keras-convnet", "ours-mlp": "keras-mlp", "ours-convnet-keras-bn": "ours-convnet"}
TRAIN_ARGUMENTS = {"ours-convnet": [], "ours-mlp": ["--model", "mlp"], "ours-convnet-keras-bn": []}
# Recipes that run train.py through this script (--train VARIANT), its convnet built otherwise.
TRAIN_VARIANTS = {"ours-convnet-keras-bn": "keras-bn"}


def keras_convnet(input_shape, num_classes):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(32, kernel_size=(3, 3), activation="relu")(inputs)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Conv2D(64, kernel_size=(3, 3), activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def keras_mlp(input_shape, num_classes):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs)
    for _ in range(2):
        x = layers.Dense(512, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def run_baseline(recipe: str, seed: int, data_dir: Path) -> dict:
    """Train a Keras recipe as its script does (float arrays, one-hot labels); fit time and test accuracy."""
    import keras

    from data import load_dataset

    digits = load_dataset("mnist", data_dir)
    x_train, x_test = digits.x_train.astype("float32") / 255, digits.x_test.astype("float32") / 255
    y_train, y_test = (keras.utils.to_categorical(y, digits.num_classes) for y in (digits.y_train, digits.y_test))
    keras.utils.set_random_seed(seed)
    if recipe == "keras-convnet":
        model, optimizer, epochs = keras_convnet(digits.input_shape, 10), "adam", 15
        fit_data = {"validation_split": 0.1}
    else:
        model, optimizer, epochs = keras_mlp(digits.input_shape, 10), keras.optimizers.RMSprop(), 20
        fit_data = {"validation_data": (x_test, y_test)}
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=epochs, verbose=0, **fit_data)
    train_seconds = time.perf_counter() - started
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    trained = len(x_train) - (int(len(x_train) * 0.1) if "validation_split" in fit_data else 0)
    return {"train_seconds": train_seconds, "test_accuracy": float(accuracy), "epochs": epochs,
            "train_images_per_second": epochs * trained / train_seconds,
            "other_writers_accuracy": other_writers_accuracy(model, data_dir)}


def run_ours(recipe: str, seed: int, data_dir: Path) -> dict:
    """`python train.py` with the recipe's arguments; its own metrics, plus the whole command's time."""
    import keras

    with tempfile.TemporaryDirectory() as scratch:
        program = ([__file__, "--train", TRAIN_VARIANTS[recipe]] if recipe in TRAIN_VARIANTS else ["train.py"])
        command = [sys.executable, *program, *TRAIN_ARGUMENTS[recipe], "--seed", str(seed),
                   "--data-dir", str(data_dir), "--run-dir", str(Path(scratch) / "run")]
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        command_seconds = time.perf_counter() - started
        metrics = json.loads((Path(scratch) / "run" / "metrics.json").read_text())
        model = keras.saving.load_model(Path(scratch) / "run" / "model.keras", compile=False)  # plain Keras
    return {**{key: metrics[key] for key in ("train_seconds", "test_accuracy", "epochs", "train_images_per_second")},
            "command_seconds": command_seconds, "other_writers_accuracy": other_writers_accuracy(model, data_dir)}


def other_writers_accuracy(model, data_dir: Path) -> float | None:
    """Share of the CVL test writers' digits the classifier `model` gets right, as evaluate.py counts them;
    None without cvl-digits.npz in data_dir."""
    from analysis.introspection.forward import model_outputs
    from data.cvl import FILE_NAME, load_cvl_digits

    if not (Path(data_dir) / FILE_NAME).is_file():
        return None
    digits = load_cvl_digits(data_dir)
    return float((model_outputs(model, digits.x_test).argmax(axis=1) == digits.y_test).mean())


def train_variant(variant: str, train_argv: list[str]) -> int:
    """train.py's main in this process, its convnet built with `variant`'s batch norm ("keras-bn": Keras's own)."""
    import functools
    from dataclasses import replace

    import train  # first: it imports Keras quietly
    import keras
    from models import MODELS
    from models.convnet import build_convnet

    assert variant == "keras-bn", variant
    build = functools.partial(build_convnet, batch_norm=keras.layers.BatchNormalization)
    MODELS["convnet"] = replace(MODELS["convnet"], build=build)  # the dict train.py reads
    return train.main(train_argv)


def run_one(recipe: str, seed: int, data_dir: Path) -> dict:
    """One recipe and seed in a fresh Python process, so no run inherits another's state."""
    command = [sys.executable, __file__, "--one", recipe, "--seed", str(seed), "--data-dir", str(data_dir)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def comparison_table(results: dict[str, list[dict]]) -> str:
    lines = ["| recipe | seeds | median train s | test accuracy: median (per seed) | "
             "CVL writers: median (per seed) | train img/s | median command s | ratio to baseline |",
             "|---|---|---|---|---|---|---|---|"]
    median_seconds = {recipe: statistics.median(run["train_seconds"] for run in runs_)
                      for recipe, runs_ in results.items()}
    for recipe, runs_ in results.items():
        accuracies = [run["test_accuracy"] for run in runs_]
        baseline = BASELINE_OF.get(recipe)
        ratio = "baseline" if baseline is None else f"- ({baseline} not run)"
        if baseline in median_seconds:
            share = median_seconds[recipe] / median_seconds[baseline]
            ratio = f"{share:.3f} (1/{1 / share:.1f})"
        command = (f"{statistics.median(run['command_seconds'] for run in runs_):.0f}"
                   if "command_seconds" in runs_[0] else "-")
        lines.append(
            f"| {recipe} | {len(runs_)} | {median_seconds[recipe]:.1f} | {median_and_each(accuracies)} | "
            f"{median_and_each([run.get('other_writers_accuracy') for run in runs_])} | "
            f"{statistics.median(run['train_images_per_second'] for run in runs_):.0f} | {command} | {ratio} |")
    return "\n".join(lines)


def median_and_each(accuracies: list[float | None]) -> str:
    """'98.40 % (98.40, 98.50, 98.30)' for shares right, in percent; '-' where any run has none."""
    if any(accuracy is None for accuracy in accuracies):
        return "-"
    return f"{100 * statistics.median(accuracies):.2f} % ({', '.join(f'{100 * a:.2f}' for a in accuracies)})"


def multiply_accumulates(model) -> int:
    """Multiply-accumulates of one image's forward pass through the model's Conv2D and Dense layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output.shape
            total += height * width * channels * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def throughput(repeats: int = 3, steps: int = 30) -> str:
    """Training and SavedModel inference images/second of our models (random pixels: speed does not depend on them)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from data.pipeline import batches, resolve_augment
    from models import MODELS
    from serving.export import SIGNATURE, export_saved_model
    from models.training import compile_for_training

    lines = ["| model | input | MMAC/image (forward) | input pipeline alone img/s | train img/s | "
             "SavedModel inference img/s |",
             "|---|---|---|---|---|---|"]
    cases = [("mlp", (28, 28, 1)), ("convnet", (28, 28, 1)), ("convnet", (32, 32, 3))]
    for name, shape in cases:
        recipe = MODELS[name]
        augment = resolve_augment(recipe.augment, shape[-1])
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (steps * recipe.batch_size, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, len(images)).astype(np.int32)
        keras.utils.set_random_seed(0)
        model = recipe.build(shape, 10)
        compile_for_training(model, recipe.learning_rate, 10 * steps)
        train_batches = batches(images, labels, recipe.batch_size, shuffle_seed=0, augment=augment).repeat()
        model.fit(train_batches, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
        # The pipeline by itself (gather, scale, augment): if it were near the training
        # rate, the input, not the model, would set the pace.
        started = time.perf_counter()
        for _ in train_batches.take(steps):
            pass
        pipeline_rate = steps * recipe.batch_size / (time.perf_counter() - started)
        train_rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            model.fit(train_batches, steps_per_epoch=steps, epochs=1, verbose=0)
            train_rates.append(steps * recipe.batch_size / (time.perf_counter() - started))
        with tempfile.TemporaryDirectory() as scratch:
            export_saved_model(model, Path(scratch) / "saved_model")
            serve = tf.saved_model.load(str(Path(scratch) / "saved_model")).signatures[SIGNATURE]
            batch = tf.constant(images[:1000])
            serve(pixels=batch)
            inference_rates = []
            for _ in range(repeats):
                started = time.perf_counter()
                serve(pixels=batch)["probabilities"].numpy()
                inference_rates.append(len(batch) / (time.perf_counter() - started))
        lines.append(f"| {name} | {'x'.join(map(str, shape))} | {multiply_accumulates(model) / 1e6:.2f} | "
                     f"{pipeline_rate:.0f} | {statistics.median(train_rates):.0f} | "
                     f"{statistics.median(inference_rates):.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--train"]:  # internal: train.py's own arguments follow the variant
        return train_variant(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", choices=RECIPES, default=list(DEFAULT_RECIPES),
                        help=f"default: {' '.join(DEFAULT_RECIPES)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--throughput-only", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--out", type=Path, help="also write every run's figures here as JSON")
    parser.add_argument("--one", choices=RECIPES, help=argparse.SUPPRESS)  # internal: one run, JSON on stdout
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        run = run_baseline if args.one.startswith("keras-") else run_ours
        print(json.dumps(run(args.one, args.seed, args.data_dir)))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results: dict[str, list[dict]] = {}
    if not args.throughput_only:
        for seed in args.seeds:
            for recipe in args.recipes:
                run = run_one(recipe, seed, args.data_dir)
                results.setdefault(recipe, []).append({"seed": seed, **run})
                other = run["other_writers_accuracy"]
                print(f"{recipe} seed {seed}: {run['train_seconds']:.1f} s, "
                      f"test accuracy {100 * run['test_accuracy']:.2f} %"
                      + ("" if other is None else f", CVL writers {100 * other:.2f} %"), flush=True)
        print("\n" + comparison_table(results), flush=True)
    if args.out:
        atomic.write_json(args.out, results, elsewhere="another --out")
    if not args.no_throughput:
        print("\n" + throughput(), flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
