"""The networks: each builder by name, with the training recipe that suits it.

    from models import MODELS
    architecture = MODELS["convnet"]
    model = architecture.build((28, 28, 1), 10)   # uncompiled functional keras.Model

Every builder takes the input shape and class count from the data set and
returns a functional model; the layers users address have stable names (conv1,
conv2, ..., logits). What a model of each kind does (a digit classifier, a
number reader) is written once, in harness/kinds.py.
"""

from models.registry import CLASSIFIERS, KINDS, MODELS, READERS, Architecture, default_epochs

__all__ = ["CLASSIFIERS", "KINDS", "MODELS", "READERS", "Architecture", "default_epochs"]
