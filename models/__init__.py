"""Model builders by name, each with the training recipe that suits it.

    from models import MODELS
    architecture = MODELS["convnet"]
    model = architecture.build((28, 28, 1), 10)   # uncompiled functional keras.Model

Every builder takes the input shape and class count from the data set and
returns a functional model; the layers users address have stable names (conv1,
conv2, ..., logits). An architecture's `kind` says what its model does: a
"classifier" gives class probabilities (B, K) for one digit per image, a
"reader" gives per-column probabilities (B, T, K + 1) from which a whole number
is read (models/ctc.py). Scripts look up what differs by kind in tables keyed by
it, and a reader trains on number data sets only (data.Dataset.reads_numbers).
"""

import contextlib
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable

# Before TensorFlow loads: its C++ start-up chatter (no-GPU notices, CPU features) is noise on every
# command; every script imports this package first. TF_CPP_MIN_LOG_LEVEL set by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_stderr(quiet: bool):
    """Send file descriptor 2 to /dev/null for the block (C++ writes there, below Python's sys.stderr)."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# TensorFlow 2.21 logs six lines through absl while it loads, before the level above applies;
# a failed import still raises here, after stderr is back.
with _quiet_stderr(os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"):
    import keras  # noqa: E402

from models.convnet import build_convnet  # noqa: E402
from models.mlp import build_mlp  # noqa: E402
from models.reader import build_reader  # noqa: E402

KINDS = ("classifier", "reader")


@dataclass(frozen=True)
class Architecture:
    """A builder and the training settings it was tuned with (see README, Results)."""

    build: Callable[..., keras.Model]
    epochs: int  # at least; small data sets get more, to reach min_steps
    min_steps: int  # optimiser steps a run needs whatever the data set's size
    batch_size: int  # images per step
    learning_rate: float  # peak of the one-cycle schedule
    augment: str  # "auto" or a name from data.pipeline.AUGMENTATIONS
    kind: str = "classifier"  # one of KINDS
    max_steps: int | None = None  # at most, whatever the data set's size (fewer epochs on large ones)

    @property
    def reads_numbers(self) -> bool:
        return self.kind == "reader"


def default_epochs(architecture: Architecture, steps_per_epoch: int) -> int:
    """The recipe's epochs, or more where an epoch is too short to reach min_steps, or fewer (at least one)
    where the epochs would pass max_steps."""
    epochs = max(architecture.epochs, math.ceil(architecture.min_steps / max(steps_per_epoch, 1)))
    if architecture.max_steps:
        epochs = min(epochs, max(1, architecture.max_steps // max(steps_per_epoch, 1)))
    return epochs


MODELS: dict[str, Architecture] = {
    "mlp": Architecture(build_mlp, epochs=10, min_steps=0, batch_size=1024, learning_rate=6e-3, augment="none"),
    "convnet": Architecture(build_convnet, epochs=3, min_steps=1200, batch_size=128, learning_rate=8e-3, augment="auto"),
    "reader": Architecture(build_reader, epochs=60, min_steps=0, batch_size=64, learning_rate=3e-3, augment="auto",
                           kind="reader", max_steps=3500),
}
# The registry by kind, for code (and tests) that handle one kind only.
CLASSIFIERS = {name: architecture for name, architecture in MODELS.items() if architecture.kind == "classifier"}
READERS = {name: architecture for name, architecture in MODELS.items() if architecture.kind == "reader"}
