"""The registry: each model builder by name, with the training recipe that suits it (see models/__init__.py).

`from models import MODELS` imports it, and Keras with it.
"""

import math
from dataclasses import dataclass
from collections.abc import Callable

import keras

from harness.kinds import CLASSIFIER, KINDS, READER, Kind
from models.convnet import build_convnet
from models.mlp import build_mlp
from models.reader import build_reader

@dataclass(frozen=True)
class Architecture:
    """A builder and the training settings it was tuned with (see README, Results)."""

    build: Callable[..., keras.Model]
    epochs: int  # passes over the training set; default_epochs adds some to reach min_steps, or cuts to max_steps
    min_steps: int  # optimiser steps a run needs whatever the data set's size
    batch_size: int  # images per step
    learning_rate: float  # peak of the one-cycle schedule
    augment: str  # "auto" or a name from data.pipeline.AUGMENTATIONS
    kind: Kind = CLASSIFIER  # what its model does (harness/kinds.py)
    max_steps: int | None = None  # at most, whatever the data set's size (fewer epochs on large ones)
    # Epochs on named data sets where the recipe's were measured to fall short (replacing `epochs`).
    epochs_on: tuple[tuple[str, int], ...] = ()


def default_epochs(architecture: Architecture, steps_per_epoch: int, dataset: str = "") -> int:
    """The recipe's epochs (on `dataset`, if it names it in epochs_on), or more where an epoch is too short to
    reach min_steps, or fewer (at least one) where the epochs would pass max_steps."""
    epochs = dict(architecture.epochs_on).get(dataset, architecture.epochs)
    epochs = max(epochs, math.ceil(architecture.min_steps / max(steps_per_epoch, 1)))
    if architecture.max_steps:
        epochs = min(epochs, max(1, architecture.max_steps // max(steps_per_epoch, 1)))
    return epochs


MODELS: dict[str, Architecture] = {
    "mlp": Architecture(build_mlp, epochs=8, min_steps=0, batch_size=1024, learning_rate=8e-3, augment="none"),
    # On handwriting (MNIST + CVL), 3 epochs left MNIST at 99.38 % (median of seeds 0-2), 6 reach 99.44 %
    # and the CVL writers' 97.24 % (docs/handwriting.md).
    "convnet": Architecture(build_convnet, epochs=3, min_steps=630, batch_size=256, learning_rate=1.6e-2,
                            augment="auto", epochs_on=(("handwriting", 6),)),
    "reader": Architecture(build_reader, epochs=60, min_steps=0, batch_size=64, learning_rate=3e-3, augment="auto",
                           kind=READER, max_steps=3500),
}
# The registry by kind, for code (and tests) that handle one kind only.
CLASSIFIERS = {name: architecture for name, architecture in MODELS.items() if architecture.kind is CLASSIFIER}
READERS = {name: architecture for name, architecture in MODELS.items() if architecture.kind is READER}
__all__ = ["CLASSIFIERS", "KINDS", "MODELS", "READERS", "Architecture", "default_epochs"]
