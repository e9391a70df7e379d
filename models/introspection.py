"""What a model computes inside: activations, receptive fields, filter patterns, Grad-CAM, linear probes.

Pure computation: numpy arrays and Keras models in, numpy arrays out. Nothing
here plots or writes files (models/layer_figures.py draws these results).

    model = keras.saving.load_model("runs/convnet_mnist/model.keras")
    images = np.asarray(data.pipeline.normalise(x_test[:100]))      # float32 (100, 28, 28, 1) in [0, 1]
    [conv2] = activations(model, images, ["conv2_relu"])            # float32 (100, 14, 14, 48)
    receptive_field(model, "conv2_relu")                            # ReceptiveField(size=8, stride=2, offset=0.5)

A layer is addressed by its path: its name, or "parent/child" (recursively) for
a layer inside a nested model. Models are run in inference mode throughout:
dropout off, batch norm on its moving statistics, so each image's result is
independent of the others in its batch.
"""

import contextlib
import logging
import warnings
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from data.errors import UserError


class LayerError(UserError):
    """A layer path or unit the model does not have, or a layer a computation cannot be applied to."""


# ----------------------------------------------------------------------------- layers and paths


def layer_paths(model: keras.Model) -> list[str]:
    """Every addressable layer of `model` in graph order, InputLayers left out.

    A nested model appears as "parent", followed by its own layers as "parent/child".
    """
    paths = []
    for layer in _layers(model):
        paths.append(layer.name)
        if _is_graph_model(layer):
            paths += [f"{layer.name}/{path}" for path in layer_paths(layer)]
    return paths


def classifier_shapes(model: keras.Model, name) -> tuple[tuple[int, int, int], int]:
    """((H, W, C), K) of a model that maps one batch of images (B, H, W, C), C 1 or 3, to class scores (B, K).

    A UserError naming the model (`name`, its file) for any other model: one that takes no images, images
    of no fixed size, several inputs, or gives anything but one row of scores per image.
    """
    inputs, outputs = list(getattr(model, "inputs", None) or []), list(getattr(model, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{name} takes {len(inputs)} inputs and gives {len(outputs)} outputs; a digit classifier "
                        f"takes one batch of images and gives one row of class probabilities per image.")
    taken, given = tuple(inputs[0].shape), tuple(outputs[0].shape)
    if len(taken) != 4 or taken[-1] not in (1, 3) or None in taken[1:]:
        raise UserError(f"{name} does not take a batch of images (B, H, W, 1 or 3); it takes {taken}.")
    if len(given) != 2 or given[1] is None:
        raise UserError(f"{name} does not give class probabilities (B, K); it gives {given}.")
    return taken[1:], given[1]


def find_layer(model: keras.Model, path: str) -> keras.layers.Layer:
    """The layer at `path` ("conv1", "block/conv"); LayerError listing the valid paths if there is none."""
    return _resolve(model, path)[-1]


def feature_extractor(model: keras.Model, paths: list[str]) -> keras.Model:
    """A functional model from model.inputs to the outputs of the layers at `paths`, as a list in that order."""
    outputs = [_output_tensor(model, _resolve(model, path)) for path in paths]
    return keras.Model(_inputs(model), outputs)


def activations(model: keras.Model, images: np.ndarray, paths: list[str], batch_size: int = 500) -> list[np.ndarray]:
    """The outputs of the layers at `paths` for float32 images (N, H, W, C) in [0, 1], in inference mode.

    Returns one float32 array per path: (N, h, w, c) for convolutional layers,
    (N, units) for dense ones. Images go through in batches of `batch_size`.
    """
    images = _float_images(images)
    extractor = feature_extractor(model, paths)
    if not len(images):
        # Shapes from the graph, not from a call: on CPUs with AVX-512, TensorFlow 2.21's
        # convolution hands an empty batch back with the input's shape, (0, 28, 28, 1).
        return [np.zeros((0, *output.shape[1:]), np.float32) for output in _as_list(extractor.outputs)]
    chunks = [[] for _ in paths]
    for start in range(0, len(images), batch_size):
        outputs = _as_list(extractor(images[start:start + batch_size], training=False))
        for chunk, output in zip(chunks, outputs):
            chunk.append(np.asarray(output, dtype=np.float32))
    return [np.concatenate(chunk) for chunk in chunks]


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _is_graph_model(layer) -> bool:
    """A functional or built Sequential model, whose layers can be addressed (a subclassed model's cannot)."""
    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.outputs)
    except (AttributeError, ValueError):
        return False


