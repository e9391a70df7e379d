"""Measure a trained model on its test set, with the pictures people expect.

    python evaluate.py                            # the run in runs/convnet_mnist/
    python evaluate.py --run-dir runs/mlp_mnist
    python evaluate.py --run-dir runs/reader_svhn-numbers
    python evaluate.py --dataset cvl-digits       # the same model on other people's handwriting
    python evaluate.py --dataset scans.npz --dark-ink   # your own digits, scanned dark on light

    python evaluate.py --robustness               # accuracy under turns, sizes, moves, light, noise, blur, cover
    python evaluate.py --run-dir runs/convnet_mnist --robustness --compare runs/mlp_mnist runs/convnet_aug

Writes into the run directory evaluation.json, confusion_matrix.png,
mistakes.png and mistake_kinds.png. With --dataset, the model is measured on
another data set's test split instead, and the files carry its name
(evaluation-cvl-digits.json, ...): the data set must be in the model's
convention, as every registry data set is (data/conventions.py); a .npz of
digits scanned dark on light is brought to it by --dark-ink. For a digit
classifier: accuracy (per source for a data set of several, such as
handwriting's MNIST and CVL parts), per-class precision, recall and F1, and the
confusion matrix. For a number reader: whole-number accuracy (every
digit and the length right), per-digit and length accuracy, accuracy by the
number's length, and the confusion of true and read lengths (the figure in
confusion_matrix.png). Both say how well the exported SavedModel agrees with
model.keras; mistakes.png shows the most confident mistakes, mistake_kinds.png
the mistakes grouped by kind (the commonest confusions; a reader's numbers read
too short, too long, with one digit or more wrong) and, where the data set knows
its writers, the writers with the most mistakes.

With --robustness, instead: the robustness sweep (analysis/robustness.py) on
--robustness-images test images chosen by --seed, written as robustness.json
and robustness.png into the run directory; with --compare, the same images and
changes for every run named (each gets its own files), and all runs in one
figure, robustness_compare.png in --run-dir.
"""

import sys
from dataclasses import dataclass
from pathlib import Path


from harness.quiet_keras import keras  # noqa: F401 (first: Keras loads quietly here, harness/quiet_keras.py)
from analysis import robustness
from analysis.drawing import results, save_figure
from analysis.evaluation import Evaluation
from data import DATASETS, UserError, is_npz_path
from data.conventions import dark_ink_dataset
from harness import atomic, runs
from harness.cli import ArgumentParser, dataset_name, entry_point, positive_int, seed_value


@dataclass(frozen=True)
class EvaluateConfig:
    run_dir: Path
    data_dir: Path | None  # None: the folder the run was trained from
    max_mistakes: int
    dataset: str | None = None  # another data set's test split (a name or .npz path); None: the run's own
    dark_ink: bool = False  # the --dataset .npz holds digits scanned dark on light (data/conventions.py)
    robustness: bool = False  # the robustness sweep instead of the standard evaluation
    robustness_images: int = 2000
    compare: tuple[Path, ...] = ()  # more runs swept on the same images
    seed: int = 0  # picks the sweep's images, and draws its noise and covers


def parse_args(argv: list[str] | None) -> EvaluateConfig:
    parser = ArgumentParser(
        description="Evaluate a trained run on its test set and draw its confusion matrix (a number reader's: "
                    "true against read lengths) and mistakes.")
    parser.add_argument("--run-dir", type=Path, default=runs.default_run_dir("convnet", "mnist"),
                        help="run directory written by train.py")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the data files (default: the one the run was trained from)")
    parser.add_argument("--dataset", type=dataset_name, metavar="NAME|FILE.npz",
                        help=f"measure the model on this data set's test split instead of its own: one of "
                             f"{', '.join(DATASETS)}, or a .npz file in Keras's mnist.npz layout")
    parser.add_argument("--dark-ink", action="store_true",
                        help="the --dataset .npz holds greyscale digits scanned dark on light paper: bring them to "
                             "MNIST's convention (bright on black, MNIST's framing) first")
    parser.add_argument("--max-mistakes", type=positive_int, default=48,
                        help="misclassified images (or wrongly read numbers) shown in mistakes.png")
    parser.add_argument("--robustness", action="store_true",
                        help="instead: accuracy under graded turns, sizes, moves, light, inversion, noise, blur and "
                             f"cover, into {runs.ROBUSTNESS_FILE} and {runs.ROBUSTNESS_FIGURE}")
    parser.add_argument("--robustness-images", type=positive_int, default=2000,
                        help="test images in the robustness sweep")
    parser.add_argument("--compare", type=Path, nargs="+", default=[], metavar="RUN_DIR",
                        help=f"with --robustness: more runs swept on the same images, all drawn in "
                             f"{runs.ROBUSTNESS_COMPARE_FIGURE}")
    parser.add_argument("--seed", type=seed_value, default=0,
                        help="with --robustness: picks the test images and draws the noise and covers")
    args = parser.parse_args(argv)
    if args.compare and not args.robustness:
        parser.error("--compare goes with --robustness")
    if args.dataset and args.robustness:
        parser.error("--dataset goes without --robustness (the sweep uses the run's own test images)")
    if args.dark_ink and not (args.dataset and is_npz_path(args.dataset)):
        parser.error("--dark-ink goes with --dataset FILE.npz (the registry's data sets are already in their "
                     "models' convention)")
    return EvaluateConfig(args.run_dir, args.data_dir, args.max_mistakes, args.dataset, args.dark_ink,
                          args.robustness, args.robustness_images, tuple(args.compare), args.seed)


