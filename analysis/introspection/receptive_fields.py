"""Receptive fields: the square of input pixels one unit of a convolutional layer sees, from the layer graph.

    field = receptive_field(model, "conv2_relu")     # ReceptiveField(size, stride, offset), input pixels
    patch = crop_receptive_field(images, field, image_index, row, col)    # what unit (row, col) saw
    receptive_field(reader, "conv5_relu", rectangles=True)   # a rectangle: its columns' field in .columns
"""

from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np

from analysis.introspection.graph import (
    POINTWISE, LayerError, call_in, calls_between, is_graph_model, output_tensor, resolve, single,
)


@dataclass(frozen=True)
class ReceptiveField:
    """The square (or rectangle) of input pixels that can influence one unit of a convolutional layer.

    Unit i along rows is centred on input coordinate offset + i * stride, in
    pixel indices (fractional between pixels, negative beyond the top or left
    border); along columns the same, unless `columns` gives the columns' own
    field: a rectangle, as in a number reader's trunk, which pools its height
    more often than its width.
    """

    size: int  # side of the square (the rectangle's height), input pixels
    stride: int  # input pixels between neighbouring units
    offset: float  # input coordinate of the centre of unit 0
    columns: "ReceptiveField | None" = None  # the field along columns where it differs from the rows'; None: square

    @property
    def horizontal(self) -> "ReceptiveField":
        """The field along columns (the field itself for a square)."""
        return self.columns or self

    @property
    def width(self) -> int:
        return self.horizontal.size

    @property
    def text(self) -> str:
        """"8x8 px", or height x width for a rectangle, as images are written (32x96)."""
        return f"{self.size}x{self.width} px"

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


def receptive_field(model: keras.Model, path: str, rectangles: bool = False) -> ReceptiveField:
    """The receptive field of one unit of the layer at `path`, from the model's own layer graph.

    Follows convolutions (kernel, strides, dilation, 'same'/'valid' padding),
    max and average pooling, zero padding, cropping, merges (the union of their
    inputs' fields: a residual sum sees what either branch sees; the channels a
    concatenation takes from a narrower branch see less),
    nested models, and layers that act on each position alone (batch norm,
    activations, dropout, rescaling). Raises LayerError for a layer with no
    spatial map (after Flatten, Dense or global pooling), for a non-square field
    (unless `rectangles`: then its columns' field is in .columns), and for a
    layer it cannot reason about, naming it.
    """
    chain = resolve(model, path)
    if len(output_tensor(model, chain).shape) != 4:
        raise _whole_image(path)
    starts = []
    for tensor in model.inputs:
        if len(tensor.shape) != 4:
            raise LayerError(f"{model.name} does not take images (B, H, W, C), so {path} has no receptive field.")
        starts.append(tuple(_Axis(length, 1, 1, 0.0) for length in tensor.shape[1:3]))
    rows, cols = _chain_axes(model, chain, starts, _Asked(path, square=not rectangles))
    columns = None if _same(rows, cols) else ReceptiveField(cols.size, cols.stride, cols.offset)
    return ReceptiveField(rows.size, rows.stride, rows.offset, columns)


class _Asked(NamedTuple):
    """What receptive_field was asked for, as the walk below needs it for its errors."""

    path: str
    square: bool  # a field that differs between rows and columns is an error


def _same(rows: "_Axis", cols: "_Axis") -> bool:
    return (rows.size, rows.stride, rows.offset) == (cols.size, cols.stride, cols.offset)


def _whole_image(path: str) -> LayerError:
    return LayerError(f"{path} has no spatial receptive field; it sees the whole image.")


def _chain_axes(model, chain, input_axes, asked: _Asked):
    """(rows, cols) _Axis of chain[-1]'s output, given those of model.inputs."""
    layer, call = chain[0], call_in(model, chain[0])
    if len(chain) == 1:
        return _tensor_axes(model, [single(call.outputs, layer)], input_axes, asked)[0]
    feeding = _tensor_axes(model, call.inputs, input_axes, asked)
    return _chain_axes(layer, chain[1:], feeding, asked)


def _tensor_axes(model, tensors, input_axes, asked: _Asked) -> list:
    """(rows, cols) _Axis of each tensor of model's graph, given those of model.inputs."""
    known = {id(tensor): axes for tensor, axes in zip(model.inputs, input_axes)}
    for call in calls_between(model.inputs, tensors):
        outputs = _through(call, [known[id(tensor)] for tensor in call.inputs], asked)
        for tensor, axes in zip(call.outputs, outputs):
            known[id(tensor)] = axes
    return [known[id(tensor)] for tensor in tensors]


def _through(call, inputs: list, asked: _Asked) -> list:
    """(rows, cols) of each output of `call`'s layer, from (rows, cols) of each of its inputs."""
    layer, outputs = call.layer, call.outputs
    if is_graph_model(layer):
        return _tensor_axes(layer, layer.outputs, inputs, asked)
    path = asked.path
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
    elif not isinstance(layer, POINTWISE):
        raise LayerError(f"cannot follow the receptive field of {path} through {layer.name} "
                         f"({type(layer).__name__}): this layer type is not supported.")
    if asked.square and not _same(rows, cols):
        raise LayerError(f"{layer.name} makes the receptive field of {path} non-square (rows: size {rows.size}, "
                         f"stride {rows.stride}, offset {rows.offset}; columns: size {cols.size}, stride "
                         f"{cols.stride}, offset {cols.offset}); only square fields are supported.")
    return [(rows, cols)] * len(outputs)


def crop_receptive_field(images: np.ndarray, field: ReceptiveField, image_index: int, row: int, col: int) -> np.ndarray:
    """The (size, width, C) patch of images[image_index] that unit (row, col) sees; zeros past the border.

    images is (N, H, W, C) of any dtype; the patch has the same dtype.
    """
    image = np.asarray(images)[image_index]
    patch = np.zeros((field.size, field.width, image.shape[-1]), image.dtype)
    (top, bottom), (left, right) = field.bounds(row), field.horizontal.bounds(col)
    first_row, last_row = max(top, 0), min(bottom, image.shape[0])
    first_col, last_col = max(left, 0), min(right, image.shape[1])
    if first_row < last_row and first_col < last_col:
        patch[first_row - top:last_row - top, first_col - left:last_col - left] = \
            image[first_row:last_row, first_col:last_col]
    return patch