def _resolve(model: keras.Model, path: str) -> list[keras.layers.Layer]:
    """The layers along `path`, outermost first: "a/b" gives [model's layer a, a's layer b]."""
    chain, current = [], model
    for name in path.split("/"):
        layer = None
        if _is_graph_model(current):
            layer = next((candidate for candidate in _layers(current) if candidate.name == name), None)
        if layer is None:
            raise LayerError(f"unknown layer {path!r}; valid layers: {', '.join(layer_paths(model))}.")
        chain.append(layer)
        current = layer
    return chain


def _keras_node(tensor):
    """The graph node that produced a symbolic KerasTensor."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _nodes_between(inputs, outputs) -> list:
    """The nodes that compute `outputs` from `inputs` (KerasTensors), each after all the nodes that feed it."""
    stop = {id(tensor) for tensor in inputs}
    order, done = [], set()
    stack = [(_keras_node(tensor), False) for tensor in outputs if id(tensor) not in stop]
    while stack:  # iterative post-order depth-first search: deep models would overflow recursion
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        stack += [(_keras_node(tensor), False) for tensor in node.input_tensors if id(tensor) not in stop]
    return order


def _call_node(model: keras.Model, layer):
    """The node at which `model`'s own graph calls `layer` (a layer may also be called outside it)."""
    nodes = [node for node in _nodes_between(model.inputs, model.outputs) if node.operation is layer]
    if len(nodes) != 1:
        raise LayerError(f"layer {layer.name} is called {len(nodes)} times in {model.name}; "
                         "only layers called once can be addressed.")
    return nodes[0]


def _single(tensors, layer):
    if len(tensors) != 1:
        raise LayerError(f"layer {layer.name} has {len(tensors)} outputs; only single-output layers can be addressed.")
    return tensors[0]


def _output_tensor(model: keras.Model, chain: list, feeding: bool = False):
    """The symbolic output of chain[-1] (its single input if `feeding`), as a function of model.inputs.

    For a layer inside a nested model, an extractor of the nested model is called
    on the tensors that feed the nested model in `model`'s graph.
    """
    layer, node = chain[0], _call_node(model, chain[0])
    if len(chain) == 1:
        return _single(node.input_tensors if feeding else node.output_tensors, layer)
    inner = keras.Model(_inputs(layer), _output_tensor(layer, chain[1:], feeding))
    fed = node.input_tensors
    return inner(fed[0] if len(fed) == 1 else fed)


