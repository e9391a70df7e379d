"""What a model computes inside: activations, receptive fields, filter patterns, Grad-CAM, linear probes.

Pure computation: numpy arrays and Keras models in, numpy arrays out. Nothing
here plots or writes files (analysis/drawing draws these results).

    model = keras.saving.load_model("runs/convnet_mnist/model.keras")
    images = as_floats(x_test[:100])                                # float32 (100, H, W, C) in [0, 1]
    [conv2] = activations(model, images, ["conv2_relu"])            # float32 (100, h, w, c)
    receptive_field(model, "conv2_relu")                            # ReceptiveField(size, stride, offset)
    digit_evidence(reader, images, "conv5_relu").heatmaps           # float32 (100, 6, H, W): a reader's digits

One module a job: graph (layer paths and the layer graph; the only module that
reads Keras's private attributes), forward (activations: the forward pass, and
the images that excite each unit most), receptive_fields, patterns (gradient
ascent), gradcam, evidence (Grad-CAM's idea for each digit a number reader
reads), probes, and survey (what visualize.py shows of each layer). A
layer is addressed by its path: its name, or "parent/child" (recursively) for a
layer inside a nested model.
"""

from analysis.introspection.evidence import DigitEvidence, digit_evidence
from analysis.introspection.forward import activations, as_floats, model_outputs, top_activations
from analysis.introspection.gradcam import grad_cam, gradcam_model
from analysis.introspection.graph import LayerError, classifier_shapes, feature_extractor, find_layer, layer_paths
from analysis.introspection.patterns import RELU_LEAK, filter_patterns
from analysis.introspection.probes import linear_probe, pooled_features, probe_layers
from analysis.introspection.receptive_fields import ReceptiveField, crop_receptive_field, receptive_field

__all__ = [
    "RELU_LEAK", "DigitEvidence", "LayerError", "ReceptiveField", "activations", "as_floats", "classifier_shapes",
    "crop_receptive_field", "digit_evidence", "feature_extractor", "filter_patterns", "find_layer", "grad_cam",
    "gradcam_model", "layer_paths", "linear_probe", "model_outputs", "pooled_features", "probe_layers",
    "receptive_field", "top_activations",
]
