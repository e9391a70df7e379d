"""A trained model's layers, surveyed on a data set: what can be drawn, and the numbers behind each figure.

    layer = describe(model, "conv2")          # Layer(path="conv2", response="conv2_relu", field=..., ...)
    scan = scan_images(model, digits.x_test, [layer.response], k=9, logits="logits")
    units = most_active(scan, layer.response, 16)
    patches, values = top_crops(digits.x_test, layer, [scan.top[layer.response][u] for u in units], 9)
    drawn_paths(reader)                       # a number reader's trunk: ["conv1", ..., "conv5"]

Computation only; analysis/drawing draws the results and visualize.py puts the
two together. A convolution or dense layer is surveyed through its response:
its output after its own batch norm and activation (conv2 -> conv2_relu), which
is what "what conv2 detects" means; where a block pools before its batch norm
(models/convnet.py), the response is the pooled one, with the pool's receptive field.

A number reader (models/reader.py) is surveyed through its trunk, the
convolutions that still see a 2-D image; the layers that read its columns are
only probed (`readouts`).
"""

from dataclasses import dataclass

import keras
import numpy as np

from harness.errors import UserError
from models.ctc import greedy_read
from analysis.introspection.forward import as_floats, chunked_activations, top_activations
from analysis.introspection.graph import PER_UNIT, POOLS, LayerError, consumers, find_layer, layer_paths, producer
from harness import kinds
from analysis.introspection.probes import digit_targets
from analysis.introspection.receptive_fields import ReceptiveField, crop_receptive_field, receptive_field


@dataclass(frozen=True)
class Layer:
    """A layer that can be drawn, and how."""

    path: str  # as the user addresses it: "conv2", "convnet/conv2"
    response: str  # the path whose output is drawn (see response_path)
    spatial: bool  # output (N, h, w, c) maps; else (N, units)
    units: int  # channels or units
    field: ReceptiveField | None  # None: the whole image; a rectangle in a number reader's trunk
    reads_pixels: bool  # a dense layer fed straight by the flattened image: its weights are image templates

    @property
    def file_stem(self) -> str:
        return self.path.replace("/", "__")

    @property
    def field_text(self) -> str:
        return "whole image" if self.field is None else self.field.text


def response_path(model: keras.Model, path: str) -> str:
    """For a convolution or dense layer, the path of the last layer in its chain -> batch norm -> activation.

    Only PER_UNIT layers are followed, so a unit of the response is the same unit
    as in `path`, and a pooling layer where more of them follow it (conv -> pool ->
    batch norm -> ReLU); dropout (the identity at inference), a pool that ends the
    chain and anything beyond are not. Any other layer is its own response, so
    conv2_bn shows the batch norm's signed output.
    """
    layer = find_layer(model, path)
    if not hasattr(layer, "kernel"):
        return path
    parent_path, _, _ = path.rpartition("/")
    parent = find_layer(model, parent_path) if parent_path else model

    def next_in_chain(layer):
        followers = consumers(layer)
        follower = followers[0] if len(followers) == 1 else None
        return follower if follower in parent.layers else None

    while True:
        follower = next_in_chain(layer)
        if isinstance(follower, POOLS) and isinstance(next_in_chain(follower), PER_UNIT):
            follower = next_in_chain(follower)  # a block that pools before its batch norm
        if not isinstance(follower, PER_UNIT):
            return f"{parent_path}/{layer.name}" if parent_path else layer.name
        layer = follower


def weighted_paths(model: keras.Model) -> list[str]:
    """Paths of the layers with a kernel (convolutions and dense layers), input to output."""
    return [path for path in layer_paths(model) if hasattr(find_layer(model, path), "kernel")]


def drawn_paths(model: keras.Model) -> list[str]:
    """The weighted layers visualize.py draws, input to output: all of a classifier's, a number reader's trunk.

    A reader's trunk is its convolutions whose maps keep a height: its `columns`
    layer squeezes each image column to one row, and the 1-D layers after it
    have no image left to show (they are probed instead: readouts).
    """
    paths = weighted_paths(model)
    if not kinds.of_model(model).column_head:
        return paths

    def keeps_height(path: str) -> bool:
        shape = find_layer(model, path).output.shape
        return len(shape) == 4 and shape[1] > 1

    return [path for path in paths if keeps_height(path)]


@dataclass(frozen=True)
class Readout:
    """A layer that is probed but not drawn (a reader's per-column layers): as Layer, its path and response."""

    path: str
    response: str


def readouts(model: keras.Model, paths: list[str]) -> list[Readout]:
    """Readout for each path, its response found as for a drawn layer (columns -> columns_relu)."""
    return [Readout(path, response_path(model, path)) for path in paths]


def describe(model: keras.Model, path: str) -> Layer:
    """How `path` can be drawn, or a UserError saying why it cannot (unknown names: introspection's LayerError)."""
    layer = find_layer(model, path)
    if isinstance(layer, keras.Model):
        raise UserError(f"{path} is a nested model, not one layer; choose one of its layers: "
                        f"{', '.join(drawn_paths(model))}.")
    shape = tuple(layer.output.shape)
    if len(shape) not in (2, 4) or isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape)):
        raise UserError(f"{path} has no weights or units to show; choose one of {', '.join(drawn_paths(model))}.")
    spatial = len(shape) == 4
    response = response_path(model, path)
    # The field of what is drawn: the response's. LayerError (a UserError) if it cannot be followed; a reader's
    # trunk pools its height more than its width.
    field = receptive_field(model, response, rectangles=True) if spatial else None
    # A dense layer whose input is the flattened image: each unit's weights form an image.
    flattening = producer(layer.input) if isinstance(layer, keras.layers.Dense) else None
    reads_pixels = isinstance(flattening, keras.layers.Flatten) and \
        isinstance(producer(flattening.input), keras.layers.InputLayer)
    return Layer(path, response, spatial, int(shape[-1]), field, reads_pixels)


