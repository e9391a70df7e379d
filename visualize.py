"""Show what each layer of a trained model responds to, from edges to whole digits.

    python visualize.py --layer conv2                 # conv2 of runs/convnet_mnist/
    python visualize.py --all                         # hierarchy, linear probes, Grad-CAM
    python visualize.py --report                      # all of it in runs/convnet_mnist/figures/report.html
    python visualize.py --run-dir runs/mlp_mnist --layer dense1
    python visualize.py --model-file other/model.keras --layer convnet/conv2
    python visualize.py --run-dir runs/reader_svhn-numbers --report   # a number reader

Figures go to <run>/figures/ (for --model-file, to figures/ beside the file; --out
chooses another folder); a file there of the same name that this project did not
write is refused, never replaced (harness/atomic.py):
for a convolutional layer <layer>_feature_maps.png, <layer>_top_patches.png
and <layer>_filter_patterns.png; for a dense layer <layer>_top_images.png, and
<layer>_templates.png when the layer reads the image pixels directly; for the
whole model hierarchy.png, probe.png with probe.json, and gradcam.png; with
--report also report.html. A layer inside a nested model is addressed
"parent/child" and its files are named "parent__child_...". Every figure shows a
layer's response after its batch norm and activation (conv2 -> conv2_relu),
which is what "what conv2 detects" means.

A number reader (models/reader.py) gets the same figures for its trunk (conv1,
conv2, ...); its probes read each number's first digit and also cover the
layers that read its columns; and instead of gradcam.png it gets evidence.png:
for each digit it read, where in the image that digit came from.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.quiet_keras import keras  # noqa: F401 (first: Keras loads quietly here, harness/quiet_keras.py)
from harness import atomic, kinds, model_files, runs

from analysis import drawing, introspection
from harness.cli import ArgumentParser, dataset_name, entry_point, positive_int, seed_value
from analysis.drawing.report import Section, report_html
from analysis.introspection import survey
from data import UserError, load_dataset, load_recorded, recorded_data_dir

PROBE_FILE = "probe.json"
REPORT_FILE = "report.html"
HIERARCHY_UNITS = 6  # units shown per layer in hierarchy.png
HIERARCHY_PATCHES = 4  # top patches per unit there
PROBE_IMAGES = (5000, 2000)  # training and test images for the linear probes
GRADCAM_EXAMPLES = 8  # correct predictions shown in gradcam.png, and at most as many mistakes
EVIDENCE_EXAMPLES = 4  # numbers read right in evidence.png, and at most as many misread
RARE_PIXEL = 0.01  # pixels inked in fewer training images are greyed out in dense templates
FILTER_STEPS = 64  # gradient-ascent steps per filter pattern
# A data set for a bare model file, by the image shape it takes.
DATASET_FOR_SHAPE = {(28, 28, 1): "mnist", (32, 32, 3): "svhn"}


@dataclass(frozen=True)
class VisualizeConfig:
    run_dir: Path | None  # None when model_file is given
    model_file: Path | None
    out: Path | None  # None: <run>/figures, or figures/ beside the model file
    layers: tuple[str, ...]  # layer paths given with --layer
    whole_model: bool  # hierarchy, probe and Grad-CAM
    report: bool
    dataset: str | None  # None: the run's, or guessed from the model's input shape
    data_dir: Path | None  # None: the run's, else DIGITS_DATA_DIR or the Keras cache
    images: int
    top_k: int
    units: int
    probe_train: int
    probe_test: int
    seed: int


def parse_args(argv: list[str] | None) -> VisualizeConfig:
    parser = ArgumentParser(
        description="Draw what a trained model's layers respond to. With no --layer, --all or --report: --all.")
    parser.add_argument("--layer", action="append", metavar="NAME",
                        help='a layer to draw, e.g. conv2 or dense1 ("parent/child" inside a nested model); repeatable')
    parser.add_argument("--all", action="store_true",
                        help="whole-model figures: hierarchy of top patches, linear probe per layer, Grad-CAM")
    parser.add_argument("--report", action="store_true",
                        help=f"every figure for every layer, gathered into <figures>/{REPORT_FILE}")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run-dir", type=Path, default=runs.default_run_dir("convnet", "mnist"),
                        help="run directory written by train.py")
    source.add_argument("--model-file", type=Path, help="any functional .keras model instead of a run")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help=f"folder for the figures (default: <run>/{runs.FIGURES_DIR}, or {runs.FIGURES_DIR}/ "
                             f"beside --model-file)")
    parser.add_argument("--dataset", type=dataset_name, metavar="NAME|FILE.npz",
                        help="images to show (default: the run's; for a model file mnist for 28x28x1 input, "
                             "svhn for 32x32x3)")
    parser.add_argument("--data-dir", type=Path,
                        help="folder with the data files "
                             "(default: the run's, else env DIGITS_DATA_DIR or the Keras cache)")
    parser.add_argument("--images", type=positive_int, default=6, help="test images in the feature-map figures")
    parser.add_argument("--top-k", type=positive_int, default=9, help="top-activating patches or images per unit")
    parser.add_argument("--units", type=positive_int, default=16,
                        help="units per layer figure: the most active ones (mean over test images of their peak)")
    parser.add_argument("--probe-images", type=positive_int, nargs=2, metavar=("TRAIN", "TEST"),
                        help="images the linear probes train on (from the training split) and are tested on "
                             f"(default: {PROBE_IMAGES[0]} {PROBE_IMAGES[1]})")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed for picking images and for filter patterns")
    args = parser.parse_args(argv)
    whole_model = args.all or not (args.layer or args.report)
    probe_train, probe_test = args.probe_images or PROBE_IMAGES
    return VisualizeConfig(
        run_dir=None if args.model_file else args.run_dir,
        model_file=args.model_file,
        out=args.out,
        layers=tuple(args.layer or ()),
        whole_model=whole_model,
        report=args.report,
        dataset=args.dataset,
        data_dir=args.data_dir,
        images=args.images,
        top_k=args.top_k,
        units=args.units,
        probe_train=probe_train,
        probe_test=probe_test,
        seed=args.seed,
    )


# ---------------------------------------------------------------- the model and its images


@dataclass(frozen=True)
class Source:
    model: object  # keras.Model
    model_file: Path
    figures_dir: Path
    digits: object  # data.Dataset
    metrics: dict  # the run's metrics.json, {} if none
    kind: kinds.Kind


def open_source(config: VisualizeConfig) -> Source:
    """Load the model and the data set it is shown on; UserError if either is missing or they do not fit."""
    if config.model_file is not None:
        model_file = Path(config.model_file)
        if not model_file.is_file():
            raise UserError(f"no model file {model_file}; pass the path of a saved .keras model.")
        folder = model_file.parent
        config_file = folder / runs.CONFIG_FILE  # a run's, someone else's, or none
        settings = runs.read_json(config_file) if config_file.is_file() else {}
        kind = None  # decided from the model below
    else:
        folder = runs.require_run(config.run_dir)
        model_file, config_file = folder / runs.MODEL_FILE, folder / runs.CONFIG_FILE
        settings = runs.read_config(folder)
        kind = kinds.of_run(settings, config_file)
    metrics = read_metrics(folder / runs.METRICS_FILE)
    model = model_files.load_model(model_file)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise UserError(f"{model_file} does not take one batch of images (B, H, W, C); cannot draw it.")
    shape = tuple(model.inputs[0].shape[1:])
    if "dataset" in settings and config.dataset in (None, settings["dataset"]):  # the run's own images
        dataset = settings["dataset"]
        digits = load_recorded(settings, config_file, config.data_dir)
    else:
        dataset = config.dataset or DATASET_FOR_SHAPE.get(shape)
        if dataset is None:
            raise UserError(f"{model_file} takes {'x'.join(map(str, shape))} images; "
                            "pass --dataset to choose images for it.")
        digits = load_dataset(dataset, config.data_dir or recorded_data_dir(settings, config_file))
    if digits.input_shape != shape:
        raise UserError(f"{model_file} takes {'x'.join(map(str, shape))} images but {dataset} has "
                        f"{'x'.join(map(str, digits.input_shape))}; pass a matching --dataset.")
    kind = kind or kinds.of_model(model, model_file)
    if kinds.of_labels(digits.y_test) is not kind:
        raise UserError(f"{model_file} {kind.does} but {dataset} holds {kinds.of_labels(digits.y_test).holds}; pass "
                        f"a matching --dataset.")
    return Source(model, model_file, config.out or folder / runs.FIGURES_DIR, digits, metrics, kind)


def read_metrics(path: Path) -> dict:
    """A run's metrics.json, {} if there is none; its test_accuracy, which the report quotes, checked."""
    if not path.is_file():
        return {}
    metrics = runs.read_json(path)
    accuracy = metrics.get("test_accuracy", 0)
    # type(): True is no number; NaN fails the comparison.
    if type(accuracy) not in (int, float) or not 0 <= accuracy <= 1:
        raise UserError(f"{path} records the test accuracy {accuracy!r}, not a number from 0 to 1; it is damaged "
                        f"(train the run again, or move the file away).")
    return metrics


