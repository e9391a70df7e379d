"""Train a digit classifier or a number reader and save it with everything needed to judge, reload and serve it.

    python train.py                                  # convnet on MNIST -> runs/convnet_mnist/
    python train.py --model mlp --epochs 10
    python train.py --dataset svhn --data-dir ~/svhn
    python train.py --dataset synthetic --dry-run    # a quick pass, no download
    python train.py --dataset my_digits.npz          # your own digits, Keras mnist.npz layout
    python train.py --model reader --dataset svhn-numbers   # whole house numbers -> runs/reader_svhn-numbers/
    python train.py --distribute mirrored            # all local GPUs (or the CPU split in two)
    TF_CONFIG='{...}' python train.py --distribute multiworker   # one process per machine

The run directory receives model.keras, saved_model/ (SavedModel with the
serving_default signature), model_float32.tflite and model_int8.tflite,
config.json, history.csv, metrics.json and training_curves.png (harness/runs.py
lists them). A killed or interrupted run resumes when the same command runs
again (--fresh starts over); a folder this project did not write is refused.
"""

import math
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.quiet_keras import keras, tf  # first: Keras loads quietly here (harness/quiet_keras.py)
from models import MODELS, default_epochs
from harness import atomic, kinds, model_files, resume, runs
from analysis import drawing
from harness.cli import (INTERRUPTED, LARGEST_COUNT, ArgumentParser, count_up_to, dataset_name, entry_point, fraction,
                        positive_float, positive_int, seed_value)
from harness.distribute import STRATEGIES, adapt_for_multiworker, make_strategy, writes_run
from serving.export import write_serving_files
from models.training import compile_for_training
from data import (DATASETS, VALIDATION_FRACTION, UserError, dataset_label, default_data_dir, is_npz_path,
                  load_dataset, validation_split)
from data.files import file_digest
from data.pipeline import AUGMENTATIONS, batches, resolve_augment, steps_per_epoch

DRY_RUN_IMAGES = 256  # training and test images in a --dry-run, enough for every code path
# Bounds that keep a typo from becoming an overflow or an hour-long hang rather than a one-line error.
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_CPU_REPLICAS = 64  # logical devices are threads of one CPU; thousands take minutes just to create


@dataclass(frozen=True)
class TrainConfig:
    model: str
    dataset: str
    epochs: int | None  # None: the model's recipe, resolved once the data set's size is known
    batch_size: int
    learning_rate: float
    augment: str
    seed: int
    run_dir: Path
    data_dir: Path
    limit: int | None
    validation_fraction: float
    dry_run: bool
    distribute: str
    cpu_replicas: int
    fresh: bool
    tensorboard: bool