def _inputs(model: keras.Model):
    """model's inputs as a tensor when it has one, so that new models over them take a plain array."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _float_images(images) -> np.ndarray:
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be float in [0, 1] (data.pipeline.normalise), not {images.dtype}")
    return images.astype(np.float32, copy=False)


def _units(layer_name: str, units, count: int) -> np.ndarray:
    units = np.asarray(units, dtype=np.int64).reshape(-1)
    bad = units[(units < 0) | (units >= count)]
    if bad.size:
        raise LayerError(f"{layer_name} has {count} units (0 to {count - 1}); unit {bad[0]} does not exist.")
    return units


# ----------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """The square of input pixels that can influence one unit of a convolutional layer.

    Unit i (along rows, and the same along columns) is centred on input
    coordinate offset + i * stride, in pixel indices (fractional between pixels,
    negative beyond the top or left border).
    """

    size: int  # side of the square, input pixels
    stride: int  # input pixels between neighbouring units
    offset: float  # input coordinate of the centre of unit 0

    def centre(self, index: int) -> float:
        return self.offset + index * self.stride

    def bounds(self, index: int) -> tuple[int, int]:
        """[start, stop) input pixel range of unit `index`; may reach past the image on either side."""
        # Always a whole number: the centre sits (size - 1) / 2 from an edge pixel.
        start = int(round(self.centre(index) - (self.size - 1) / 2))
        return start, start + self.size


@dataclass(frozen=True)
class _Axis:
    """Receptive-field arithmetic along one axis (rows or columns) of a feature map."""

    length: int | None  # units along this axis (None when the model leaves it open)
    size: int
    stride: int
    offset: float

    def window(self, layer, kernel: int, stride: int, dilation: int, padding: str) -> "_Axis":
        """After a sliding window: a convolution or pooling of `kernel` taps, `dilation` apart."""
        span = dilation * (kernel - 1) + 1  # input units one output unit spans
        if padding == "valid":
            before = 0
            length = None if self.length is None else (self.length - span) // stride + 1
        elif self.length is None and stride == 1:
            before, length = (span - 1) // 2, None
        elif self.length is None:
            raise LayerError(f"{layer.name} pads 'same' with stride {stride} on an input of open size; "
                             "its receptive field depends on the image size, which the model leaves open.")
        else:
            # TensorFlow's 'same': pad the total the last window needs, the smaller half before.
            length = -(-self.length // stride)
            before = max((length - 1) * stride + span - self.length, 0) // 2
        # Output unit 0 sees input units -before .. -before + span - 1.
        return _Axis(length, self.size + (span - 1) * self.stride, self.stride * stride,
                     self.offset + (-before + (span - 1) / 2) * self.stride)

    @staticmethod
    def union(axes: list["_Axis"]) -> "_Axis | None":
        """The field of a merge (a residual sum, a concatenation): what any of its inputs sees.

        None when the inputs' strides differ, so that no single square describes every unit.
        """
        if len({axis.stride for axis in axes}) != 1:
            return None
        start = min(axis.offset - (axis.size - 1) / 2 for axis in axes)  # of unit 0, in input pixels
        stop = max(axis.offset + (axis.size + 1) / 2 for axis in axes)
        return _Axis(axes[0].length, int(round(stop - start)), axes[0].stride, (start + stop - 1) / 2)

    def pad(self, before: int, after: int) -> "_Axis":
        """After adding `before` units in front (negative: cropping) and `after` behind."""
        length = None if self.length is None else self.length + before + after
        return _Axis(length, self.size, self.stride, self.offset - before * self.stride)


# Layers that act on each position separately, so the field passes through them unchanged.
_POINTWISE = (
    keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU,
    keras.layers.ELU, keras.layers.Activation, keras.layers.Dropout, keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.AlphaDropout,
    keras.layers.Rescaling, keras.layers.Identity,
)
_CHANNEL_AXIS_ONLY = (keras.layers.Softmax, keras.layers.LayerNormalization)  # pointwise if they act on channels
_MERGES = (
    keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply, keras.layers.Average,
    keras.layers.Maximum, keras.layers.Minimum, keras.layers.Concatenate,
)
_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOLINGS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_WHOLE_IMAGE = (
    keras.layers.Flatten, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
)


def receptive_field(model: keras.Model, path: str) -> ReceptiveField:
    """The receptive field of one unit of the layer at `path`, from the model's own layer graph.

    Follows convolutions (kernel, strides, dilation, 'same'/'valid' padding),
    max and average pooling, zero padding, cropping, merges (the union of their
    inputs' fields: a residual sum sees what either branch sees; the channels a
    concatenation takes from a narrower branch see less),
    nested models, and layers that act on each position alone (batch norm,
    activations, dropout, rescaling). Raises LayerError for a layer with no
    spatial map (after Flatten, Dense or global pooling), for a non-square field,
    and for a layer it cannot reason about, naming it.
    """
    chain = _resolve(model, path)
    if len(_output_tensor(model, chain).shape) != 4:
        raise _whole_image(path)
    starts = []
    for tensor in model.inputs:
        if len(tensor.shape) != 4:
            raise LayerError(f"{model.name} does not take images (B, H, W, C), so {path} has no receptive field.")
        starts.append(tuple(_Axis(length, 1, 1, 0.0) for length in tensor.shape[1:3]))
    rows, cols = _chain_axes(model, chain, starts, path)
    return ReceptiveField(rows.size, rows.stride, rows.offset)


def _whole_image(path: str) -> LayerError:
    return LayerError(f"{path} has no spatial receptive field; it sees the whole image.")


def _chain_axes(model, chain, input_axes, path):
    """(rows, cols) _Axis of chain[-1]'s output, given those of model.inputs."""
    layer, node = chain[0], _call_node(model, chain[0])
    if len(chain) == 1:
        return _tensor_axes(model, [_single(node.output_tensors, layer)], input_axes, path)[0]
    feeding = _tensor_axes(model, node.input_tensors, input_axes, path)
    return _chain_axes(layer, chain[1:], feeding, path)


