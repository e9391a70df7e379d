"""How a model is compiled for training: loss, metric, and the learning-rate schedule."""

import keras

from harness.kinds import CLASSIFIER, Kind
from models.ctc import WholeNumberAccuracy, ctc_loss

WARMUP_FRACTION = 0.2  # share of all steps spent ramping the learning rate up


def one_cycle(peak_learning_rate: float, total_steps: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """Linear warm-up from a tenth of the peak to the peak, then cosine decay to zero.

    A short ramp lets batch norm statistics settle before large steps; the decay
    to zero at the end is what lets a few epochs reach a good minimum.
    """
    warmup_steps = max(1, int(total_steps * WARMUP_FRACTION))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_learning_rate / 10,
        warmup_target=peak_learning_rate,
        warmup_steps=warmup_steps,
        decay_steps=max(1, total_steps - warmup_steps),
        alpha=0.0,
    )


def classifier_objective() -> tuple:
    """Cross-entropy on the softmax, and the share of digits right (logged as "accuracy")."""
    return keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def reader_objective() -> tuple:
    """The CTC loss of the column probabilities, and the share of numbers read exactly (logged as "accuracy")."""
    return ctc_loss, WholeNumberAccuracy(name="accuracy")


def compile_for_training(model: keras.Model, peak_learning_rate: float, total_steps: int,
                         kind: Kind = CLASSIFIER) -> keras.Model:
    """Adam on a one-cycle schedule, with the loss and accuracy of the model's kind (harness/kinds.py)."""
    loss, accuracy = kind.objective()
    model.compile(
        optimizer=keras.optimizers.Adam(one_cycle(peak_learning_rate, total_steps)),
        loss=loss,
        metrics=[accuracy],
    )
    return model