# ---------------------------------------------------------------- figures


def layer_views(source: Source, layer: survey.Layer, scan: survey.Scan, config: VisualizeConfig) -> dict:
    """View name (a key of drawing.report.EXPLANATIONS) -> Figure for one layer; its file is <layer>_<view>.png."""
    model, digits = source.model, source.digits
    units = survey.most_active(scan, layer.response, config.units)
    entries = [scan.top[layer.response][unit] for unit in units]
    patches, values = survey.top_crops(digits.x_test, layer, entries, config.top_k)
    figures = {}
    if layer.spatial:
        inputs = introspection.as_floats(digits.x_test[survey.pick_images(digits.y_test, config.images, config.seed)])
        (maps,) = introspection.activations(model, inputs, [layer.response])
        figures["feature_maps"] = drawing.layers.feature_maps(inputs, maps, layer.path)
        figures["top_patches"] = drawing.layers.top_patches(patches, values, units, layer.path, layer.field_text)
        patterns, start, end = introspection.filter_patterns(model, layer.response, units, steps=FILTER_STEPS,
                                                             seed=config.seed)
        field = layer.field.size if layer.field.columns is None else (layer.field.size, layer.field.width)
        figures["filter_patterns"] = drawing.layers.filter_patterns(patterns, start, end, units, layer.path, field)
        return figures
    if layer.reads_pixels:
        kernel = np.asarray(introspection.find_layer(model, layer.path).kernel)
        trained = (digits.x_train > 0).any(axis=3).mean(axis=0) >= RARE_PIXEL  # (H, W)
        figures["templates"] = drawing.layers.dense_templates(kernel, digits.input_shape, units, layer.path, trained)
    labels = [[int(digits.y_test[entry[0]]) for entry in unit_entries[:config.top_k]] for unit_entries in entries]
    figures["top_images"] = drawing.layers.top_images(patches, values, units, layer.path, labels)
    return figures


