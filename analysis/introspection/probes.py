"""Linear probes: how much of the answer a layer's output already holds, as one test accuracy.

    probe = probe_layers(model, digits, [survey.describe(model, "conv2")], 5000, 2000, seed=0)   # probe.json
    linear_probe(train_features, train_labels, test_features, test_labels)                       # accuracy

A logistic regression (scikit-learn) is trained on each layer's output, convolutional
maps reduced to their mean and maximum per channel. On whole numbers (labels
(N, MAX_DIGITS)) the probe reads the number's first digit (`digit_targets`):
one class per image, as for a digit, and it names the digit the reader must
place at the left.
"""

import warnings

import keras
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # installed with scikit-learn

from analysis.introspection.forward import chunked_activations


TARGETS = {False: "digit", True: "first digit"}  # what a probe reads, by whether the labels are whole numbers


def digit_targets(labels: np.ndarray) -> np.ndarray:
    """One class per image: digit labels (N,) as they are, whole numbers (N, L) (digits, then -1) their first digit."""
    labels = np.asarray(labels)
    return labels[:, 0] if labels.ndim == 2 else labels


def pooled_features(layer_activations: np.ndarray) -> np.ndarray:
    """(N, h, w, c) or a reader's columns (N, T, c) -> float32 (N, 2c): per channel the average, then the maximum.

    (N, units) passes through unchanged (as float32).
    """
    layer_activations = np.asarray(layer_activations, dtype=np.float32)
    if layer_activations.ndim == 2:
        return layer_activations
    positions = tuple(range(1, layer_activations.ndim - 1))
    return np.concatenate([layer_activations.mean(axis=positions), layer_activations.max(axis=positions)], axis=1)


def linear_probe(train_features, train_labels, test_features, test_labels, seed: int = 0,
                 max_iter: int = 300) -> float:
    """Test accuracy of a logistic regression on standardised features, trained on the train features.

    Features are (N, F) floats, labels (N,) ints. How linearly a layer's features
    separate the classes says how much of the answer that layer already holds.
    """
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    # One BLAS thread: with TensorFlow loaded in the same process, two OpenBLAS threads
    # made a 5,000 x 192 probe take 8 s instead of 0.3 s on the project's 2-core machine.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # A probe stopped at max_iter still measures separability; the warning would only be noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(np.asarray(train_features), np.asarray(train_labels))
        return float(probe.score(np.asarray(test_features), np.asarray(test_labels)))


def probe_layers(model: keras.Model, digits, layers: list, train_count: int, test_count: int,
                 seed: int) -> dict:
    """Linear-probe test accuracy of each layer's response, as written to probe.json.

    layers are survey.Layer or survey.Readout (their path names the row, their
    response is probed), digits a data.Dataset. The probes train on
    `train_count` images drawn at random (by seed) from the training split and
    are tested on `test_count` from the test split, reading `target` (the digit,
    or a number's first digit: digit_targets); `majority` is the share of the
    commonest target among the test images, what a probe that learned nothing
    would score at best.
    """
    rng = np.random.default_rng(seed)
    train_index = np.sort(rng.permutation(len(digits.y_train))[:train_count])
    test_index = np.sort(rng.permutation(len(digits.y_test))[:test_count])
    paths = [layer.response for layer in layers]

    def features(images):  # one (N, F) array per layer, pooled chunk by chunk to keep memory small
        pooled = [[pooled_features(acts) for acts in outputs]
                  for _, outputs in chunked_activations(model, images, paths)]
        return [np.concatenate(per_layer) for per_layer in zip(*pooled)]

    numbers = np.asarray(digits.y_test).ndim == 2
    method = "logistic regression on each layer's output; convolutional maps reduced to mean and max per channel"
    if numbers:
        method += "; per-column layers to mean and max per channel over the columns"
    results = []
    train_labels, test_labels = digit_targets(digits.y_train[train_index]), digit_targets(digits.y_test[test_index])
    train_features, test_features = features(digits.x_train[train_index]), features(digits.x_test[test_index])
    for layer, train_x, test_x in zip(layers, train_features, test_features):
        accuracy = linear_probe(train_x, train_labels, test_x, test_labels, seed=seed)
        results.append({"layer": layer.path, "response": layer.response, "features": int(train_x.shape[1]),
                        "accuracy": float(accuracy)})
    counts = np.unique(test_labels, return_counts=True)[1]
    majority = float(counts.max() / len(test_labels)) if len(test_labels) else 0.0
    return {
        "dataset": digits.name,
        "train_images": len(train_index),
        "test_images": len(test_index),
        "seed": seed,
        "target": TARGETS[numbers],
        "majority": majority,
        "method": method,
        "layers": results,
    }
