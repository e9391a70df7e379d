"""Fixtures shared by the export and predict tests."""

import keras
import pytest

from data.pipeline import batches, steps_per_epoch
from data.synthetic import load_synthetic
from models import MODELS
from models.training import compile_for_training

TRAINED_EPOCHS = 8  # the MLP on synthetic digits passes 90 % test accuracy well before this


@pytest.fixture(scope="session")
def trained_mlp(tmp_path_factory):
    """(model file, model, synthetic data set): an MLP trained on 2000 seven-segment digits, seconds on a CPU."""
    keras.utils.set_random_seed(0)
    digits = load_synthetic((28, 28, 1))
    model = MODELS["mlp"].build(digits.input_shape, digits.num_classes)
    steps = steps_per_epoch(len(digits.y_train), 64)
    compile_for_training(model, 1e-3, TRAINED_EPOCHS * steps)
    model.fit(batches(digits.x_train, digits.y_train, 64, shuffle_seed=0, epochs=range(TRAINED_EPOCHS)),
              epochs=TRAINED_EPOCHS, steps_per_epoch=steps, shuffle=False, verbose=0)  # the pipeline shuffles, seeded
    path = tmp_path_factory.mktemp("trained") / "model.keras"
    model.save(path)
    return path, model, digits