def hierarchy_figure(source: Source, layers: list[survey.Layer], scan: survey.Scan):
    """hierarchy.png: a few units' top patches for each layer, input to output."""
    side, width = source.digits.input_shape[:2]  # a number reader's images are wide
    square = side == width
    rows = []
    for index, layer in enumerate(layers):
        units = survey.most_active(scan, layer.response, HIERARCHY_UNITS)
        patches, _ = survey.top_crops(source.digits.x_test, layer, [scan.top[layer.response][unit] for unit in units],
                                      HIERARCHY_PATCHES)
        meaning = survey.typical_content(layer, side, last_hidden=index == len(layers) - 1)
        if layer.field is None:
            fraction = 1.0
        elif square and layer.field.columns is None:
            fraction = layer.field.size / side
        else:
            fraction = (layer.field.size / side, layer.field.width / width)
        rows.append(drawing.layers.HierarchyRow(layer.path, layer.field_text, meaning, fraction, units, patches))
    return drawing.layers.hierarchy(rows, side if square else (side, width), dense_head=not source.kind.column_head)


def gradcam_figure(source: Source, conv: survey.Layer, logits: str, scan: survey.Scan, seed: int):
    """gradcam.png for some correct test images and some mistakes; None where Grad-CAM cannot reach the layers."""
    target = introspection.gradcam_model(source.model, conv.response, logits)
    if target is None:
        return None
    truth, predicted = source.digits.y_test, scan.predicted
    rng = np.random.default_rng(seed)
    right = np.flatnonzero(predicted == truth)
    wrong = np.flatnonzero(predicted != truth)
    chosen = np.concatenate([np.sort(rng.permutation(right)[:GRADCAM_EXAMPLES]),
                             np.sort(rng.permutation(wrong)[:GRADCAM_EXAMPLES])]).astype(int)
    images = introspection.as_floats(source.digits.x_test[chosen])
    heatmaps, classes = introspection.grad_cam(target[0], images, target[1], predicted[chosen], target[2])
    return drawing.layers.grad_cam(images, heatmaps, truth[chosen], classes, conv.path)


