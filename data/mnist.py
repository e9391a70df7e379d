"""MNIST: 70,000 handwritten digits, 28x28 greyscale, from its original IDX files or Keras's mnist.npz.

Looks in the data directory for mnist.npz, then for the four IDX files, and only
then downloads mnist.npz the way keras.datasets.mnist does. Every file is checked
against its published digest before it is parsed.
"""

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np

from data.dataset import Dataset
from harness.errors import DataError
from data.files import fetch, verify_checksum

NPZ_NAME = "mnist.npz"
NPZ_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# Published md5s of the original files (the same that torchvision checks).
IDX_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
NEEDED = f"{NPZ_NAME} or the four MNIST IDX files ({', '.join(IDX_MD5)})"

IDX_UBYTE = 0x08  # IDX type code for unsigned bytes, the only type MNIST uses


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an IDX file (gzipped or raw) of unsigned bytes with `ndim` dimensions.

    The header is big-endian: two zero bytes, the type code, the number of
    dimensions, then each dimension's size as uint32. The payload must hold
    exactly the number of bytes the sizes promise.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            content = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} cannot be read ({error}); download it again.") from error
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] != IDX_UBYTE or content[3] != ndim:
        raise DataError(
            f"{path} is not an IDX file of {ndim}-dimensional unsigned bytes "
            f"(wrong magic number {content[:4].hex() or 'missing'}); check that it is the right file."
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{path} is truncated inside its header; download it again.")
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", count=ndim, offset=4))
    payload = len(content) - header_size
    if payload != int(np.prod(shape)):
        raise DataError(
            f"{path} holds {payload} bytes of data but its header promises {shape} "
            f"({int(np.prod(shape))} bytes); the file is truncated or damaged, download it again."
        )
    return np.frombuffer(content, np.uint8, offset=header_size).reshape(shape)


def _read_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return tuple(archive[key] for key in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path} is not a readable MNIST archive ({error}); download it again.") from error


def _read_idx_files(data_dir: Path, checksums: dict[str, str]) -> tuple[np.ndarray, ...]:
    for name, md5 in checksums.items():
        verify_checksum(data_dir / name, md5, "md5")
    arrays = (
        read_idx(data_dir / "train-images-idx3-ubyte.gz", 3),
        read_idx(data_dir / "train-labels-idx1-ubyte.gz", 1),
        read_idx(data_dir / "t10k-images-idx3-ubyte.gz", 3),
        read_idx(data_dir / "t10k-labels-idx1-ubyte.gz", 1),
    )
    for images, labels in (arrays[:2], arrays[2:]):
        if len(images) != len(labels):
            raise DataError(f"MNIST in {data_dir} has {len(images)} images but {len(labels)} labels.")
    return arrays


def load_mnist(data_dir: Path, checksums: dict[str, str] = IDX_MD5, npz_sha256: str = NPZ_SHA256) -> Dataset:
    """MNIST with images (N, 28, 28, 1) uint8 and labels (N,) int32.

    `checksums` and `npz_sha256` are the published digests; tests replace them to
    load small files they write in the same formats.
    """
    data_dir = Path(data_dir)
    npz_path = data_dir / NPZ_NAME
    idx_present = [name for name in checksums if (data_dir / name).exists()]
    if npz_path.exists():
        verify_checksum(npz_path, npz_sha256, "sha256")
        arrays = _read_npz(npz_path)
    elif len(idx_present) == len(checksums):
        arrays = _read_idx_files(data_dir, checksums)
    elif idx_present:
        missing = sorted(set(checksums) - set(idx_present))
        raise DataError(f"{data_dir} has only some MNIST IDX files; add {', '.join(missing)}.")
    else:
        fetch(NPZ_NAME, NPZ_URL, npz_sha256, "sha256", data_dir, NEEDED)
        arrays = _read_npz(npz_path)
    x_train, y_train, x_test, y_test = arrays
    for split, images in (("training", x_train), ("test", x_test)):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or not len(images):
            raise DataError(f"MNIST's {split} images in {data_dir} are {images.shape}, not N > 0 images of 28x28; "
                            f"the files are damaged.")
    if max(y_train.max(initial=0), y_test.max(initial=0)) > 9:
        raise DataError(f"MNIST labels in {data_dir} go beyond 9; the files are damaged.")
    return Dataset(
        "mnist",
        x_train[..., np.newaxis],
        y_train.astype(np.int32),
        x_test[..., np.newaxis],
        y_test.astype(np.int32),
    )