def parse_args(argv: list[str] | None) -> TrainConfig:
    def per_model(field: str) -> str:
        return "default per model: " + ", ".join(f"{name} {getattr(arch, field)}" for name, arch in MODELS.items())

    parser = ArgumentParser(description="Train a digit classifier or a number reader (Keras functional API) and "
                                        "save it with its serving files.")
    parser.add_argument("--model", choices=list(MODELS), default="convnet", help="architecture")
    parser.add_argument("--dataset", type=dataset_name, default="mnist", metavar="NAME|FILE.npz",
                        help=f"data set: one of {', '.join(DATASETS)}, or a .npz file with x_train, y_train, "
                             f"x_test, y_test (uint8 images, labels 0..K-1)")
    parser.add_argument("--epochs", type=count_up_to(MAX_EPOCHS),
                        help=f"passes over the training set ({per_model('epochs')}; the convnet takes more on small "
                             f"data sets, to make at least {MODELS['convnet'].min_steps} steps, and "
                             f"{', '.join(f'{epochs} on {name}' for name, epochs in MODELS['convnet'].epochs_on)})")
    parser.add_argument("--batch-size", type=count_up_to(MAX_BATCH),
                        help=f"images per step ({per_model('batch_size')})")
    parser.add_argument("--learning-rate", type=positive_float,
                        help=f"peak of the one-cycle schedule ({per_model('learning_rate')})")
    parser.add_argument("--augment", choices=("auto",) + AUGMENTATIONS,
                        help=f"training-image augmentation; auto: street for colour images, handwriting for "
                             f"greyscale digits, none for greyscale numbers ({per_model('augment')})")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed for weights, shuffling and dropout")
    parser.add_argument("--run-dir", type=Path, help="output folder (default runs/<model>_<dataset>)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(),
                        help="folder with the data files (env DIGITS_DATA_DIR, else the Keras cache)")
    parser.add_argument("--limit", type=positive_int, help="use only the first N training and N test images")
    parser.add_argument("--validation-fraction", type=fraction, default=VALIDATION_FRACTION,
                        help="share of the training split held out for validation")
    parser.add_argument("--dry-run", action="store_true",
                        help=f"one epoch on {DRY_RUN_IMAGES} images: checks that everything runs")
    parser.add_argument("--distribute", choices=STRATEGIES, default="none",
                        help="tf.distribute strategy: mirrored uses every local GPU (on a machine without one, "
                             "--cpu-replicas logical CPU devices); multiworker reads the cluster from TF_CONFIG. "
                             "--batch-size is the global batch, split across the replicas")
    parser.add_argument("--cpu-replicas", type=count_up_to(MAX_CPU_REPLICAS), default=2,
                        help="logical CPU devices for --distribute mirrored on a machine without GPUs")
    parser.add_argument("--fresh", action="store_true",
                        help="start over even if an interrupted run of the same command can be resumed")
    parser.add_argument("--tensorboard", action="store_true",
                        help=f"also write TensorBoard logs (per-epoch loss, accuracy, learning rate) to "
                             f"<run-dir>/{runs.LOGS_DIR}")
    args = parser.parse_args(argv)
    recipe = MODELS[args.model]
    return TrainConfig(
        model=args.model,
        dataset=args.dataset,
        epochs=1 if args.dry_run else args.epochs,
        batch_size=args.batch_size or recipe.batch_size,
        learning_rate=args.learning_rate or recipe.learning_rate,
        augment=args.augment or recipe.augment,
        seed=args.seed,
        run_dir=args.run_dir or runs.default_run_dir(args.model, dataset_label(args.dataset)),
        data_dir=args.data_dir,
        limit=min(args.limit or DRY_RUN_IMAGES, DRY_RUN_IMAGES) if args.dry_run else args.limit,
        validation_fraction=args.validation_fraction,
        dry_run=args.dry_run,
        distribute=args.distribute,
        cpu_replicas=args.cpu_replicas,
        fresh=args.fresh,
        tensorboard=args.tensorboard,
    )


def train(config: TrainConfig, arguments: list[str]) -> dict:
    """Train, test and save one run; returns its metrics.

    Raises UserError before any work if the run folder may not be replaced, and
    TrainingDiverged if the loss stops being a number; either way the folder is untouched.
    """
    runs.check_replaceable(config.run_dir)
    # First: the strategy fixes the devices, and TensorFlow cannot change them once it has run an op.
    strategy = make_strategy(config.distribute, config.cpu_replicas)
    # In a cluster every worker runs all of this (evaluation and export take part in collective
    # ops), but only the chief's run directory is kept; the others write into a scratch folder.
    if not writes_run(strategy):
        with tempfile.TemporaryDirectory(prefix="worker_run_") as scratch:
            return train_and_save(replace(config, run_dir=Path(scratch) / "run"), arguments, strategy)
    with runs.locked(config.run_dir):
        return train_and_save(config, arguments, strategy)


