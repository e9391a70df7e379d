"""Training that survives a kill, and stops when it diverges.

    state = TrainingState(runs.staging_dir(run_dir) / runs.TRAINING_STATE_DIR, settings)
    resumed = state.latest()                 # None: start at epoch 0
    ...build and compile the model...
    if resumed: resumed.restore(model)
    model.fit(..., initial_epoch=resumed.epoch if resumed else 0,
              callbacks=[state.saver(resumed), StopOnDivergence()])

After every epoch the whole training state is saved: the weights, the
optimizer's (Adam's moments and its step count, which drives the learning-rate
schedule), the dropout layers' random-generator states, and the history so far.
With the input pipeline's order and augmentation drawn from (seed, epoch) alone
(data.pipeline.batches), a run resumed from epoch e continues exactly as an
uninterrupted one would.

Each epoch's state is two files, epoch-NNNN.json and then epoch-NNNN.keras (the
model with its optimizer state), each written whole and durably, and recorded
with its digest (harness/atomic.py): a state counts only once its model file
exists, so a kill at any instant leaves the last complete one, and a state file
that was cut short or edited since is refused (check_intact), never trained from.
"""

import json
import math
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from harness.errors import UserError
from harness import atomic, model_files

SETTINGS_FILE = "settings.json"
_WEIGHTS = re.compile(r"epoch-(\d+)\.keras")


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; nothing of the run is kept. The message says where."""


class StopOnDivergence(keras.callbacks.Callback):
    """Raise TrainingDiverged at the first non-finite training loss, or validation figure (epochs and steps from 1)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(f"training diverged at epoch {self.epoch + 1}, step {batch + 1} "
                                   f"(the loss is {float(loss)})")

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if not math.isfinite(float(value)):
                raise TrainingDiverged(f"training diverged in epoch {epoch + 1} (its {name} is {float(value)})")


class StopOnInterrupt(keras.callbacks.Callback):
    """Ctrl-C during fit ends it with KeyboardInterrupt after the current step, always.

    Python raises KeyboardInterrupt in whatever code runs when the signal lands, and
    while fit runs that can be a finalizer (a tf.data iterator's __del__), where the
    exception is printed and dropped: the run went on as if Ctrl-C had not been
    pressed. Here the signal only sets a flag, and the flag raises between steps, from
    this callback, where fit lets it through. Outside fit, Ctrl-C acts as usual.
    """

    def __init__(self):
        super().__init__()
        self.requested = threading.Event()
        self._previous = None

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = signal.signal(signal.SIGINT, lambda signum, frame: self.requested.set())

    def on_train_batch_end(self, batch, logs=None):
        if self.requested.is_set():
            self.restore()
            raise KeyboardInterrupt

    def on_train_end(self, logs=None):
        self.restore()
        if self.requested.is_set():  # pressed during the last step or its validation
            raise KeyboardInterrupt

    def restore(self):
        """Give Ctrl-C back its usual meaning (call it however fit ended)."""
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


@dataclass
class Checkpoint:
    """The state after `epoch` complete epochs."""

    epoch: int
    weights_file: Path
    history: list[dict]  # one row of logs per epoch, epoch 1 first
    train_seconds: float  # fit time spent so far, over every resumed attempt
    generator_states: list = field(default_factory=list)  # (2,) int seeds of the model's random generators

    def restore(self, model: keras.Model) -> None:
        """Put this state into a compiled model built exactly as the saved one was."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # load_weights restores the optimizer's slots too
        model.load_weights(self.weights_file)
        for variable, state in zip(_generator_variables(model), self.generator_states, strict=True):
            variable.assign(np.asarray(state, dtype=variable.dtype))


def _generator_variables(model: keras.Model) -> list:
    """The random-generator states of the model's layers (dropout's), which the weights file leaves out."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


class TrainingState:
    """The saved training states of one run being built, and the settings they belong to."""

    def __init__(self, directory: Path, settings: dict):
        self.directory = Path(directory)
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file

    def check_intact(self) -> None:
        """A UserError if a saved state file is not exactly as it was written (cut short, edited, or from a
        version of the project that kept no record of it); nothing is removed."""
        if not self.directory.is_dir():
            return
        changed = atomic.foreign_entries(self.directory)
        if changed or atomic.read_record(self.directory) is None:
            named = f" ({', '.join(changed[:3])}{' and more' if len(changed) > 3 else ''})" if changed else ""
            raise UserError(f"the training state saved in {self.directory}{named} was cut short or changed since "
                            f"it was written, so it cannot be resumed; run the same command with --fresh to "
                            f"start over.")

    def started_differently(self) -> bool:
        """Whether states exist that were saved by a run with other settings (they cannot be resumed)."""
        try:
            saved = json.loads((self.directory / SETTINGS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return self.directory.exists()
        return saved != self.settings

    def clear(self) -> None:
        """Forget every saved state and record the settings of the run that starts now."""
        shutil.rmtree(self.directory, ignore_errors=True)
        atomic.make_folder(self.directory, elsewhere="another --run-dir")
        atomic.write_json(self.directory / SETTINGS_FILE, self.settings)

    def latest(self) -> Checkpoint | None:
        """The most recent complete state, or None."""
        epochs = sorted((int(match[1]) for path in self.directory.glob("epoch-*.keras")
                         if (match := _WEIGHTS.fullmatch(path.name))), reverse=True)
        for epoch in epochs:
            try:
                record = json.loads(self._record(epoch).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            return Checkpoint(epoch, self._weights(epoch), record["history"], record["train_seconds"],
                              record["generator_states"])
        return None

    def saver(self, resumed: Checkpoint | None) -> keras.callbacks.Callback:
        """The callback that saves the state after every epoch, continuing from `resumed`."""
        return _SaveEveryEpoch(self, resumed)

    def _weights(self, epoch: int) -> Path:
        return self.directory / f"epoch-{epoch:04d}.keras"

    def _record(self, epoch: int) -> Path:
        return self.directory / f"epoch-{epoch:04d}.json"

    def save(self, model: keras.Model, epoch: int, history: list[dict], train_seconds: float) -> None:
        record = {"history": history, "train_seconds": train_seconds,
                  "generator_states": [np.asarray(v).tolist() for v in _generator_variables(model)]}
        atomic.write_json(self._record(epoch), record)
        atomic.write_bytes(self._weights(epoch), model_files.model_bytes(model))  # weights and optimizer state
        for older in range(epoch - 1, 0, -1):  # keep only the newest complete state
            for path in (self._weights(older), self._record(older)):
                if path.exists():
                    path.unlink()
                    atomic.forget(path)


class _SaveEveryEpoch(keras.callbacks.Callback):
    def __init__(self, state: TrainingState, resumed: Checkpoint | None):
        super().__init__()
        self.state = state
        self.history = list(resumed.history) if resumed else []
        self.train_seconds = resumed.train_seconds if resumed else 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({key: float(value) for key, value in (logs or {}).items()})
        self.state.save(self.model, epoch + 1, self.history, self.train_seconds + time.perf_counter() - self.started)
        self.train_seconds += time.perf_counter() - self.started  # saving the state is part of training's cost
