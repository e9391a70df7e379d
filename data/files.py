"""Where data files live, how they are verified, and how missing ones are fetched.

The data directory is chosen by `--data-dir`, else the environment variable
DIGITS_DATA_DIR, else the Keras cache (~/.keras/datasets). Downloads go to that
directory, never into the repository.
"""

import hashlib
import os
from pathlib import Path

from harness.errors import DataError

DATA_DIR_ENV = "DIGITS_DATA_DIR"


def default_data_dir() -> Path:
    """DIGITS_DATA_DIR if set, else the Keras cache folder for data sets."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    keras_home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return Path(keras_home, "datasets").expanduser()


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks so large files stay out of memory."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, algorithm).hexdigest()


def verify_checksum(path: Path, expected: str, algorithm: str) -> None:
    """Raise DataError unless the file's digest is the published one."""
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise DataError(
            f"{path} is corrupt or not the published file ({algorithm} {actual}, "
            f"expected {expected}); delete it and download it again."
        )


def verified_copy(name: str, url: str, expected: str, algorithm: str, data_dir: Path, needed: str) -> Path:
    """data_dir/name, checked against its published digest, or downloaded from `url` (and checked) if missing.

    Verified before anything parses it: a damaged file can crash a parser outright (scipy.io.loadmat 1.17
    kills the process on some damaged .mat files instead of raising).
    """
    path = Path(data_dir) / name
    if path.exists():
        verify_checksum(path, expected, algorithm)
        return path
    return fetch(name, url, expected, algorithm, Path(data_dir), needed)


def fetch(name: str, url: str, expected: str, algorithm: str, data_dir: Path, needed: str) -> Path:
    """Download `url` to data_dir/name, checking its digest; one clear DataError on failure.

    `needed` names the files a user could put in data_dir instead, for the message.
    """
    # Imported here so that reading local files never pays for importing Keras.
    import keras

    from harness import atomic

    target = data_dir / name
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"{data_dir} is a file, not a folder; point --data-dir (or {DATA_DIR_ENV}) at the folder "
                        f"with {needed}.")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # An absolute cache_subdir makes Keras save exactly into data_dir.
        keras.utils.get_file(
            fname=name,
            origin=url,
            file_hash=expected,
            hash_algorithm=algorithm,
            cache_subdir=str(data_dir.resolve()),
        )
        atomic.make_durable(target)  # Keras writes it in place and checks it, but does not fsync it
    except Exception as error:  # no network, a proxy, a full disk: all end the same way
        target.unlink(missing_ok=True)
        raise DataError(
            f"{needed} not found in {data_dir} and the download from {url} failed "
            f"({type(error).__name__}); put the files there, or point --data-dir "
            f"(or {DATA_DIR_ENV}) at a folder that has them."
        ) from error
    return target
