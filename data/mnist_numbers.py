"""mnist-numbers: whole handwritten numbers composed from MNIST's digits, fixed by their seeds and cached.

    from data.mnist_numbers import load_mnist_numbers
    numbers = load_mnist_numbers(data_dir)   # x_train (20000, 32, 128, 1) uint8, y_train (20000, 6) int32

mnist-numbers is handwritten numbers of 1..MAX_DIGITS digits on form paper
(data/composer/), composed from MNIST: its training numbers from MNIST's
training digits, its test numbers from MNIST's test digits only, each set
from its own fixed seed, so every load gives the same pixels. Its composer
draws fresh training numbers for every epoch, from the training digits.

Composing the fixed numbers takes a while (12.6 s on 2 Xeon cores, more on
slower ones), so it is done once and cached: mnist-numbers-<key>.npz (x_train,
y_train, x_test, y_test and the key; 124 MB, read back in about a second) in
the data folder, or in the folder the environment variable DIGITS_CACHE_DIR
names when it is set (for a data folder that must not be written, such as a
shared one; created if missing). The key is a SHA-256 of everything that
decides the pixels: INPUT_SHAPE, TRAIN_COUNT, TEST_COUNT, the seeds, the style,
CACHE_VERSION, the versions of numpy, scipy and Pillow that draw them, and the
SHA-256 of each MNIST file they are composed from (mnist.npz, else the four
IDX files, as data/mnist.py reads them; about 10 ms). Only a file the project
provably wrote (harness/atomic.py's record) whose stored key, shapes and dtypes
are right is read as the cache; anything else is ignored and the numbers are
composed again. The cache is written through harness/atomic.py, whole and
durably, and never over a file the project cannot prove it wrote (a user's, or
a cache changed since it was written, e.g. cut short): then, or when the
folder cannot be written, a warning says so and the composed numbers are
returned uncached. Old caches (another key) are left in place.
"""

import hashlib
import json
import os
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from data.composer import NumberComposer
from data.dataset import Dataset
from harness.errors import UserError
from data.files import file_digest
from data.mnist import IDX_MD5, NPZ_NAME, load_mnist
from data.numbers import MAX_DIGITS, PADDING

INPUT_SHAPE = (32, 128, 1)  # height, width, channels: room for MAX_DIGITS handwritten digits side by side
TRAIN_COUNT = 20_000  # fixed training numbers, as many as the composer adds per epoch
TEST_COUNT = 10_000
COMPOSED_PER_EPOCH = 20_000
TRAIN_SEED, TEST_SEED = 20250101, 20250102  # distinct, so no test number repeats a training layout
STYLE = "handwriting"
CACHE_VERSION = 1  # bump when data/composer/ changes what it draws (the key cannot see code changes)
CACHE_DIR_ENV = "DIGITS_CACHE_DIR"  # where the cache goes instead of the data folder, when set
CACHE_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def load_mnist_numbers(data_dir: Path) -> Dataset:
    """mnist-numbers: images uint8 (N, 32, 128, 1), labels int32 (N, MAX_DIGITS) padded with -1.

    The fixed numbers come from the cache when it is current, else they are composed and cached (see above).
    """
    data_dir = Path(data_dir)
    digits = load_mnist(data_dir)
    train_composer = NumberComposer(digits.x_train, digits.y_train, INPUT_SHAPE, STYLE)
    key = cache_key(data_dir)
    path = cache_path(data_dir, key)
    arrays = _read_cache(path, key)
    if arrays is None:
        test_composer = NumberComposer(digits.x_test, digits.y_test, INPUT_SHAPE, STYLE)
        x_train, y_train, _ = train_composer.compose(TRAIN_COUNT, TRAIN_SEED)
        x_test, y_test, _ = test_composer.compose(TEST_COUNT, TEST_SEED)
        arrays = x_train, y_train, x_test, y_test
        _try_write_cache(path, key, arrays)
    return Dataset("mnist-numbers", *arrays, composer=train_composer, composed_per_epoch=COMPOSED_PER_EPOCH)


def _mnist_sources(data_dir: Path) -> list[str]:
    """The MNIST files load_mnist read from data_dir: mnist.npz when present, else the four IDX files."""
    return [NPZ_NAME] if (data_dir / NPZ_NAME).exists() else sorted(IDX_MD5)


def cache_key(data_dir: Path) -> str:
    """SHA-256 (hex) of the settings and the MNIST files that decide the composed pixels."""
    import PIL
    import scipy

    settings = {
        "cache_version": CACHE_VERSION, "input_shape": list(INPUT_SHAPE), "style": STYLE,
        "train_count": TRAIN_COUNT, "test_count": TEST_COUNT, "train_seed": TRAIN_SEED, "test_seed": TEST_SEED,
        "numpy": np.__version__, "scipy": scipy.__version__, "pillow": PIL.__version__,
        "mnist": {name: file_digest(data_dir / name, "sha256") for name in _mnist_sources(data_dir)},
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()


def cache_folder(data_dir: Path) -> Path:
    """DIGITS_CACHE_DIR when set, else the data folder."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path(data_dir)


def cache_path(data_dir: Path, key: str) -> Path:
    """Where the numbers composed under `key` are cached."""
    return cache_folder(data_dir) / f"mnist-numbers-{key[:16]}.npz"


def _read_cache(path: Path, key: str) -> tuple | None:
    """(x_train, y_train, x_test, y_test) from the cache, or None unless it is the project's own, current and whole."""
    from harness import atomic

    if not atomic.is_ours(path):  # missing, a user's file, or one of ours changed since (cut short, edited)
        return None
    try:
        with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as cache:  # closed even if cut short
            if str(cache["key"]) != key:
                return None
            arrays = tuple(cache[name] for name in CACHE_ARRAYS)
    # (TokenError: a damaged array header, which numpy tokenizes as Python; TypeError: a lone .npy, no archive.)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, tokenize.TokenError):
        return None
    for (images, labels), count in zip((arrays[:2], arrays[2:]), (TRAIN_COUNT, TEST_COUNT)):
        if (images.dtype != np.uint8 or images.shape != (count, *INPUT_SHAPE) or labels.dtype != np.int32
                or labels.shape != (count, MAX_DIGITS) or (count and (labels.min() < PADDING or labels.max() > 9))):
            return None
    return arrays


def _try_write_cache(path: Path, key: str, arrays) -> None:
    """Cache the arrays through harness/atomic.py; a warning, nothing else, when that cannot be done."""
    from harness import atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # DIGITS_CACHE_DIR may not exist yet
        with (atomic.replacing(path, elsewhere=f"another --data-dir or {CACHE_DIR_ENV}") as temporary,
              open(temporary, "wb") as stream):  # closed before the writer fsyncs and renames it
            np.savez(stream, key=np.str_(key), **dict(zip(CACHE_ARRAYS, arrays)))
    except UserError:
        warnings.warn(f"{path} was not written by this project (or was changed since), so it is left alone and "
                      f"mnist-numbers is not cached; move it away to have it cached.", stacklevel=3)
    except OSError as error:  # a read-only folder, a full disk: the numbers are still good, only slower next time
        warnings.warn(f"could not cache mnist-numbers in {path} ({error}); it will be composed again next time "
                      f"(set {CACHE_DIR_ENV} to cache it elsewhere).", stacklevel=3)