def evidence_figure(source: Source, conv: survey.Layer, scores: str, scan: survey.Scan, seed: int):
    """evidence.png: for some numbers read right and some misread, where each digit read came from (at conv)."""
    truth, read = source.digits.y_test, scan.predicted  # (N, MAX_DIGITS) each, digits then -1
    matches = (read == truth).all(axis=1)
    rng = np.random.default_rng(seed)
    right = rng.permutation(np.flatnonzero(matches))
    wrong = rng.permutation(np.flatnonzero(~matches))
    wrong = wrong[np.argsort(read[wrong, 0] < 0, kind="stable")]  # a misreading of no digit explains nothing: last
    chosen = np.concatenate([np.sort(right[:EVIDENCE_EXAMPLES]), np.sort(wrong[:EVIDENCE_EXAMPLES])]).astype(int)
    images = introspection.as_floats(source.digits.x_test[chosen])
    evidence = introspection.digit_evidence(source.model, images, conv.response, scores)
    return drawing.layers.digit_evidence(images, evidence.heatmaps, evidence.digits, evidence.probabilities,
                                         evidence.columns, evidence.column_width, truth[chosen], conv.path)


def probe_figure(probe: dict, digits, kind: kinds.Kind):
    """probe.png from probe.json's numbers; a reader's probes read each number's first digit."""
    rows = probe["layers"]
    common = {"features": [row["features"] for row in rows], "target": kind.probe_target}
    if kind.column_head:
        common.update(chance=probe["majority"], chance_label="commonest first digit",
                      note="target: each number's first (leftmost) digit; the reader's per-column layers are reduced "
                           "to mean and max per channel over the columns")
    else:
        common.update(chance=1 / digits.num_classes)
    return drawing.layers.probe([row["layer"] for row in rows], [row["accuracy"] for row in rows],
                                probe["train_images"], probe["test_images"], **common)


# ---------------------------------------------------------------- putting it together


@dataclass(frozen=True)
class Outcome:
    written: list[Path]
    probe: dict | None  # as written to probe.json
    notes: list[str]  # figures that do not apply to this model, and why