def train_and_save(config: TrainConfig, arguments: list[str], strategy) -> dict:
    """Load the data, train (or resume), test, and publish the run into config.run_dir; returns its metrics."""
    digits = load_dataset(config.dataset, config.data_dir).limited(config.limit)
    architecture = MODELS[config.model]
    kind, holds = architecture.kind, kinds.of_labels(digits.y_train)
    if holds is not kind:
        raise UserError(f"{config.dataset} holds {holds.holds}, and --model {config.model} "
                        f"is a {kind.name}; choose "
                        f"{' or '.join(name for name, other in MODELS.items() if other.kind is not kind)} for it.")
    config = replace(config, augment=resolve_augment(config.augment, digits.input_shape[-1], kind))
    train_index, val_index = validation_split(len(digits.y_train), config.validation_fraction)
    x_train, y_train = digits.x_train[train_index], digits.y_train[train_index]
    x_val, y_val = digits.x_train[val_index], digits.y_train[val_index]
    # Balanced sampling: each training image shown as often per epoch as its data set asks (data/handwriting.py).
    repeats = None if digits.train_repeats is None else digits.train_repeats[train_index]
    shown_per_epoch = len(y_train) if repeats is None else int(repeats.sum())
    steps = steps_per_epoch(shown_per_epoch, config.batch_size)
    if config.epochs is None:
        config = replace(config, epochs=default_epochs(architecture, steps, config.dataset))

    settings = {key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()}
    if is_npz_path(config.dataset):  # trace the run to the exact file it learned from
        settings["dataset"] = str(Path(config.dataset).resolve())
        settings["dataset_sha256"] = file_digest(Path(config.dataset), "sha256")
    if config.epochs * steps > LARGEST_COUNT:
        raise UserError(f"{config.epochs} epochs of {steps} steps are more steps than TensorFlow counts "
                        f"({LARGEST_COUNT}); ask for fewer --epochs.")

    # Same seed, same data, same machine: the same weights, bit for bit.
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    with strategy.scope():  # variables created here are mirrored on every replica
        model = architecture.build(digits.input_shape, digits.num_classes)
        compile_for_training(model, config.learning_rate, config.epochs * steps, kind)
    # Only now, with data and model known to be usable, is anything written beside the run.
    staging = runs.staging_dir(config.run_dir)
    state = resume.TrainingState(staging / runs.TRAINING_STATE_DIR, _result_settings(settings))
    resumed = resume_or_start(config, state)
    if resumed:
        with strategy.scope():
            resumed.restore(model)
    adapt_for_multiworker(model, strategy)
    first_epoch = resumed.epoch if resumed else 0
    # Synthetic numbers composed on the fly join each batch, in proportion to the real ones.
    composed_per_batch = math.ceil(digits.composed_per_epoch / steps) if digits.composer else 0
    if config.dry_run:
        composed_per_batch = min(composed_per_batch, 8)
    train_batches = batches(x_train, y_train, config.batch_size, shuffle_seed=config.seed,
                            augment=config.augment, epochs=range(first_epoch, config.epochs),
                            composer=digits.composer, composed_per_batch=composed_per_batch, repeats=repeats)
    val_batches = batches(x_val, y_val, 1000) if len(y_val) else None
    test_batches = batches(digits.x_test, digits.y_test, 1000)

    composed = f" (+{composed_per_batch * steps} composed per epoch)" if composed_per_batch else ""
    if repeats is not None:
        composed += f" ({shown_per_epoch} shown per epoch, balancing its sources)"
    print(f"training {config.model} on {config.dataset}: {len(y_train)} training{composed}, "
          f"{len(y_val)} validation, {len(digits.y_test)} test images of shape {digits.input_shape}, "
          f"{strategy.num_replicas_in_sync} replica(s)")
    saver = state.saver(resumed)
    interrupt = resume.StopOnInterrupt()
    callbacks = [resume.StopOnDivergence(), saver, interrupt]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(staging / runs.LOGS_DIR)))
    with strategy.scope():  # fit and evaluate take the strategy from here (see adapt_for_multiworker)
        try:
            model.fit(
                train_batches,
                validation_data=val_batches,
                epochs=config.epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=steps,
                shuffle=False,  # the pipeline already orders every epoch, seeded
                callbacks=callbacks,
                verbose=1 if sys.stdout.isatty() else 2,
            )
        except resume.TrainingDiverged:
            runs.discard_staging(config.run_dir)  # its states lead to the same divergence
            raise
        except KeyboardInterrupt:
            raise Interrupted(len(saver.history)) from None
        finally:
            interrupt.restore()
        test_loss, test_accuracy = model.evaluate(test_batches, verbose=0)
    if not math.isfinite(test_loss):
        runs.discard_staging(config.run_dir)
        raise resume.TrainingDiverged(f"training diverged: the test loss is {test_loss}")

    # Where plain Keras could not rebuild the loss (a reader's CTC is this project's code), the file keeps
    # the model alone (resuming uses the training state, not model.keras).
    model_files.save_model(model, staging / runs.MODEL_FILE, training_setup=kind.portable_objective)
    write_serving_files(model, staging, x_train, kind)  # saved_model/ taking raw uint8 pixels, and the .tflite files
    atomic.write_json(staging / runs.CONFIG_FILE, {
        runs.RUN_MARKER: runs.RUN_LAYOUT,
        **settings,
        "input_shape": list(digits.input_shape),
        "num_classes": digits.num_classes,
        kinds.CONFIG_KEY: kind.name,
        "train_images": len(y_train),
        "shown_per_epoch": shown_per_epoch,
        "composed_per_epoch": composed_per_batch * steps,
        "validation_images": len(y_val),
        "test_images": len(digits.y_test),
        "replicas": strategy.num_replicas_in_sync,
        "environment": runs.environment("train.py", arguments),
    })
    metrics = {
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "train_seconds": round(saver.train_seconds, 2),
        "epochs": config.epochs,
        "train_images_per_second": round(config.epochs * shown_per_epoch / saver.train_seconds, 1),
        "parameters": model.count_params(),
    }
    atomic.write_json(staging / runs.METRICS_FILE, metrics)
    atomic.write_text(staging / runs.HISTORY_FILE, history_csv(saver.history))
    columns = {key: [row[key] for row in saver.history] for key in saver.history[0]}
    drawing.save_figure(drawing.results.training_curves(columns), staging / runs.CURVES_FILE)
    if config.tensorboard:
        atomic.record(staging / runs.LOGS_DIR)  # written by TensorBoard, in place: recorded as it ends
    shutil.rmtree(state.directory)
    runs.publish(staging, config.run_dir)
    return metrics


