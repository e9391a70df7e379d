"""Which tf.distribute strategy a training run uses, chosen by name.

    strategy = make_strategy("mirrored")      # before any other TensorFlow work
    with strategy.scope():
        model = build(...); model.compile(...)
    model.fit(dataset_batched_with_the_global_batch_size)

- none: TensorFlow's default strategy (one device: the CPU, or the first GPU).
- mirrored: MirroredStrategy over every local GPU; on a machine without GPUs,
  the CPU split into `cpu_replicas` logical devices (a faithful way to exercise
  the distributed code path on a laptop; it is not faster, the cores are shared).
- multiworker: MultiWorkerMirroredStrategy; the cluster and this process's place
  in it come from the TF_CONFIG environment variable, as TensorFlow documents.

Keras splits each global batch across the replicas and averages the gradients,
so --batch-size stays the global batch whatever the strategy.
"""

import json
import os

import tensorflow as tf
from keras.src.backend.tensorflow import trainer  # private: adapt_for_multiworker patches its reduction

from harness.errors import UserError

STRATEGIES = ("none", "mirrored", "multiworker")


def make_strategy(name: str, cpu_replicas: int = 2):
    """The named strategy; must run before TensorFlow has placed any op."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if not tf.config.list_physical_devices("GPU"):
            split_cpu(cpu_replicas)
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, not {name!r}")


def split_cpu(replicas: int) -> None:
    """Present the CPU as `replicas` logical devices, so MirroredStrategy has several to mirror over."""
    (cpu,) = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as error:  # TensorFlow has already started on its devices
        raise RuntimeError("split_cpu must run before TensorFlow places any op") from error


def check_tf_config() -> None:
    """Fail with a plain message unless TF_CONFIG names a cluster of workers and this process's task in it."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UserError("--distribute multiworker needs TF_CONFIG set on every worker "
                        "(see README, Training on several machines).")
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        if not (isinstance(workers, list) and workers and task["type"] in ("worker", "chief")
                and isinstance(task["index"], int)):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise UserError('TF_CONFIG is not valid: expected {"cluster": {"worker": ["host:port", ...]}, '
                        '"task": {"type": "worker", "index": 0}}.') from None


def writes_run(strategy) -> bool:
    """Whether this process saves the run: always on one machine; in a cluster only the chief.

    The chief is the task of type "chief", or worker 0 when the cluster names none
    (TensorFlow's convention, which the strategy applies). The other workers train
    alongside and save nothing.
    """
    return strategy.extended.should_checkpoint


def adapt_for_multiworker(model, strategy) -> None:
    """Work around two Keras 3.15 failures of fit() under MultiWorkerMirroredStrategy.

    1. A model built under a strategy scope remembers the strategy, and fit() then
       reduces the first input batch across workers eagerly, which fails with
       "Attempt to convert a value (PerReplica...)" (keras-team/keras#20585). A model
       that remembers none takes the strategy of the enclosing scope, so the caller
       runs fit() and evaluate() inside strategy.scope().
    2. Each step's logged loss and metrics are reduced with "mean", which across
       workers asks for a reduction over axis 0 of a scalar and fails with "Invalid
       reduction dimension 0 for input with 0 dimensions" (tensorflow/tensorflow#72388).
       Keras sums metric variables across replicas whenever they are updated, so each
       replica already holds the global value: taking the first replica's is exact.
    Other strategies are left as they are.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    model._distribute_strategy = None
    if not getattr(trainer.reduce_per_replica, "takes_first_across_workers", False):
        keras_reduce = trainer.reduce_per_replica

        def reduce_per_replica(values, strategy, reduction):
            if reduction == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                reduction = "first"
            return keras_reduce(values, strategy, reduction)

        reduce_per_replica.takes_first_across_workers = True
        trainer.reduce_per_replica = reduce_per_replica