def visualize(config: VisualizeConfig) -> Outcome:
    """Compute every requested figure, then write them.

    Everything that can fail on a user's mistake happens before the first file is written.
    """
    source = open_source(config)
    model, digits = source.model, source.digits
    kind = source.kind
    requested = [survey.describe(model, path) for path in config.layers]  # unknown or undrawable layers fail here
    drawn = survey.drawn_paths(model)
    main_layers = [survey.describe(model, path) for path in drawn]
    if kind.column_head:  # the trunk is drawn; the layers that read its columns, the logits last, are probed
        logits, hidden = None, main_layers
        column_layers = [path for path in survey.weighted_paths(model) if path not in drawn]
        scores = column_layers[-1] if column_layers else None
        probed = hidden + survey.readouts(model, column_layers)
    else:
        logits = main_layers[-1] if main_layers and not main_layers[-1].spatial else None
        hidden = [layer for layer in main_layers if layer is not logits]
        scores = logits.path if logits else None
        probed = hidden + ([logits] if logits else [])
    convolutional = [layer for layer in hidden if layer.spatial]
    if config.report:
        requested += [layer for layer in hidden if layer.path not in config.layers]
    whole_model = config.whole_model or config.report
    if whole_model and not hidden:
        raise UserError(f"{source.model_file} has no convolutional or dense layers to draw.")

    scanned = list(dict.fromkeys(layer.response for layer in requested + (hidden if whole_model else [])))
    needs_predictions = whole_model and bool(convolutional) and scores is not None
    scan = survey.scan_images(model, digits.x_test, scanned, max(config.top_k, HIERARCHY_PATCHES),
                              scores if needs_predictions else None)

    figures: dict[str, object] = {}  # file name -> Figure, in the report's order
    sections: list[Section] = []
    notes: list[str] = []
    probe = None
    if whole_model:
        figures["hierarchy.png"] = hierarchy_figure(source, hidden, scan)
        sections.append(Section("From edges to digits", [("hierarchy", "hierarchy.png")]))
        probe = introspection.probe_layers(model, digits, probed, config.probe_train, config.probe_test, config.seed)
        figures["probe.png"] = probe_figure(probe, digits, kind)
        sections.append(Section("How the answer builds up with depth",
                                [("probe_first_digit" if kind.column_head else "probe", "probe.png")]))
        if kind.attribution == "evidence":
            if needs_predictions:
                figures["evidence.png"] = evidence_figure(source, convolutional[-1], scores, scan, config.seed)
                sections.append(Section("What the reader looks at for each digit", [("evidence", "evidence.png")]))
            else:
                notes.append("no evidence.png: it needs a convolutional trunk and the column scores")
        else:
            gradcam = gradcam_figure(source, convolutional[-1], logits.path, scan, config.seed) \
                if needs_predictions else None
            if gradcam is not None:
                figures["gradcam.png"] = gradcam
                sections.append(Section("Where the model looks", [("gradcam", "gradcam.png")]))
            elif not convolutional:
                notes.append("no gradcam.png: Grad-CAM needs a convolutional layer, and this model has none")
            else:
                notes.append(f"no gradcam.png: cannot reach {convolutional[-1].path}'s maps and the logits "
                             "from the model's input in one graph")
    for layer in requested:
        views = layer_views(source, layer, scan, config)
        for view, figure in views.items():
            figures[f"{layer.file_stem}_{view}.png"] = figure
        unit_word = "channels" if layer.spatial else "units"
        sections.append(Section(f"Layer {layer.path}: {layer.units} {unit_word}, {layer.field_text} receptive field",
                                [(view, f"{layer.file_stem}_{view}.png") for view in views]))

    figures_dir = source.figures_dir
    if figures_dir.exists() and not figures_dir.is_dir():
        raise UserError(f"{figures_dir} is a file, not a folder for the figures; choose another --out.")
    figures_dir.mkdir(parents=True, exist_ok=True)
    names = [*figures, *([PROBE_FILE] if probe is not None else []), *([REPORT_FILE] if config.report else [])]
    for name in names:  # all refused before any is written
        atomic.check_replaceable(figures_dir / name, "another --out")
    written = []
    for name, figure in figures.items():
        drawing.save_figure(figure, figures_dir / name, "another --out")
        written.append(figures_dir / name)
    if probe is not None:
        atomic.write_json(figures_dir / PROBE_FILE, probe, "another --out")
        written.append(figures_dir / PROBE_FILE)
    if config.report:
        facts = [f"model {source.model_file}", f"{model.count_params():,} parameters",
                 f"{len(digits.y_test):,} {digits.name} test images of {'x'.join(map(str, digits.input_shape))} pixels"]
        if "test_accuracy" in source.metrics:
            measure = kind.accuracy_name
            facts.append(f"{measure} {100 * source.metrics['test_accuracy']:.2f} %")
        page = report_html(f"What {model.name} learned on {digits.name}", facts, survey.model_summary(model), sections,
                           probe, figures_dir)
        atomic.write_text(figures_dir / REPORT_FILE, page, "another --out")
        written.append(figures_dir / REPORT_FILE)
    return Outcome(written, probe, notes)


@entry_point
def main(argv: list[str] | None = None) -> int:
    outcome = visualize(parse_args(argv))
    for path in outcome.written:
        print(path)
    for note in outcome.notes:
        print(note)
    probe = outcome.probe
    if probe is not None:
        accuracies = ", ".join(f"{row['layer']} {100 * row['accuracy']:.1f} %" for row in probe["layers"])
        print(f"linear-probe test accuracy ({probe['train_images']} training, {probe['test_images']} test images): "
              f"{accuracies}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
