"""A model's layers and the graph that joins them: paths, lookup, and walking from layer to layer.

    find_layer(model, "convnet/conv2")            # a layer inside the nested model "convnet"
    calls_between(model.inputs, model.outputs)    # every layer call, each after the calls that feed it
    consumers(find_layer(model, "conv2"))         # [conv2_bn]

A layer is addressed by its path: its name, or "parent/child" (recursively) for
a layer inside a nested model. This is the only module that reads Keras's
private graph attributes (_keras_history, _inbound_nodes, _outbound_nodes);
the rest of the package asks the functions here.
"""

from dataclasses import dataclass

import keras

from harness.errors import UserError


class LayerError(UserError):
    """A layer path or unit the model does not have, or a layer a computation cannot be applied to."""


# Layers that act on each unit alone: a convolution's or dense layer's response runs through them,
# and a unit after them is the same unit as before.
PER_UNIT = (
    keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation, keras.layers.LeakyReLU,
    keras.layers.ELU, keras.layers.PReLU,
)
# Pools make output channel c from input channel c alone (a window of it): a unit keeps its meaning through
# them, though not its receptive field.
POOLS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
# Layers that act on each position separately, so a receptive field passes through them unchanged:
# the per-unit ones, and those that at most rescale or drop units (dropout is the identity at inference).
POINTWISE = PER_UNIT + (
    keras.layers.Dropout, keras.layers.SpatialDropout2D, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
    keras.layers.AlphaDropout, keras.layers.Rescaling, keras.layers.Identity,
)


# ----------------------------------------------------------------------------- layers and paths


def layer_paths(model: keras.Model) -> list[str]:
    """Every addressable layer of `model` in graph order, InputLayers left out.

    A nested model appears as "parent", followed by its own layers as "parent/child".
    """
    paths = []
    for layer in _layers(model):
        paths.append(layer.name)
        if is_graph_model(layer):
            paths += [f"{layer.name}/{path}" for path in layer_paths(layer)]
    return paths


def classifier_shapes(model: keras.Model, name) -> tuple[tuple[int, int, int], int]:
    """((H, W, C), K) of a model that maps one batch of images (B, H, W, C), C 1 or 3, to class scores (B, K).

    A number reader's output (B, T, K + 1) counts too: K is then its digits, without the CTC blank
    (models/ctc.py). A UserError naming the model (`name`, its file) for any other model: one that takes
    no images, images of no fixed size, several inputs, or gives anything but one row of scores per image
    (or per image column).
    """
    inputs, outputs = list(getattr(model, "inputs", None) or []), list(getattr(model, "outputs", None) or [])
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{name} takes {len(inputs)} inputs and gives {len(outputs)} outputs; a digit classifier "
                        f"takes one batch of images and gives one row of class probabilities per image.")
    taken, given = tuple(inputs[0].shape), tuple(outputs[0].shape)
    if len(taken) != 4 or taken[-1] not in (1, 3) or None in taken[1:]:
        raise UserError(f"{name} does not take a batch of images (B, H, W, 1 or 3); it takes {taken}.")
    if len(given) == 3 and None not in given[1:] and given[2] > 1:
        return taken[1:], given[2] - 1
    if len(given) != 2 or given[1] is None:
        raise UserError(f"{name} does not give class probabilities (B, K); it gives {given}.")
    return taken[1:], given[1]


def find_layer(model: keras.Model, path: str) -> keras.layers.Layer:
    """The layer at `path` ("conv1", "block/conv"); LayerError listing the valid paths if there is none."""
    return resolve(model, path)[-1]


def resolve(model: keras.Model, path: str) -> list[keras.layers.Layer]:
    """The layers along `path`, outermost first: "a/b" gives [model's layer a, a's layer b]."""
    chain, current = [], model
    for name in path.split("/"):
        layer = None
        if is_graph_model(current):
            layer = next((candidate for candidate in _layers(current) if candidate.name == name), None)
        if layer is None:
            raise LayerError(f"unknown layer {path!r}; valid layers: {', '.join(layer_paths(model))}.")
        chain.append(layer)
        current = layer
    return chain


def feature_extractor(model: keras.Model, paths: list[str]) -> keras.Model:
    """A functional model from model.inputs to the outputs of the layers at `paths`, as a list in that order."""
    outputs = [output_tensor(model, resolve(model, path)) for path in paths]
    return keras.Model(inputs_of(model), outputs)


def is_graph_model(layer) -> bool:
    """A functional or built Sequential model, whose layers can be addressed (a subclassed model's cannot)."""
    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.outputs)
    except (AttributeError, ValueError):
        return False


def inputs_of(model: keras.Model):
    """model's inputs as a tensor when it has one, so that new models over them take a plain array."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


# ----------------------------------------------------------------------------- walking the graph


@dataclass(frozen=True)
class Call:
    """One call of a layer in a model's graph, with the symbolic tensors (KerasTensors) it took and gave."""

    layer: keras.layers.Layer
    inputs: list
    outputs: list


def calls_between(inputs, outputs) -> list[Call]:
    """The calls that compute `outputs` from `inputs` (KerasTensors), each after all the calls that feed it."""
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
    return [_call(node) for node in order]


def call_in(model: keras.Model, layer) -> Call:
    """The call by which `model`'s own graph applies `layer` (a layer may also be called outside it)."""
    calls = [call for call in calls_between(model.inputs, model.outputs) if call.layer is layer]
    if len(calls) != 1:
        raise LayerError(f"layer {layer.name} is called {len(calls)} times in {model.name}; "
                         "only layers called once can be addressed.")
    return calls[0]


def calls_of(layer) -> list[Call]:
    """Every call of `layer`, in whichever graph it was made, in the order it was made."""
    return [_call(node) for node in layer._inbound_nodes]


def producer(tensor):
    """The layer (or InputLayer) whose call gave the KerasTensor `tensor`."""
    return tensor._keras_history.operation


def consumers(layer) -> list:
    """The distinct layers called on `layer`'s output, in whichever graph, in the order they were called."""
    found = {id(node.operation): node.operation for node in layer._outbound_nodes}
    return list(found.values())


def single(tensors, layer):
    """The one tensor of `tensors`, which `layer` took or gave; LayerError if it has several."""
    if len(tensors) != 1:
        raise LayerError(f"layer {layer.name} has {len(tensors)} outputs; only single-output layers can be addressed.")
    return tensors[0]


def output_tensor(model: keras.Model, chain: list, feeding: bool = False):
    """The symbolic output of chain[-1] (its single input if `feeding`), as a function of model.inputs.

    For a layer inside a nested model, an extractor of the nested model is called
    on the tensors that feed the nested model in `model`'s graph.
    """
    layer, call = chain[0], call_in(model, chain[0])
    if len(chain) == 1:
        return single(call.inputs if feeding else call.outputs, layer)
    inner = keras.Model(inputs_of(layer), output_tensor(layer, chain[1:], feeding))
    return inner(call.inputs[0] if len(call.inputs) == 1 else call.inputs)


def submodel(inputs, outputs):
    """A model from KerasTensors `inputs` to `outputs` of one graph; the identity where they are the same."""
    return identity if outputs is inputs else keras.Model(inputs, outputs)


def identity(tensor, training=False):
    return tensor


def _keras_node(tensor):
    """The graph node that produced a symbolic KerasTensor."""
    operation, node_index, _ = tensor._keras_history
    return operation._inbound_nodes[node_index]


def _call(node) -> Call:
    return Call(node.operation, list(node.input_tensors), list(node.output_tensors))