def typical_content(layer: Layer, image_side: int, last_hidden: bool) -> str:
    """What units with this receptive field typically pick out in digits (the hierarchy's row labels)."""
    if layer.field is None:
        return "digits" if last_hidden else "whole-image patterns"
    # A digit fills about the middle 70 % of its image (MNIST: 20 of 28 pixels): a field up to half
    # the digit's height holds a stroke, not yet a loop.
    fraction = layer.field.size / image_side
    return "edges" if fraction <= 0.15 else "strokes" if fraction <= 0.4 else "parts/loops"


@dataclass(frozen=True)
class Scan:
    """One pass over a set of images: for every unit of every scanned layer, its top k images."""

    activity: dict[str, np.ndarray]  # response path -> (units,) mean over images of each unit's peak activation
    top: dict[str, list]  # response path -> per unit [(image, row, col, value)], highest first, as top_activations
    # (N,) predicted class, or a reader's greedy reading (N, MAX_DIGITS), digits then PADDING (models/ctc.py);
    # None when no logits were scanned
    predicted: np.ndarray | None


def scan_images(model: keras.Model, images: np.ndarray, responses: list[str], k: int,
                logits: str | None = None) -> Scan:
    """Top-k activations of every unit over all uint8 `images`, in chunks so memory stays bounded.

    Each chunk gives its own top k per unit (one entry per image); the chunks hold
    different images, so the best k of their candidates are the exact top k.
    """
    peaks = {path: [] for path in responses}
    candidates = {path: None for path in responses}
    predicted = []
    for start, outputs in chunked_activations(model, images, responses + ([logits] if logits else [])):
        if logits:
            predicted.append(predictions(outputs[-1]))
        for path, acts in zip(responses, outputs):
            peak = acts.reshape(len(acts), -1, acts.shape[-1]).max(axis=1)  # (n, units)
            peaks[path].append(peak)
            found = []
            for unit in range(acts.shape[-1]):
                # top_activations locates every image's peak in Python; hand it only the
                # chunk's k best images (in index order, so ties still go to the lower index).
                best = np.sort(np.argsort(-peak[:, unit], kind="stable")[:k])
                found.append([(int(best[index]) + start, row, col, value)
                              for index, row, col, value in top_activations(acts[best], unit, k)])
            if candidates[path] is None:
                candidates[path] = found
            else:
                candidates[path] = [sorted(old + new, key=lambda entry: -entry[3])[:k]
                                    for old, new in zip(candidates[path], found)]
    activity = {path: np.concatenate(peaks[path]).mean(axis=0) for path in responses}
    return Scan(activity, candidates, np.concatenate(predicted) if logits else None)


def predictions(scores: np.ndarray) -> np.ndarray:
    """Class scores (n, K) -> predicted classes (n,); a reader's column scores (n, T, K + 1) -> its digits read.

    A reading depends only on each column's best symbol, which logits give as well as probabilities.
    """
    if scores.ndim == 3:
        return np.asarray(greedy_read(scores)["digits"])
    return scores.argmax(axis=1)


def most_active(scan: Scan, path: str, count: int) -> list[int]:
    """The `count` units with the highest mean peak activation, most active first."""
    return [int(unit) for unit in np.argsort(-scan.activity[path], kind="stable")[:count]]


def top_crops(images: np.ndarray, layer: Layer, entries_per_unit: list, k: int):
    """(U, k, s, t, C) float patches (whole images for dense layers) and (U, k) values, NaN past the entries.

    images are the uint8 (N, H, W, C) the entries index; s x t is the receptive field's height and width.
    """
    shape = images.shape[1:3] if layer.field is None else (layer.field.size, layer.field.width)
    patches = np.zeros((len(entries_per_unit), k, *shape, images.shape[-1]), np.uint8)
    values = np.full((len(entries_per_unit), k), np.nan)
    for unit, entries in enumerate(entries_per_unit):
        for column, (index, row, col, value) in enumerate(entries[:k]):
            patches[unit, column] = images[index] if layer.field is None else \
                crop_receptive_field(images, layer.field, index, row, col)
            values[unit, column] = value
    return as_floats(patches), values


def pick_images(labels: np.ndarray, count: int, seed: int) -> list[int]:
    """Indices of `count` images, a different class (a number's first digit) each as far as possible, by seed."""
    labels = digit_targets(labels)
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    chosen = []
    for turn in range(count):
        pool = np.setdiff1d(np.flatnonzero(labels == classes[turn % len(classes)]), chosen)
        if len(pool):
            chosen.append(int(rng.choice(pool)))
    return sorted(chosen)


def model_summary(model: keras.Model) -> list[tuple[str, str, str, str, str]]:
    """(path, type, output shape, parameters, receptive field) for every layer, as the report's table shows them."""
    rows = []
    for path in layer_paths(model):
        layer = find_layer(model, path)
        shape = "x".join(str(size) for size in tuple(layer.output.shape)[1:])
        if len(layer.output.shape) == 4:
            try:
                field = receptive_field(model, path, rectangles=True)
                stride = field.stride if field.columns is None else f"{field.stride}x{field.horizontal.stride}"
                field_text = f"{field.text}, stride {stride}"
            except LayerError:
                field_text = "-"
        elif len(layer.output.shape) == 3:
            field_text = "-"  # a reader's columns: each sees a band of the image, which is not followed here
        else:
            field_text = "whole image"
        rows.append((path, type(layer).__name__, shape, f"{layer.count_params():,}", field_text))
    return rows
