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
import importlib
import importlib.abc
import os
import sys

# Before TensorFlow loads: its C++ start-up chatter (no-GPU notices, CPU features) is noise on every
# command; every script imports this package first. TF_CPP_MIN_LOG_LEVEL set by the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Keras loads when first needed, not with this package: a script that only runs a LiteRT file (predict.py)
# uses these modules without importing TensorFlow, which takes seconds. The registry's names come from
# models.registry on first use (PEP 562).
WITHOUT_KERAS = {"models.atomic", "models.cli", "models.litert", "models.runs"}
REGISTRY_NAMES = ("MODELS", "CLASSIFIERS", "READERS", "KINDS", "Architecture", "default_epochs")


@contextlib.contextmanager
def quiet_stderr(quiet: bool):
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


def load_keras():
    """Keras (and TensorFlow under it), imported with TensorFlow's start-up chatter kept off stderr.

    TensorFlow 2.21 logs six lines through absl while it loads, before the level above applies; a failed
    import still raises here, after stderr is back. Modules import keras themselves once this ran.
    """
    with quiet_stderr(os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"):
        import keras
    return keras


class _KerasFirst(importlib.abc.MetaPathFinder):
    """Imports Keras quietly (load_keras) just before the first module of this project that needs it: any
    models.* module but WITHOUT_KERAS, and data.pipeline. It finds nothing itself, and then steps aside."""

    def find_spec(self, name, path=None, target=None):
        if (name.startswith("models.") and name not in WITHOUT_KERAS) or name == "data.pipeline":
            sys.meta_path.remove(self)
            load_keras()


if "keras" not in sys.modules:
    sys.meta_path.insert(0, _KerasFirst())


def __getattr__(name):
    if name in REGISTRY_NAMES:
        return getattr(importlib.import_module("models.registry"), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