def _tensor_axes(model, tensors, input_axes, path) -> list:
    """(rows, cols) _Axis of each tensor of model's graph, given those of model.inputs."""
    known = {id(tensor): axes for tensor, axes in zip(model.inputs, input_axes)}
    for node in _nodes_between(model.inputs, tensors):
        outputs = _through(node, [known[id(tensor)] for tensor in node.input_tensors], path)
        for tensor, axes in zip(node.output_tensors, outputs):
            known[id(tensor)] = axes
    return [known[id(tensor)] for tensor in tensors]


def _through(node, inputs: list, path: str) -> list:
    """(rows, cols) of each output of the layer called at `node`, from (rows, cols) of each of its inputs."""
    layer = node.operation
    outputs = node.output_tensors
    if _is_graph_model(layer):
        return _tensor_axes(layer, layer.outputs, inputs, path)
    if isinstance(layer, _WHOLE_IMAGE) or any(len(tensor.shape) != 4 for tensor in outputs):
        raise _whole_image(path)
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise LayerError(f"cannot follow the receptive field of {path} through {layer.name}: "
                         "only channels_last layers are supported.")
    rows, cols = inputs[0]
    if isinstance(layer, _MERGES):
        rows, cols = (_Axis.union(list(axes)) for axes in zip(*inputs))
        if rows is None or cols is None:
            raise LayerError(f"cannot follow the receptive field of {path} through {layer.name}: "
                             "it merges inputs of different strides.")
    elif isinstance(layer, _CONVOLUTIONS):
        rows, cols = (axis.window(layer, kernel, stride, dilation, layer.padding) for axis, kernel, stride, dilation
                      in zip(inputs[0], layer.kernel_size, layer.strides, layer.dilation_rate))
    elif isinstance(layer, _POOLINGS):
        rows, cols = (axis.window(layer, kernel, stride, 1, layer.padding)
                      for axis, kernel, stride in zip(inputs[0], layer.pool_size, layer.strides))
    elif isinstance(layer, keras.layers.ZeroPadding2D):
        rows, cols = (axis.pad(*sides) for axis, sides in zip(inputs[0], layer.padding))
    elif isinstance(layer, keras.layers.Cropping2D):
        rows, cols = (axis.pad(-before, -after) for axis, (before, after) in zip(inputs[0], layer.cropping))
    elif isinstance(layer, keras.layers.Dense):
        pass  # on a (B, h, w, c) map a dense layer acts on each position's channels: a 1x1 convolution
    elif isinstance(layer, _CHANNEL_AXIS_ONLY) and np.all(np.mod(layer.axis, 4) == 3):
        pass
    elif not isinstance(layer, _POINTWISE):
        raise LayerError(f"cannot follow the receptive field of {path} through {layer.name} "
                         f"({type(layer).__name__}): this layer type is not supported.")
    if (rows.size, rows.stride, rows.offset) != (cols.size, cols.stride, cols.offset):
        raise LayerError(f"{layer.name} makes the receptive field of {path} non-square (rows: size {rows.size}, "
                         f"stride {rows.stride}, offset {rows.offset}; columns: size {cols.size}, stride "
                         f"{cols.stride}, offset {cols.offset}); only square fields are supported.")
    return [(rows, cols)] * len(outputs)


# ----------------------------------------------------------------------------- strongest activations


def top_activations(layer_activations: np.ndarray, unit: int, k: int) -> list[tuple[int, int | None, int | None, float]]:
    """The k images where channel `unit` responds most, strongest first, as (image_index, row, col, value).

    layer_activations is (N, h, w, c) or (N, units). Each image appears at most
    once, at its strongest position; for (N, units) row and col are None.
    """
    layer_activations = np.asarray(layer_activations)
    [unit] = _units("this layer", [unit], layer_activations.shape[-1])
    if layer_activations.ndim == 2:
        best = layer_activations[:, unit]
        positions = [(None, None)] * len(best)
    else:
        maps = layer_activations[..., unit].reshape(len(layer_activations), -1)  # (N, h*w)
        where = maps.argmax(axis=1)
        best = maps[np.arange(len(maps)), where]
        positions = [tuple(int(i) for i in np.unravel_index(w, layer_activations.shape[1:3])) for w in where]
    order = np.argsort(-best, kind="stable")[:k]  # stable: ties go to the lower image index
    return [(int(i), *positions[i], float(best[i])) for i in order]


