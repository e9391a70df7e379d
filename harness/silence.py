"""Native code's chatter kept out of a script's output: file descriptors 1 or 2 sent to /dev/null for a block.

    with silenced(2):    # what C++ libraries write to stderr, below Python's sys.stderr
        ...

Used where a library writes what the user did not ask for: TensorFlow while it
loads (harness/quiet_keras.py), LiteRT as it allocates (serving/litert.py), the
TFLite quantiser's settings line (serving/export.py).
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def silenced(descriptor: int):
    """File descriptor 1 (stdout) or 2 (stderr) pointed at /dev/null for the block, then restored."""
    (sys.stdout if descriptor == 1 else sys.stderr).flush()
    saved, null = os.dup(descriptor), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    try:
        yield
    finally:
        os.dup2(saved, descriptor)
        os.close(saved)
        os.close(null)