def resume_or_start(config: TrainConfig, state: resume.TrainingState) -> resume.Checkpoint | None:
    """The saved state an interrupted run of the same command left, or None after clearing the way for a new run."""
    resumed = None
    if config.distribute == "multiworker":
        pass  # every worker would have to resume from the same epoch; a cluster run starts over
    elif not config.fresh:
        state.check_intact()  # a state cut short or edited is refused, not resumed and not discarded
        if state.started_differently():
            print(f"{config.run_dir}: an interrupted run with other settings was left in "
                  f"{runs.staging_dir(config.run_dir)}; starting fresh")
        else:
            resumed = state.latest()
    if resumed is None:
        runs.discard_staging(config.run_dir)
        runs.remove_stale_staging(config.run_dir)
        atomic.make_folder(runs.staging_dir(config.run_dir), elsewhere="another --run-dir")
        state.clear()
    else:
        print(f"resuming {config.run_dir} after epoch {resumed.epoch} of {config.epochs} (--fresh starts over)")
    return resumed


def _result_settings(settings: dict) -> dict:
    """The settings that decide a run's weights: a saved state resumes only under the same ones."""
    return {key: value for key, value in settings.items() if key not in ("fresh", "tensorboard", "run_dir")}


def history_csv(history: list[dict]) -> str:
    """history.csv: one row per epoch (counted from 0, as Keras's CSVLogger does), a column per logged value."""
    columns = sorted(history[0])
    lines = [",".join(["epoch", *columns])]
    lines += [",".join([str(epoch), *(repr(row[key]) for key in columns)]) for epoch, row in enumerate(history)]
    return "\n".join(lines) + "\n"


class Interrupted(Exception):
    """Ctrl-C during training; carries the epochs whose state is saved."""

    def __init__(self, epochs_saved: int):
        super().__init__(epochs_saved)
        self.epochs_saved = epochs_saved


@entry_point
def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    config = parse_args(arguments)
    try:
        metrics = train(config, arguments)
    except resume.TrainingDiverged as diverged:
        print(f"error: {diverged}; try a lower --learning-rate (it was {config.learning_rate:g}). "
              f"Nothing was saved; {config.run_dir} is unchanged.", file=sys.stderr)
        return 1
    except Interrupted as interrupted:
        print(f"interrupted after {interrupted.epochs_saved} complete epoch(s); run the same command again to "
              f"resume ({config.run_dir} is unchanged).", file=sys.stderr)
        return INTERRUPTED
    print(f"test accuracy {metrics['test_accuracy']:.4f} after {metrics['epochs']} epochs "
          f"({metrics['train_seconds']:.0f} s of training); saved to {config.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
