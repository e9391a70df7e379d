"""Data sets by name: each loader returns a `Dataset` of uint8 images and int32 labels.

    from data import load_dataset
    digits = load_dataset("mnist", data_dir)   # x_train (60000, 28, 28, 1) uint8
"""

from functools import partial
from pathlib import Path
from typing import Callable

from data.dataset import Dataset, carve_validation
from data.errors import DataError, UserError
from data.files import default_data_dir
from data.mnist import load_mnist
from data.svhn import load_svhn
from data.synthetic import load_synthetic

# Each loader takes the data directory; the synthetic ones ignore it.
DATASETS: dict[str, Callable[[Path], Dataset]] = {
    "mnist": load_mnist,
    "svhn": load_svhn,
    "svhn-extra": partial(load_svhn, include_extra=True),
    "synthetic": lambda data_dir: load_synthetic((28, 28, 1), name="synthetic"),
    "synthetic-rgb": lambda data_dir: load_synthetic((32, 32, 3), name="synthetic-rgb"),
}


def load_dataset(name: str, data_dir: Path) -> Dataset:
    """The named data set, read from data_dir (downloaded there if missing)."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return DATASETS[name](Path(data_dir))


__all__ = ["DATASETS", "Dataset", "DataError", "UserError", "carve_validation", "default_data_dir", "load_dataset"]
