"""TensorFlow and Keras, imported with their start-up chatter kept off stderr.

    from harness.quiet_keras import keras, tf   # the first import of every script that uses Keras

TensorFlow 2.21 writes about six lines to stderr while it loads (no GPU found,
CPU features, oneDNN notices), whatever TF_CPP_MIN_LOG_LEVEL says, and its C++
code logs more at its first operations. On every command that is noise above
the script's own output, and above a refusal that should be one line. So
stderr points at /dev/null while the two libraries load (a failed import still
raises, once stderr is back), and TensorFlow's C++ log level is set to 3 before
it loads, also where the environment says otherwise (the common
TF_CPP_MIN_LOG_LEVEL=2 still lets start-up error lines through); its errors
reach the user as Python exceptions. The project's modules import Keras as
usual; a script importing this module first only makes that first import quiet.
"""

import os

from harness.silence import silenced

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

with silenced(2):
    import keras
    import tensorflow as tf

__all__ = ["keras", "tf"]