def crop_receptive_field(images: np.ndarray, field: ReceptiveField, image_index: int, row: int, col: int) -> np.ndarray:
    """The (size, size, C) patch of images[image_index] that unit (row, col) sees; zeros past the border.

    images is (N, H, W, C) of any dtype; the patch has the same dtype.
    """
    image = np.asarray(images)[image_index]
    patch = np.zeros((field.size, field.size, image.shape[-1]), image.dtype)
    (top, bottom), (left, right) = field.bounds(row), field.bounds(col)
    first_row, last_row = max(top, 0), min(bottom, image.shape[0])
    first_col, last_col = max(left, 0), min(right, image.shape[1])
    if first_row < last_row and first_col < last_col:
        patch[first_row - top:last_row - top, first_col - left:last_col - left] = \
            image[first_row:last_row, first_col:last_col]
    return patch


# ----------------------------------------------------------------------------- filter patterns


RELU_LEAK = 0.01  # slope of the ascent's leaky ReLU below zero; the gradient is normalised, so small is enough


def filter_patterns(
    model: keras.Model,
    path: str,
    units: list[int],
    steps: int = 64,
    step_size: float = 0.05,
    seed: int = 0,
    jitter: int = 2,
    blur_every: int = 4,
    noise: float = 0.1,
    start_level: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input images that maximise the mean activation of each unit, by gradient ascent.

    Unit i is image i of one batch, optimised together in one tf.function.
    Each image starts at `start_level` (mid-grey leaves room to move both ways)
    plus uniform noise of total width `noise`, and takes `steps` steps of
    `step_size` (root mean square change per pixel: the gradient is normalised
    per image), on a copy rolled by up to `jitter` pixels, clipped to [0, 1],
    with a light 3x3 blur every `blur_every` steps. Jitter and blur keep the
    pattern from becoming pixel-level noise that only this exact alignment excites.

    The objective is the channel mean over positions for a convolutional layer,
    the unit itself for a dense one. Returns (patterns float32 (U, H, W, C) in
    [0, 1], start_activation float32 (U,), end_activation float32 (U,)), the
    activations measured without jitter. A unit that no image in [0, 1] can
    excite ends where it started.
    """
    chain = _resolve(model, path)
    # Where a ReLU's output is zero it has no gradient, so a unit silent all over
    # the start image could never move. For a layer that ends in a plain ReLU
    # (a ReLU layer, or a dense or convolution layer with activation="relu"), the
    # ascent follows a leaky ReLU of what the ReLU receives instead: the same
    # direction wherever the unit is active, a small push up where it is not.
    # Activations reported are the layer's own.
    before_relu = _before_relu(chain[-1])
    leaky = before_relu is not None
    extractor = keras.Model(_inputs(model), _output_tensor(model, chain, feeding=leaky))
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        raise LayerError(f"{model.name} leaves its input size open; filter_patterns needs a fixed one.")
    channels = _output_tensor(model, chain).shape[-1]
    units = tf.constant(_units(path, units, channels), tf.int32)
    count = int(units.shape[0])

    def unit_maps(images):  # (U, H, W, C) -> (U, positions): image i's unit i; a dense layer has one position
        values = extractor(images, training=False)
        if leaky:
            values = before_relu(values)
        return tf.gather(tf.reshape(values, (count, -1, channels)), units, axis=2, batch_dims=1)

    def activation(images):  # (U,) each unit's mean activation, as the layer computes it
        values = unit_maps(images)
        return tf.reduce_mean(tf.nn.relu(values) if leaky else values, axis=1)

    def ascent_objective(images):
        values = unit_maps(images)
        return tf.reduce_mean(tf.nn.leaky_relu(values, RELU_LEAK) if leaky else values, axis=1)

    blur_kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16
    blur_kernel = tf.constant(np.tile(blur_kernel[:, :, None, None], (1, 1, shape[-1], 1)))  # (3, 3, C, 1)

    def blur(images):
        padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # edges stay bright
        return tf.nn.depthwise_conv2d(padded, blur_kernel, strides=[1, 1, 1, 1], padding="VALID")

    @tf.function
    def ascend(images):
        for step in tf.range(steps):
            shift = tf.random.stateless_uniform([2], seed=tf.stack([seed, step]), minval=-jitter,
                                                maxval=jitter + 1, dtype=tf.int32)
            with tf.GradientTape() as tape:
                tape.watch(images)
                value = tf.reduce_sum(ascent_objective(tf.roll(images, shift, axis=[1, 2])))
            # The images do not interact (inference mode), so the sum's gradient
            # with respect to image i is that of unit i alone.
            gradient = tape.gradient(value, images)
            gradient /= tf.sqrt(tf.reduce_mean(tf.square(gradient), axis=[1, 2, 3], keepdims=True)) + 1e-8
            images = tf.clip_by_value(images + step_size * gradient, 0.0, 1.0)
            if (step + 1) % blur_every == 0:
                images = blur(images)
        return images

    start = np.random.default_rng(seed).uniform(start_level - noise / 2, start_level + noise / 2, (count, *shape))
    start = tf.constant(start, tf.float32)
    with _quiet_retracing():
        patterns = ascend(start)
    return patterns.numpy(), activation(start).numpy(), activation(patterns).numpy()


def _before_relu(layer):
    """A function from the layer's input to what its final plain ReLU receives; None if it ends otherwise."""
    if isinstance(layer, keras.layers.ReLU):
        plain = not layer.max_value and not layer.negative_slope and not layer.threshold
        return _identity if plain else None
    if getattr(layer, "activation", None) is not keras.activations.relu:
        return None
    if isinstance(layer, keras.layers.Activation):
        return _identity
    if isinstance(layer, keras.layers.Dense):  # as Dense.call computes it, without the activation
        return lambda inputs: inputs @ layer.kernel + (0 if layer.bias is None else layer.bias)
    if isinstance(layer, keras.layers.Conv2D) and layer.data_format == "channels_last":
        return lambda inputs: layer.convolution_op(inputs, layer.kernel) + (layer.bias if layer.use_bias else 0)
    return None


@contextlib.contextmanager
def _quiet_retracing():
    """Silence TensorFlow's warning about frequent retracing while the block runs.

    filter_patterns traces a new tf.function for every call (each has its own
    model and units), which TensorFlow reports as excessive retracing after a few
    calls; here that is expected.
    """
    def keep(record):
        return "triggered tf.function retracing" not in record.getMessage()

    logger = logging.getLogger("tensorflow")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


# ----------------------------------------------------------------------------- Grad-CAM


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    conv_path: str,
    class_indices: np.ndarray | None = None,
    logits_path: str = "logits",
    batch_size: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heatmaps: where in each image the layer at conv_path found evidence for a class.

    With A the layer's (h, w, c) map and y the class's logit (pre-softmax, so a
    confident prediction does not flatten the gradient): weights_c = mean over
    positions of dy/dA_c, cam = relu(sum_c weights_c A_c), upsampled bilinearly
    to the image size, then divided by its maximum (an all-zero map stays zero).
    class_indices (N,) int defaults to each image's predicted class. The logits
    layer must be in the outer model or in the same nested model as conv_path
    (a classifier wrapped in another model). Returns (heatmaps float32 (N, H, W)
    in [0, 1], class_indices int64 (N,)).
    """
    images = _float_images(images)
    conv_chain, logits_chain = _resolve(model, conv_path), _resolve(model, logits_path)
    # Where both layers sit in the same nested model, work inside it, on what the outer graph feeds it.
    feeds = []  # models, each from one level's inputs to what it feeds the nested model below
    while len(conv_chain) > 1 and len(logits_chain) > 1 and conv_chain[0] is logits_chain[0]:
        feeding = _call_node(model, conv_chain[0]).input_tensors
        feeds.append(_submodel(_inputs(model), feeding[0] if len(feeding) == 1 else feeding))
        model, conv_chain, logits_chain = conv_chain[0], conv_chain[1:], logits_chain[1:]
    maps_tensor = _output_tensor(model, conv_chain)
    if len(maps_tensor.shape) != 4:
        raise LayerError(f"grad_cam needs a layer with a spatial map; {conv_path} has none.")
    if len(logits_chain) > 1:
        raise LayerError(f"grad_cam needs {logits_path} in the outer model or in the same nested model as {conv_path}.")
    logits = _output_tensor(model, logits_chain)
    if len(conv_chain) == 1:
        # One model computes both, so the gradient flows through the real graph, skips included.
        both = keras.Model(_inputs(model), [maps_tensor, logits])
        bottom, head = None, None
    else:
        bottom = keras.Model(_inputs(model), maps_tensor)
        head = _head(model, conv_chain, logits, conv_path)

    heatmaps, chosen_classes = [], []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start:start + batch_size])
        for feed in feeds:
            batch = feed(batch, training=False)
        chosen = None if class_indices is None else np.asarray(class_indices[start:start + batch_size], np.int64)
        with tf.GradientTape() as tape:
            if bottom is None:
                tape.watch(batch)
                maps, scores = both(batch, training=False)
            else:
                maps = bottom(batch, training=False)
                tape.watch(maps)
                scores = head(maps)
            if chosen is None:
                chosen = np.argmax(scores.numpy(), axis=1)
            target = tf.gather(scores, chosen, axis=1, batch_dims=1)  # (B,)
        gradients = tape.gradient(target, maps)  # (B, h, w, c); images are independent
        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)  # (B, 1, 1, c)
        cams = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1, keepdims=True))  # (B, h, w, 1)
        cams = tf.image.resize(cams, images.shape[1:3], method="bilinear")[..., 0]  # half-pixel centres
        peaks = tf.reduce_max(cams, axis=[1, 2], keepdims=True)
        heatmaps.append(tf.math.divide_no_nan(cams, peaks).numpy())
        chosen_classes.append(chosen)
    if not heatmaps:
        return np.zeros((0, *images.shape[1:3]), np.float32), np.zeros(0, np.int64)
    return np.concatenate(heatmaps).astype(np.float32), np.concatenate(chosen_classes).astype(np.int64)


def _head(model, chain, target, path):
    """A function from chain[-1]'s output to `target` (a tensor of model's graph), in inference mode."""
    layer, node = chain[0], _call_node(model, chain[0])
    start = _single(node.output_tensors, layer)
    try:
        outer = _submodel(start, target)
        inner = _head(layer, chain[1:], _single(layer.outputs, layer), path) if len(chain) > 1 else None
    except ValueError as error:  # Keras: "Graph disconnected"
        raise LayerError(f"cannot compute Grad-CAM at {path}: other layers bypass it on the way to the "
                         "logits; choose a layer that all of the image's information passes through.") from error
    if inner is None:
        return lambda maps: outer(maps, training=False)
    return lambda maps: outer(inner(maps), training=False)


def _submodel(inputs, outputs):
    """A model from KerasTensors `inputs` to `outputs` of one graph; the identity where they are the same."""
    return _identity if outputs is inputs else keras.Model(inputs, outputs)


def _identity(tensor, training=False):
    return tensor


# ----------------------------------------------------------------------------- linear probes


def pooled_features(layer_activations: np.ndarray) -> np.ndarray:
    """(N, h, w, c) -> float32 (N, 2c): per channel the global average, then the global maximum.

    (N, units) passes through unchanged (as float32).
    """
    layer_activations = np.asarray(layer_activations, dtype=np.float32)
    if layer_activations.ndim == 2:
        return layer_activations
    return np.concatenate([layer_activations.mean(axis=(1, 2)), layer_activations.max(axis=(1, 2))], axis=1)


def linear_probe(train_features, train_labels, test_features, test_labels, seed: int = 0,
                 max_iter: int = 300) -> float:
    """Test accuracy of a logistic regression on standardised features, trained on the train features.

    Features are (N, F) floats, labels (N,) ints. How linearly a layer's features
    separate the classes says how much of the answer that layer already holds.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    # One BLAS thread: with TensorFlow loaded in the same process, two OpenBLAS threads
    # made a 5,000 x 192 probe take 8 s instead of 0.3 s on the project's 2-core machine.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # A probe stopped at max_iter still measures separability; the warning would only be noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(np.asarray(train_features), np.asarray(train_labels))
        return float(probe.score(np.asarray(test_features), np.asarray(test_labels)))
