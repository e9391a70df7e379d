"""Data sets by name: each loader returns a `Dataset` of uint8 images and int32 labels.

    from data import load_dataset
    digits = load_dataset("mnist", data_dir)   # x_train (60000, 28, 28, 1) uint8
"""

import importlib
from pathlib import Path
from collections.abc import Callable

from data.dataset import VALIDATION_FRACTION, Dataset, carve_validation, validation_split
from data.files import default_data_dir
from data.npz import is_npz_path, load_npz
from harness.errors import DataError, UserError


def _loader(module: str, function: str, **options) -> Callable[[Path], Dataset]:
    """data.<module>.<function>(data_dir, **options), its module imported on first use: a script that
    loads one data set (or none, as predict.py) does not import every reader (h5py, scipy.io) with it."""
    def load(data_dir: Path) -> Dataset:
        return getattr(importlib.import_module(f"data.{module}"), function)(Path(data_dir), **options)
    return load


# Each loader takes the data directory; the synthetic ones ignore it.
DATASETS: dict[str, Callable[[Path], Dataset]] = {
    "mnist": _loader("mnist", "load_mnist"),
    "mnist-numbers": _loader("mnist_numbers", "load_mnist_numbers"),
    "cvl-digits": _loader("cvl", "load_cvl_digits"),
    "handwriting": _loader("handwriting", "load_handwriting"),
    "handwriting-numbers": _loader("handwriting_numbers", "load_handwriting_numbers"),
    "svhn": _loader("svhn", "load_svhn"),
    "svhn-extra": _loader("svhn", "load_svhn", include_extra=True),
    "svhn-numbers": _loader("svhn_numbers", "load_svhn_numbers"),
    "svhn-numbers-official": _loader("svhn_format1", "load_svhn_format1"),
    "svhn-numbers-official-extra": _loader("svhn_format1", "load_svhn_format1", include_extra=True),
    "synthetic": lambda data_dir: _synthetic((28, 28, 1), "synthetic"),
    "synthetic-rgb": lambda data_dir: _synthetic((32, 32, 3), "synthetic-rgb"),
}


def _synthetic(shape, name) -> Dataset:
    from data.synthetic import load_synthetic

    return load_synthetic(shape, name=name)


def load_dataset(name: str, data_dir: Path) -> Dataset:
    """The named data set, read from data_dir (downloaded there if missing), or a .npz file by path."""
    if name in DATASETS:
        return DATASETS[name](Path(data_dir))
    if is_npz_path(name):
        return load_npz(Path(name))
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)} or give a .npz file's path.")


def recorded_data_dir(settings: dict, source: Path) -> Path:
    """The data folder a run's config.json (`source`, read into `settings`) records, else the default one."""
    folder = settings.get("data_dir")
    if folder is None or folder == "":
        return default_data_dir()
    if not isinstance(folder, str):
        raise DataError(f"{source} records the data folder {folder!r}, not a path; it is damaged (pass --data-dir, "
                        f"or train the run again).")
    return Path(folder)


def load_recorded(settings: dict, source: Path, data_dir: Path | None = None) -> Dataset:
    """The data set a run was trained on, as its config.json (`source`, read into `settings`) records it.

    The "dataset", "data_dir" and "limit" entries are checked: a value of the wrong kind is a DataError
    naming `source`, never a crash further on. `data_dir` replaces the recorded folder.
    """
    name, limit = settings.get("dataset"), settings.get("limit")
    if not isinstance(name, str) or not name:
        raise DataError(f"{source} records the data set {name!r}, not a name or path; it is damaged (train the "
                        f"run again).")
    if limit is not None and (type(limit) is not int or limit < 1):  # type(): True is an int too
        raise DataError(f"{source} records the image limit {limit!r}, not a positive whole number; it is "
                        f"damaged (train the run again).")
    if is_npz_path(name) and not Path(name).is_file():
        raise DataError(f"the run was trained on {name}, which is no longer there; put the file back (its sha256 "
                        f"is in {source}).")
    return load_dataset(name, data_dir or recorded_data_dir(settings, source)).limited(limit)


def dataset_label(name: str) -> str:
    """A short name for run folders: the registry name, or a .npz file's stem."""
    return Path(name).stem if is_npz_path(name) else name


__all__ = ["DATASETS", "VALIDATION_FRACTION", "Dataset", "DataError", "UserError", "carve_validation", "dataset_label",
           "default_data_dir",
           "is_npz_path", "load_dataset", "load_recorded", "recorded_data_dir", "validation_split"]
