"""The cache of composed number sets (mnist-numbers, handwriting-numbers): written once, read only if provably ours.

    from data.composed_cache import cache_key, cache_path, read_cache, try_write_cache
    key = cache_key({"train_seed": 1, ...})                 # SHA-256 of the settings and the drawing libraries
    arrays = read_cache(path, key, {"x_train": ((20000, 32, 128, 1), np.uint8, None), ...})

Composing fixed numbers takes seconds to minutes, so a loader composes them once
and caches them in one .npz (the arrays and the key) in the data folder, or in
the folder the environment variable DIGITS_CACHE_DIR names when it is set (for
a data folder that must not be written, such as a shared one; created if
missing). The key is a SHA-256 of everything the loader says decides the pixels,
plus the versions of numpy, scipy and Pillow that draw them. Only a file the
project provably wrote (harness/atomic.py's record) whose stored key, shapes,
dtypes and value ranges are right is read; anything else is ignored and the
numbers are composed again. The cache is written through harness/atomic.py,
whole and durably, and never over a file the project cannot prove it wrote (a
user's, or a cache changed since it was written, e.g. cut short): then, or when
the folder cannot be written, a warning says so and the loader goes on
uncached. Old caches (another key) are left in place.
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

from harness.errors import UserError

CACHE_DIR_ENV = "DIGITS_CACHE_DIR"  # where caches go instead of the data folder, when set

# name -> (shape, dtype, (lowest, highest) allowed value or None): what a cache's array must be to be read.
Expected = dict[str, tuple[tuple[int, ...], type, tuple[int, int] | None]]


def cache_key(settings: dict) -> str:
    """SHA-256 (hex) of `settings` (JSON-able) and the versions of the libraries that draw the pixels."""
    import PIL
    import scipy

    drawn_by = {"numpy": np.__version__, "scipy": scipy.__version__, "pillow": PIL.__version__}
    return hashlib.sha256(json.dumps({**settings, **drawn_by}, sort_keys=True).encode("utf-8")).hexdigest()


def cache_folder(data_dir: Path) -> Path:
    """DIGITS_CACHE_DIR when set, else the data folder."""
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured).expanduser() if configured else Path(data_dir)


def cache_path(data_dir: Path, name: str, key: str) -> Path:
    """Where the data set `name` composed under `key` is cached."""
    return cache_folder(data_dir) / f"{name}-{key[:16]}.npz"


def read_cache(path: Path, key: str, expected: Expected) -> dict[str, np.ndarray] | None:
    """The expected arrays from the cache, or None unless it is the project's own, current and whole."""
    from harness import atomic

    if not atomic.is_ours(path):  # missing, a user's file, or one of ours changed since (cut short, edited)
        return None
    try:
        with open(path, "rb") as stream, np.load(stream, allow_pickle=False) as cache:  # closed even if cut short
            if str(cache["key"]) != key:
                return None
            arrays = {name: cache[name] for name in expected}
    # (TokenError: a damaged array header, which numpy tokenizes as Python; TypeError: a lone .npy, no archive.)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, tokenize.TokenError):
        return None
    return arrays if all(_as_expected(arrays[name], *expected[name]) for name in expected) else None


def _as_expected(array: np.ndarray, shape: tuple[int, ...], dtype: type, limits: tuple[int, int] | None) -> bool:
    if array.dtype != dtype or array.shape != tuple(shape):
        return False
    return limits is None or not array.size or (array.min() >= limits[0] and array.max() <= limits[1])


def try_write_cache(path: Path, key: str, arrays: dict[str, np.ndarray], name: str) -> None:
    """Cache the arrays of data set `name` through harness/atomic.py; a warning, nothing else, when that cannot
    be done."""
    from harness import atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # DIGITS_CACHE_DIR may not exist yet
        with (atomic.replacing(path, elsewhere=f"another --data-dir or {CACHE_DIR_ENV}") as temporary,
              open(temporary, "wb") as stream):  # closed before the writer fsyncs and renames it
            np.savez(stream, key=np.str_(key), **arrays)
    except UserError:
        warnings.warn(f"{path} was not written by this project (or was changed since), so it is left alone and "
                      f"{name} is not cached; move it away to have it cached.", stacklevel=3)
    except OSError as error:  # a read-only folder, a full disk: the numbers are still good, only slower next time
        warnings.warn(f"could not cache {name} in {path} ({error}); it will be composed again next time "
                      f"(set {CACHE_DIR_ENV} to cache it elsewhere).", stacklevel=3)
