"""Batch normalization that trains with TensorFlow's fused kernel: the same layer, a fifth less training time.

    from models.fused_batch_norm import FusedBatchNormalization
    x = FusedBatchNormalization(momentum=0.9, name="conv1_bn")(x)   # a drop-in for layers.BatchNormalization

Keras 3 normalises a batch with separate operations: moments (a mean, squared
differences, another mean), then a subtract, multiply and add, each a pass over
the whole feature map, forward and backward. tf.keras 2 called one fused kernel
instead (oneDNN's on the CPU), and so does this layer while training on images
(B, H, W, C). On today's default convnet (pooling before batch norm, batch 256)
model.fit takes 0.80 of the time it takes with keras.layers.BatchNormalization,
at equal accuracy (medians of seeds 0-4, 33.5 s against 41.9 s on a shared
2-core CPU, 2026-12-07: `python bench/speed.py --recipes ours-convnet
ours-convnet-keras-bn`; docs/history.md). The project keeps it while it saves at
least 10 % of the fit time. Inference is Keras's own code, so exported models
(SavedModel, LiteRT) contain only standard operations.

Model files do not contain this class: harness.model_files.save_model (what
train.py and `python -m serving.export` write with) saves each of these layers as
the keras.layers.BatchNormalization it derives from, so plain
`keras.saving.load_model` reads them anywhere, bit-identical in inference. The
class stays registered with Keras (as digits>FusedBatchNormalization) for files
saved before that, with plain model.save: those load only once this module has
been imported (`import models` does that); `python -m serving.export --run-dir RUN`
rewrites such a run's model.keras in the standard form.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="digits")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization whose training step on 4-D channels-last inputs is one fused kernel."""

    def call(self, inputs, training=None, mask=None):
        fusable = (training and self.trainable and mask is None and len(inputs.shape) == 4
                   and self.axis in (-1, 3) and not self.renorm and not self.synchronized)
        if not fusable:  # inference, and the cases the fused kernel does not cover
            return super().call(inputs, training=training, mask=mask)
        # As Keras does, compute in float32 whatever the layer's policy (bfloat16
        # statistics overflow), and normalise with the batch's own mean and variance over
        # (B, H, W) for each channel.
        inputs = tf.cast(inputs, "float32")
        channels = inputs.shape[-1]
        outputs, batch_mean, batch_variance, *_ = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            self.gamma if self.scale else tf.ones(channels),
            self.beta if self.center else tf.zeros(channels),
            epsilon=self.epsilon,
            is_training=True,
        )
        # The running statistics that inference uses, updated as Keras updates them.
        # (The kernel's batch variance carries Bessel's correction, n / (n - 1) with
        # n = B * H * W values per channel: 2,304 for conv3's 3x3 maps in a full MNIST
        # batch of 256, so the two differ by about 0.04 %.)
        self.moving_mean.assign(self.moving_mean * self.momentum + batch_mean * (1 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + batch_variance * (1 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)