# What a refusal to replace a file in a run tells the user to do instead.
ELSEWHERE = "another --run-dir (or train the run again)"


def evaluate(config: EvaluateConfig) -> Evaluation:
    """Evaluate the run in config.run_dir (on its own test set, or config.dataset's) and write evaluation.json and
    its figures there (their names carry config.dataset's when given)."""
    outputs = runs.evaluation_files(config.dataset)
    for name in outputs:  # all refused before anything is loaded, computed or written
        atomic.check_replaceable(Path(config.run_dir) / name, ELSEWHERE)
    run = runs.open_run(config.run_dir, config.data_dir, config.dataset,
                        dark_ink_dataset if config.dark_ink else None)
    evaluation = run.kind.evaluate(run, config.max_mistakes)
    files = dict(zip(runs.evaluation_files(), outputs, strict=True))  # each role's name -> this evaluation's
    atomic.write_json(run.folder / files[runs.EVALUATION_FILE], evaluation.content)
    for role, figure in evaluation.figures.items():
        save_figure(figure, run.folder / files[role], ELSEWHERE)
    return evaluation


# ----------------------------------------------------------------------------- the robustness sweep


def sweep_runs(config: EvaluateConfig) -> dict[str, dict]:
    """The robustness sweep of --run-dir and every --compare run on the same test images: each run's
    robustness.json and robustness.png written into its folder, robustness_compare.png into --run-dir's if
    there is more than one run. Returns run folder -> robustness.json content."""
    opened = [runs.open_run(run_dir, config.data_dir) for run_dir in (config.run_dir, *config.compare)]
    first = opened[0]
    for run in opened[1:]:
        if (run.settings["dataset"], run.digits.input_shape) != (first.settings["dataset"], first.digits.input_shape):
            raise UserError(f"{run.folder} was trained on {run.settings['dataset']} "
                            f"({'x'.join(map(str, run.digits.input_shape))}) and {first.folder} on "
                            f"{first.settings['dataset']} ({'x'.join(map(str, first.digits.input_shape))}); "
                            f"--compare needs runs on the same test images.")
    for run in opened:  # all refused before the sweep, which takes a minute, and before anything is written
        for name in (runs.ROBUSTNESS_FILE, runs.ROBUSTNESS_FIGURE, runs.ROBUSTNESS_COMPARE_FIGURE):
            atomic.check_replaceable(run.folder / name, ELSEWHERE)
    picked = robustness.pick(len(first.digits.y_test), config.robustness_images, config.seed)
    images, labels = first.digits.x_test[picked], first.digits.y_test[picked]
    sweeps = {}
    for run in opened:
        result = {"dataset": run.settings["dataset"], "kind": run.kind.name,
                  **robustness.sweep(run.kind.judge(run.model, labels), images, config.seed)}
        atomic.write_json(run.folder / runs.ROBUSTNESS_FILE, result, ELSEWHERE)
        save_figure(results.robustness({run.folder.name: result}, f"{run.folder.name} on {len(images)} "
                                       f"{run.settings['dataset']} test images"), run.folder / runs.ROBUSTNESS_FIGURE)
        sweeps[str(run.folder)] = result
    if len(opened) > 1:
        figure = results.robustness({Path(folder).name: result for folder, result in sweeps.items()},
                                    f"{len(images)} {first.settings['dataset']} test images")
        save_figure(figure, first.folder / runs.ROBUSTNESS_COMPARE_FIGURE)
    return sweeps


def sweep_summary(folder: str, result: dict) -> str:
    """One line: the clean accuracy and the accuracy at a few telling strengths."""
    def at(name, strength):
        curve = result[name]
        return curve["accuracy"][curve["strengths"].index(strength)]
    return (f"{folder}: clean {result['clean']:.4f}; turned 30 degrees {at('rotation', 30):.4f}, -30 "
            f"{at('rotation', -30):.4f}; scaled 0.7 {at('scale', 0.7):.4f}, 1.3 {at('scale', 1.3):.4f}; "
            f"inverted {at('inversion', 1.0):.4f}")


@entry_point
def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if config.robustness:
        for folder, result in sweep_runs(config).items():
            print(sweep_summary(folder, result))
        print(f"{runs.ROBUSTNESS_FILE} and {runs.ROBUSTNESS_FIGURE} in each run folder"
              + (f", {runs.ROBUSTNESS_COMPARE_FIGURE} in {config.run_dir}" if config.compare else ""))
        return 0
    evaluation = evaluate(config)
    parity = evaluation.content["savedmodel_parity"]
    print(f"{evaluation.summary}; figures and {runs.evaluation_files(config.dataset)[0]} in {config.run_dir}")
    if not parity["agrees"]:
        print(f"warning: the SavedModel disagrees with model.keras on {parity['prediction_disagreements']} "
              f"test images (largest probability difference {parity['max_probability_difference']:.2e})",
              file=sys.stderr)
        return 1
    print(f"SavedModel agrees with model.keras on all {parity['images']} test images "
          f"(largest probability difference {parity['max_probability_difference']:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
