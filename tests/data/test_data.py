"""Tests of the data/ package on small files written here in the official formats; CPU, no network.

    python3 -m pytest tests/test_data.py -q

Every expected value is computed independently of data/: IDX headers are packed
with struct, .mat files are written with scipy.io.savemat, digests come from
hashlib, and the expected arrays are built by explicit indexing.
"""

import gzip
import hashlib
import os
import socket
import struct
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import data
import data.mnist
import data.svhn
import data.synthetic
from harness import kinds
from data import DATASETS, Dataset, DataError, UserError, carve_validation, default_data_dir, load_dataset
from data.dataset import VALIDATION_SEED
from data.files import DATA_DIR_ENV
from data.mnist import load_mnist, read_idx
from data.pipeline import batches
from data.svhn import load_svhn
from data.synthetic import draw_digit, load_synthetic

# A closed port on this machine: a download from it fails at once, without the internet.
UNREACHABLE = "http://127.0.0.1:9/"

MNIST_TRAIN, MNIST_TEST = 12, 7  # images in the small MNIST files written here
SVHN_COUNTS = {"train_32x32.mat": 5, "test_32x32.mat": 4, "extra_32x32.mat": 3}


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Refuse every connection beyond this machine, so no test can download real data."""
    real_connect = socket.socket.connect

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"a test tried to reach {address}; tests must not use the network")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on this machine, as (folder, base URL ending in /)."""
    folder = tmp_path / "server"
    folder.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# ---------------------------------------------------------------- IDX files


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file's bytes: 0x00 0x00, type code, ndim, sizes as big-endian uint32, raw payload."""
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    content = idx_bytes(array)
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("shape", [(9,), (3, 28, 28), (2, 5, 7)])
def test_read_idx_round_trip(tmp_path, suffix, shape):
    written = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"digits-idx{len(shape)}-ubyte{suffix}"
    write_idx(path, written)
    read = read_idx(path, len(shape))
    assert read.dtype == np.uint8
    assert read.shape == shape
    np.testing.assert_array_equal(read, written)


LABELS_1D = np.arange(6, dtype=np.uint8)
IMAGES_3D = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)


@pytest.mark.parametrize(
    "content, ndim, keywords",
    [
        pytest.param(idx_bytes(LABELS_1D), 3, ["not an IDX file", "3-dimensional", "00000801"],
                     id="labels-read-as-images"),
        pytest.param(idx_bytes(IMAGES_3D), 1, ["not an IDX file", "1-dimensional", "00000803"],
                     id="images-read-as-labels"),
        pytest.param(idx_bytes(LABELS_1D, type_code=0x0D), 1, ["unsigned bytes", "00000d01"], id="float-type-code"),
        pytest.param(b"\x00\x01" + idx_bytes(LABELS_1D)[2:], 1, ["not an IDX file", "00010801"],
                     id="nonzero-lead-bytes"),
        pytest.param(b"", 1, ["not an IDX file", "missing"], id="empty-file"),
        pytest.param(b"\x00\x00\x08", 1, ["not an IDX file"], id="three-bytes"),
        pytest.param(idx_bytes(IMAGES_3D)[:4 + 8], 3, ["truncated", "header"], id="truncated-header"),
        pytest.param(idx_bytes(IMAGES_3D)[:-1], 3, ["23 bytes", "(2, 4, 3)", "truncated"], id="payload-short"),
        pytest.param(idx_bytes(IMAGES_3D) + b"\x00", 3, ["25 bytes", "(2, 4, 3)", "damaged"], id="payload-long"),
        pytest.param(idx_bytes(LABELS_1D)[:8], 1, ["0 bytes", "(6,)"], id="header-only"),
    ],
)
@pytest.mark.parametrize("gzipped", [False, True], ids=["raw", "gz"])
def test_read_idx_rejects_malformed_content(tmp_path, content, ndim, keywords, gzipped):
    path = tmp_path / ("bad-ubyte.gz" if gzipped else "bad-ubyte")
    path.write_bytes(gzip.compress(content) if gzipped else content)
    with pytest.raises(DataError) as caught:
        read_idx(path, ndim)
    message = str(caught.value)
    assert str(path) in message
    for keyword in keywords:
        assert keyword in message


def _gzipped_idx() -> bytes:
    return gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)), mtime=0)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_gzipped_idx()[: len(_gzipped_idx()) // 2], id="cut-in-half"),
        pytest.param(_gzipped_idx()[:-8], id="trailer-missing"),
        pytest.param(_gzipped_idx()[:-4] + bytes(4), id="wrong-length-in-trailer"),
        pytest.param(idx_bytes(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)), id="not-gzipped"),
    ],
)
def test_read_idx_rejects_damaged_gzip(tmp_path, content):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="cannot be read") as caught:
        read_idx(path, 3)
    assert str(path) in str(caught.value)
    assert "download it again" in str(caught.value)


def test_read_idx_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot be read"):
        read_idx(tmp_path / "absent-idx1-ubyte.gz", 1)


# ---------------------------------------------------------------- MNIST


@pytest.fixture
def mnist_dir(tmp_path):
    """A folder with the four official IDX file names holding small random MNIST-like data.

    Returns (folder, arrays by file name, md5 by file name).
    """
    rng = np.random.default_rng(2)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (MNIST_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, MNIST_TRAIN, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (MNIST_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, MNIST_TEST, dtype=np.uint8),
    }
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, array in arrays.items():
        write_idx(folder / name, array)
    checksums = {name: md5(folder / name) for name in arrays}
    return folder, arrays, checksums


def test_mnist_idx_names_are_the_official_ones():
    assert set(data.mnist.IDX_MD5) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
    }


def test_load_mnist_from_idx_files(mnist_dir):
    folder, arrays, checksums = mnist_dir
    digits = load_mnist(folder, checksums=checksums)
    assert digits.name == "mnist"
    assert digits.input_shape == (28, 28, 1)
    assert digits.x_train.shape == (MNIST_TRAIN, 28, 28, 1) and digits.x_train.dtype == np.uint8
    assert digits.x_test.shape == (MNIST_TEST, 28, 28, 1) and digits.x_test.dtype == np.uint8
    assert digits.y_train.shape == (MNIST_TRAIN,) and digits.y_train.dtype == np.int32
    assert digits.y_test.shape == (MNIST_TEST,) and digits.y_test.dtype == np.int32
    np.testing.assert_array_equal(digits.x_train[..., 0], arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(digits.y_train, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(digits.x_test[..., 0], arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(digits.y_test, arrays["t10k-labels-idx1-ubyte.gz"])


@pytest.mark.parametrize("damaged", list(data.mnist.IDX_MD5))
def test_load_mnist_rejects_a_file_that_fails_its_checksum(mnist_dir, damaged):
    folder, _, checksums = mnist_dir
    path = folder / damaged
    path.write_bytes(path.read_bytes() + b"\x00")  # the published digest no longer matches
    with pytest.raises(DataError) as caught:
        load_mnist(folder, checksums=checksums)
    message = str(caught.value)
    assert damaged in message
    assert "md5" in message and md5(path) in message and checksums[damaged] in message
    assert "download it again" in message


@pytest.mark.parametrize(
    "removed",
    [["t10k-labels-idx1-ubyte.gz"], ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"],
     ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]],
)
def test_load_mnist_names_the_missing_idx_files(mnist_dir, monkeypatch, removed):
    folder, _, checksums = mnist_dir
    for name in removed:
        (folder / name).unlink()
    # A partial set is the user's to complete, not a reason to download mnist.npz.
    monkeypatch.setattr(data.mnist, "NPZ_URL", UNREACHABLE + "mnist.npz")
    with pytest.raises(DataError) as caught:
        load_mnist(folder, checksums=checksums)
    message = str(caught.value)
    assert str(folder) in message and UNREACHABLE not in message
    for name in checksums:
        assert (name in message) == (name in removed)
    assert listing(folder) == sorted(set(checksums) - set(removed))


def test_load_mnist_rejects_images_and_labels_of_different_counts(mnist_dir):
    folder, _, checksums = mnist_dir
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(MNIST_TRAIN - 1, np.uint8))
    checksums = {**checksums, "train-labels-idx1-ubyte.gz": md5(folder / "train-labels-idx1-ubyte.gz")}
    with pytest.raises(DataError, match=f"{MNIST_TRAIN} images but {MNIST_TRAIN - 1} labels"):
        load_mnist(folder, checksums=checksums)


def test_load_mnist_rejects_labels_beyond_9(mnist_dir):
    folder, _, checksums = mnist_dir
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(MNIST_TEST, 10, np.uint8))
    checksums = {**checksums, "t10k-labels-idx1-ubyte.gz": md5(folder / "t10k-labels-idx1-ubyte.gz")}
    with pytest.raises(DataError, match="beyond 9"):
        load_mnist(folder, checksums=checksums)


def write_mnist_npz(path: Path, seed: int = 3, drop: str | None = None) -> dict[str, np.ndarray]:
    """A small mnist.npz in Keras's layout: x (N, 28, 28) uint8, y (N,) uint8."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 6, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 4, dtype=np.uint8),
    }
    np.savez(path, **{key: value for key, value in arrays.items() if key != drop})
    return arrays


@pytest.mark.parametrize("idx_files_too", [False, True], ids=["npz-only", "npz-and-idx"])
def test_load_mnist_from_npz(tmp_path, mnist_dir, idx_files_too):
    folder = mnist_dir[0] if idx_files_too else tmp_path / "npz-only"
    folder.mkdir(exist_ok=True)
    arrays = write_mnist_npz(folder / "mnist.npz")
    sha256 = hashlib.sha256((folder / "mnist.npz").read_bytes()).hexdigest()
    # The IDX digests are left at the published ones: the npz is preferred, so they are never checked.
    digits = load_mnist(folder, npz_sha256=sha256)
    assert digits.x_train.shape == (6, 28, 28, 1) and digits.x_train.dtype == np.uint8
    assert digits.x_test.shape == (4, 28, 28, 1) and digits.x_test.dtype == np.uint8
    assert digits.y_train.dtype == np.int32 and digits.y_test.dtype == np.int32
    for key in ("x_train", "x_test"):
        np.testing.assert_array_equal(getattr(digits, key)[..., 0], arrays[key])
    for key in ("y_train", "y_test"):
        np.testing.assert_array_equal(getattr(digits, key), arrays[key])


def test_load_mnist_rejects_npz_with_wrong_sha256(tmp_path):
    write_mnist_npz(tmp_path / "mnist.npz")
    with pytest.raises(DataError) as caught:
        load_mnist(tmp_path, npz_sha256="0" * 64)
    message = str(caught.value)
    assert "mnist.npz" in message and "sha256" in message and "0" * 64 in message


def test_load_mnist_rejects_npz_without_a_split(tmp_path):
    write_mnist_npz(tmp_path / "mnist.npz", drop="y_test")
    sha256 = hashlib.sha256((tmp_path / "mnist.npz").read_bytes()).hexdigest()
    with pytest.raises(DataError, match="not a readable MNIST archive") as caught:
        load_mnist(tmp_path, npz_sha256=sha256)
    assert "y_test" in str(caught.value)


@pytest.mark.parametrize("damage", ["empty", "cut-in-half", "last-byte-cut", "byte-flipped"])
def test_load_mnist_rejects_a_damaged_npz(tmp_path, damage):
    path = tmp_path / "mnist.npz"
    write_mnist_npz(path)
    content = path.read_bytes()
    if damage == "byte-flipped":  # inside x_train's data, so the zip's CRC check fails
        content = content[:3000] + bytes([content[3000] ^ 0xFF]) + content[3001:]
    else:
        content = content[: {"empty": 0, "cut-in-half": len(content) // 2, "last-byte-cut": len(content) - 1}[damage]]
    path.write_bytes(content)
    sha256 = hashlib.sha256(content).hexdigest()  # the digest matches; the archive is still damaged
    with pytest.raises(DataError, match="not a readable MNIST archive") as caught:
        load_mnist(tmp_path, npz_sha256=sha256)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("exists", [True, False], ids=["empty-folder", "no-folder"])
def test_load_mnist_without_files_or_network(tmp_path, monkeypatch, exists):
    url = UNREACHABLE + "mnist.npz"
    monkeypatch.setattr(data.mnist, "NPZ_URL", url)
    folder = tmp_path / "nothing-here"
    if exists:
        folder.mkdir()
    with pytest.raises(DataError) as caught:
        load_mnist(folder)
    message = str(caught.value)
    assert "mnist.npz" in message and str(folder) in message and url in message
    for name in data.mnist.IDX_MD5:
        assert name in message
    assert "--data-dir" in message and DATA_DIR_ENV in message
    assert listing(folder) == []  # no partial download left behind


def test_load_mnist_downloads_the_npz(tmp_path, served, monkeypatch):
    server_folder, url = served
    arrays = write_mnist_npz(server_folder / "mnist.npz")
    sha256 = hashlib.sha256((server_folder / "mnist.npz").read_bytes()).hexdigest()
    monkeypatch.setattr(data.mnist, "NPZ_URL", url + "mnist.npz")
    folder = tmp_path / "cache" / "datasets"  # created by the download
    digits = load_mnist(folder, npz_sha256=sha256)
    np.testing.assert_array_equal(digits.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(digits.y_test, arrays["y_test"])
    assert listing(folder) == ["mnist.npz"]
    assert (folder / "mnist.npz").read_bytes() == (server_folder / "mnist.npz").read_bytes()


def test_load_mnist_deletes_a_download_that_fails_its_checksum(tmp_path, served, monkeypatch):
    server_folder, url = served
    write_mnist_npz(server_folder / "mnist.npz")
    monkeypatch.setattr(data.mnist, "NPZ_URL", url + "mnist.npz")
    folder = tmp_path / "cache"
    with pytest.raises(DataError) as caught:
        load_mnist(folder, npz_sha256="0" * 64)
    assert "mnist.npz" in str(caught.value) and url + "mnist.npz" in str(caught.value)
    assert listing(folder) == []  # the wrong file is not kept, so the next run downloads again


# ---------------------------------------------------------------- SVHN


def svhn_arrays(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random X (32, 32, 3, count) uint8 and y (count, 1) uint8 in 1..10, with a 10 and a 1 in it."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)
    labels = rng.integers(1, 11, (count, 1)).astype(np.uint8)
    labels[0, 0], labels[-1, 0] = 10, 1
    return images, labels


@pytest.fixture
def svhn_dir(tmp_path):
    """A folder with the three official .mat files, small. Returns (folder, {name: (X, y)}, md5s)."""
    folder = tmp_path / "svhn"
    folder.mkdir()
    contents = {}
    for seed, (name, count) in enumerate(SVHN_COUNTS.items()):
        contents[name] = svhn_arrays(count, seed)
        scipy.io.savemat(folder / name, {"X": contents[name][0], "y": contents[name][1]})
    return folder, contents, {name: md5(folder / name) for name in contents}


def expected_svhn(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 32, 32, 3) images and 0..9 digits, by explicit per-image indexing."""
    count = images.shape[3]
    stacked = np.stack([images[:, :, :, index] for index in range(count)])
    digits = np.array([0 if label == 10 else int(label) for label in labels[:, 0]], np.int32)
    return stacked, digits


def test_load_svhn_reorders_axes_and_maps_10_to_0(svhn_dir):
    folder, contents, checksums = svhn_dir
    digits = load_svhn(folder, checksums=checksums)
    assert digits.name == "svhn"
    assert digits.input_shape == (32, 32, 3)
    for split, name in (("train", "train_32x32.mat"), ("test", "test_32x32.mat")):
        images, labels = getattr(digits, f"x_{split}"), getattr(digits, f"y_{split}")
        X, y = contents[name]
        assert images.shape == (SVHN_COUNTS[name], 32, 32, 3) and images.dtype == np.uint8
        assert labels.shape == (SVHN_COUNTS[name],) and labels.dtype == np.int32
        want_images, want_labels = expected_svhn(X, y)
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)
    X, y = contents["train_32x32.mat"]
    # Single pixels, in case the whole-array comparison above were built the same wrong way.
    assert digits.x_train[2, 5, 17, 1] == X[5, 17, 1, 2]
    assert digits.x_train[4, 31, 0, 2] == X[31, 0, 2, 4]
    assert digits.y_train[0] == 0 and digits.y_train[-1] == 1  # 10 is the digit 0; 1 stays 1


def test_load_svhn_include_extra_appends_extra_after_train(svhn_dir):
    folder, contents, checksums = svhn_dir
    digits = load_svhn(folder, include_extra=True, checksums=checksums)
    assert digits.name == "svhn-extra"
    train_x, train_y = expected_svhn(*contents["train_32x32.mat"])
    extra_x, extra_y = expected_svhn(*contents["extra_32x32.mat"])
    test_x, test_y = expected_svhn(*contents["test_32x32.mat"])
    np.testing.assert_array_equal(digits.x_train, np.concatenate([train_x, extra_x]))
    np.testing.assert_array_equal(digits.y_train, np.concatenate([train_y, extra_y]))
    np.testing.assert_array_equal(digits.x_test, test_x)
    np.testing.assert_array_equal(digits.y_test, test_y)


def test_load_svhn_without_extra_needs_no_extra_file(svhn_dir, monkeypatch):
    folder, _, checksums = svhn_dir
    (folder / "extra_32x32.mat").unlink()
    monkeypatch.setattr(data.svhn, "BASE_URL", UNREACHABLE)
    digits = load_svhn(folder, checksums=checksums)
    assert len(digits.y_train) == SVHN_COUNTS["train_32x32.mat"]
    assert listing(folder) == ["test_32x32.mat", "train_32x32.mat"]


@pytest.mark.parametrize("damaged", list(SVHN_COUNTS))
def test_load_svhn_rejects_a_file_that_fails_its_checksum(svhn_dir, damaged):
    folder, _, checksums = svhn_dir
    wrong = {**checksums, damaged: "0" * 32}
    with pytest.raises(DataError) as caught:
        load_svhn(folder, include_extra=True, checksums=wrong)
    message = str(caught.value)
    assert damaged in message and "md5" in message and checksums[damaged] in message


def rewrite(folder: Path, name: str, checksums: dict[str, str], **variables) -> dict[str, str]:
    """Replace one .mat file and return the checksums updated to accept it."""
    scipy.io.savemat(folder / name, variables)
    return {**checksums, name: md5(folder / name)}


@pytest.mark.parametrize(
    "images",
    [
        pytest.param(np.zeros((28, 28, 3, 5), np.uint8), id="28x28"),
        pytest.param(np.zeros((32, 32, 1, 5), np.uint8), id="one-channel"),
        pytest.param(np.zeros((5, 32, 32, 3), np.uint8), id="images-first"),
        pytest.param(np.zeros((32, 32, 5), np.uint8), id="three-dims"),
        pytest.param(np.zeros((32, 32, 3, 5), np.float64), id="float64"),
    ],
)
def test_load_svhn_rejects_a_wrong_image_array(svhn_dir, images):
    folder, _, checksums = svhn_dir
    checksums = rewrite(folder, "train_32x32.mat", checksums, X=images, y=np.ones((5, 1), np.uint8))
    with pytest.raises(DataError) as caught:
        load_svhn(folder, checksums=checksums)
    assert "train_32x32.mat" in str(caught.value)
    assert "(32, 32, 3, N)" in str(caught.value)


def test_load_svhn_rejects_a_file_without_images(svhn_dir):
    folder, _, checksums = svhn_dir
    checksums = rewrite(folder, "test_32x32.mat", checksums, y=np.ones((4, 1), np.uint8))
    with pytest.raises(DataError, match="no image array X") as caught:
        load_svhn(folder, checksums=checksums)
    assert "test_32x32.mat" in str(caught.value)


@pytest.mark.parametrize("bad_label", [0, 11, 255])
def test_load_svhn_rejects_labels_outside_1_to_10(svhn_dir, bad_label):
    folder, contents, checksums = svhn_dir
    images, labels = contents["test_32x32.mat"]
    labels = labels.copy()
    labels[1, 0] = bad_label
    checksums = rewrite(folder, "test_32x32.mat", checksums, X=images, y=labels)
    with pytest.raises(DataError, match=r"outside 1\.\.10") as caught:
        load_svhn(folder, checksums=checksums)
    assert "test_32x32.mat" in str(caught.value)


def test_load_svhn_rejects_images_and_labels_of_different_counts(svhn_dir):
    folder, contents, checksums = svhn_dir
    images, labels = contents["train_32x32.mat"]
    checksums = rewrite(folder, "train_32x32.mat", checksums, X=images, y=labels[:-1])
    with pytest.raises(DataError, match="5 images but 4 labels"):
        load_svhn(folder, checksums=checksums)


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.95, -8], ids=["empty", "in-header", "in-X", "end-of-X", "in-y"])
def test_load_svhn_rejects_a_truncated_file(svhn_dir, keep):
    folder, _, checksums = svhn_dir
    path = folder / "train_32x32.mat"
    content = path.read_bytes()
    path.write_bytes(content[:keep] if isinstance(keep, int) else content[: int(len(content) * keep)])
    checksums = {**checksums, "train_32x32.mat": md5(path)}  # the digest is right; the file is still short
    with pytest.raises(DataError) as caught:
        load_svhn(folder, checksums=checksums)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "missing, include_extra",
    [("train_32x32.mat", False), ("test_32x32.mat", False), ("extra_32x32.mat", True)],
)
def test_load_svhn_missing_file_without_network(svhn_dir, monkeypatch, missing, include_extra):
    folder, _, checksums = svhn_dir
    (folder / missing).unlink()
    before = listing(folder)
    monkeypatch.setattr(data.svhn, "BASE_URL", UNREACHABLE)
    with pytest.raises(DataError) as caught:
        load_svhn(folder, include_extra=include_extra, checksums=checksums)
    message = str(caught.value)
    assert missing in message and UNREACHABLE + missing in message and str(folder) in message
    assert listing(folder) == before  # no partial download left behind


def test_load_svhn_downloads_a_missing_file(svhn_dir, served, monkeypatch):
    folder, contents, checksums = svhn_dir
    server_folder, url = served
    (folder / "test_32x32.mat").rename(server_folder / "test_32x32.mat")
    monkeypatch.setattr(data.svhn, "BASE_URL", url)
    digits = load_svhn(folder, checksums=checksums)
    np.testing.assert_array_equal(digits.x_test, expected_svhn(*contents["test_32x32.mat"])[0])
    assert md5(folder / "test_32x32.mat") == checksums["test_32x32.mat"]


def test_load_svhn_deletes_a_download_that_fails_its_checksum(svhn_dir, served, monkeypatch):
    folder, _, checksums = svhn_dir
    server_folder, url = served
    (folder / "extra_32x32.mat").rename(server_folder / "extra_32x32.mat")
    before = listing(folder)
    monkeypatch.setattr(data.svhn, "BASE_URL", url)
    with pytest.raises(DataError) as caught:
        load_svhn(folder, include_extra=True, checksums={**checksums, "extra_32x32.mat": "0" * 32})
    assert "extra_32x32.mat" in str(caught.value)
    assert listing(folder) == before


# ---------------------------------------------------------------- data directory


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No DIGITS_DATA_DIR or KERAS_HOME, and a home folder inside tmp_path."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_default_data_dir_is_the_keras_cache(clean_env, tmp_path):
    assert default_data_dir() == tmp_path / "home" / ".keras" / "datasets"


def test_default_data_dir_respects_keras_home(clean_env, tmp_path):
    clean_env.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    assert default_data_dir() == tmp_path / "keras-home" / "datasets"


def test_default_data_dir_prefers_the_environment_variable(clean_env, tmp_path):
    clean_env.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    clean_env.setenv(DATA_DIR_ENV, str(tmp_path / "digits"))
    assert DATA_DIR_ENV == "DIGITS_DATA_DIR"
    assert default_data_dir() == tmp_path / "digits"


def test_default_data_dir_expands_home(clean_env, tmp_path):
    clean_env.setenv(DATA_DIR_ENV, os.path.join("~", "digits"))
    assert default_data_dir() == tmp_path / "home" / "digits"


def test_default_data_dir_ignores_an_empty_variable(clean_env, tmp_path):
    # An empty value would mean the working directory, i.e. downloads into the repository.
    clean_env.setenv(DATA_DIR_ENV, "")
    assert default_data_dir() == tmp_path / "home" / ".keras" / "datasets"


# ---------------------------------------------------------------- Dataset and validation split


def id_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (count, 2, 2, 1) uint16 whose every pixel is the image's index; labels index % 10."""
    ids = np.arange(count, dtype=np.uint16)
    return np.broadcast_to(ids[:, None, None, None], (count, 2, 2, 1)).copy(), (ids % 10).astype(np.int32)


@pytest.mark.parametrize(
    "count, fraction, held_out",
    [(100, 0.1, 10), (40, 0.3, 12), (1000, 0.05, 50), (10, 0.01, 1), (5, 0.99, 4), (20, 0.0, 0)],
)
def test_carve_validation_is_a_partition_of_the_training_set(count, fraction, held_out):
    images, labels = id_images(count)
    train_x, train_y, val_x, val_y = carve_validation(images, labels, fraction, seed=5)
    assert len(val_x) == len(val_y) == held_out
    assert len(train_x) == len(train_y) == count - held_out
    assert train_x.shape[1:] == val_x.shape[1:] == (2, 2, 1)
    assert train_x.dtype == val_x.dtype == images.dtype and train_y.dtype == val_y.dtype == np.int32
    train_ids, val_ids = train_x[:, 0, 0, 0], val_x[:, 0, 0, 0]
    assert len(set(train_ids)) == len(train_ids) and len(set(val_ids)) == len(val_ids)  # no repeats
    assert set(train_ids).isdisjoint(val_ids)
    assert set(train_ids) | set(val_ids) == set(range(count))
    for split_x, split_y in ((train_x, train_y), (val_x, val_y)):  # labels travel with their images
        np.testing.assert_array_equal(split_y, split_x[:, 0, 0, 0] % 10)
        assert (split_x == split_x[:, :1, :1, :]).all()  # images moved whole


def test_carve_validation_is_random_but_seeded():
    images, labels = id_images(1000)
    first = carve_validation(images, labels, 0.1, seed=11)
    again = carve_validation(images, labels, 0.1, seed=11)
    other = carve_validation(images, labels, 0.1, seed=12)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert set(first[2][:, 0, 0, 0]) != set(other[2][:, 0, 0, 0])
    val_ids = set(first[2][:, 0, 0, 0])
    assert val_ids != set(range(100)) and val_ids != set(range(900, 1000))  # a shuffle, not a slice
    default = carve_validation(images, labels, 0.1)
    fixed = carve_validation(images, labels, 0.1, seed=VALIDATION_SEED)
    for a, b in zip(default, fixed):
        np.testing.assert_array_equal(a, b)


def test_carve_validation_touches_nothing_but_its_inputs():
    images, labels = id_images(50)
    images_before, labels_before = images.copy(), labels.copy()
    global_state = np.random.get_state()
    parts = carve_validation(images, labels, 0.2, seed=3)
    np.testing.assert_array_equal(images, images_before)
    np.testing.assert_array_equal(labels, labels_before)
    after = np.random.get_state()
    assert global_state[0] == after[0] and global_state[2:] == after[2:]
    np.testing.assert_array_equal(global_state[1], after[1])  # the global RNG was not used
    for part in parts:  # the outputs are copies: editing them cannot damage the data set
        assert not np.shares_memory(part, images) and not np.shares_memory(part, labels)


def small_dataset() -> Dataset:
    images, labels = id_images(10)
    return Dataset("ids", images, labels, images[:6] + 100, labels[:6], num_classes=7)


def test_dataset_limited():
    digits = small_dataset()
    assert digits.limited(None) is digits
    assert digits.input_shape == (2, 2, 1)
    limited = digits.limited(4)
    assert (limited.name, limited.num_classes) == ("ids", 7)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(limited, field), getattr(digits, field)[:4])
    assert limited.x_train[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert limited.x_test[:, 0, 0, 0].tolist() == [100, 101, 102, 103]
    everything = digits.limited(1000)  # a limit beyond the size keeps every image
    assert len(everything.x_train) == 10 and len(everything.x_test) == 6


# ---------------------------------------------------------------- synthetic digits

# The usual seven-segment encoding, written out here independently of data.synthetic:
# a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle.
SEVEN_SEGMENT = ["abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_load_synthetic_shapes_and_balance(shape):
    digits = load_synthetic(shape, train_count=60, test_count=30, seed=4, name="syn")
    assert digits.name == "syn" and digits.input_shape == shape and digits.num_classes == 10
    assert digits.x_train.shape == (60, *shape) and digits.x_train.dtype == np.uint8
    assert digits.x_test.shape == (30, *shape) and digits.x_test.dtype == np.uint8
    assert digits.y_train.dtype == np.int32 and digits.y_test.dtype == np.int32
    assert np.bincount(digits.y_train, minlength=10).tolist() == [6] * 10
    assert np.bincount(digits.y_test, minlength=10).tolist() == [3] * 10
    assert digits.y_train[:10].tolist() != list(range(10))  # the labels are shuffled
    assert digits.x_train.std() > 20  # real pictures, not blank
    if shape[2] == 3:  # colour, not grey copied into three channels
        assert (digits.x_train[..., 0] != digits.x_train[..., 1]).any()


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_load_synthetic_is_seeded(shape):
    first = load_synthetic(shape, train_count=20, test_count=10, seed=7)
    again = load_synthetic(shape, train_count=20, test_count=10, seed=7)
    other = load_synthetic(shape, train_count=20, test_count=10, seed=8)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.x_train, other.x_train)
    assert not np.array_equal(first.x_train[:10], first.x_test)  # test is not a copy of train


def test_load_synthetic_labels_match_pictures():
    # A 1 lights two segments, every other digit at least three, so 1s have the least ink.
    digits = load_synthetic((28, 28, 1), train_count=200, test_count=10, seed=0)
    ink = digits.x_train.reshape(200, -1).astype(np.float64).sum(axis=1)
    mean_ink = [ink[digits.y_train == digit].mean() for digit in range(10)]
    assert np.argmin(mean_ink) == 1
    assert mean_ink[8] > 2 * mean_ink[1]


def draw_all(size: int, seed: int) -> list[np.ndarray]:
    """Every digit drawn from the same generator state, so they share size, place and stroke."""
    return [draw_digit(digit, size, np.random.default_rng(seed)) for digit in range(10)]


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("seed", range(4))
def test_draw_digit_lights_the_right_segments(size, seed):
    drawn = draw_all(size, seed)
    for image in drawn:
        assert image.shape == (size, size) and image.dtype == np.float32
        assert set(np.unique(image)) <= {0.0, 1.0}
    lit = [image > 0 for image in drawn]
    # Pixel sets are nested exactly as segment sets are: each segment has pixels of its own.
    for first in range(10):
        for second in range(10):
            segments_nested = set(SEVEN_SEGMENT[first]) <= set(SEVEN_SEGMENT[second])
            pixels_nested = not (lit[first] & ~lit[second]).any()
            assert pixels_nested == segments_nested, (first, second)


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("seed", range(4))
def test_draw_digit_places_segments_where_they_belong(size, seed):
    lit = [image > 0 for image in draw_all(size, seed)]
    rows8, cols8 = np.nonzero(lit[8])
    top, bottom, left, right = rows8.min(), rows8.max(), cols8.min(), cols8.max()
    # The 1 is the right-hand column of the 8's box, at full height.
    rows1, cols1 = np.nonzero(lit[1])
    assert cols1.max() == right and cols1.min() > (left + right) / 2
    assert (rows1.min(), rows1.max()) == (top, bottom)
    # 7 = 1 plus the top bar: its extra pixels lie in the top third, from the left edge.
    rows, cols = np.nonzero(lit[7] & ~lit[1])
    assert rows.min() == top and rows.max() < top + (bottom - top) / 3 and cols.min() == left
    # 8 = 0 plus the middle bar: its extra pixels straddle the vertical middle.
    rows, cols = np.nonzero(lit[8] & ~lit[0])
    middle = (top + bottom) / 2
    assert abs(rows.mean() - middle) <= 1 and rows.max() - rows.min() < (bottom - top) / 3
    assert left < cols.min() and cols.max() < right


# ---------------------------------------------------------------- tf.data pipeline

COUNT, BATCH = 23, 5  # 4 full batches and one of 3


def index_images(count: int = COUNT) -> tuple[np.ndarray, np.ndarray]:
    """Images (count, 3, 2, 1) uint8 whose pixels all equal the index; labels 3 * index + 1."""
    ids = np.arange(count, dtype=np.uint8)
    images = np.broadcast_to(ids[:, None, None, None], (count, 3, 2, 1)).copy()
    return images, (3 * ids.astype(np.int32) + 1)


def one_epoch(dataset) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Batch sizes, and all images (float32) and labels of one pass, in order."""
    pairs = [(x.numpy(), y.numpy()) for x, y in dataset]
    return [len(y) for _, y in pairs], np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])


@pytest.mark.parametrize("shuffle_seed", [None, 7])
def test_batches_give_every_image_once_per_epoch_with_its_label(shuffle_seed):
    images, labels = index_images()
    for epoch in range(2):
        dataset = batches(images, labels, BATCH, shuffle_seed=shuffle_seed, epochs=range(epoch, epoch + 1))
        x_spec, y_spec = dataset.element_spec
        assert x_spec.dtype.name == "float32" and tuple(x_spec.shape) == (None, 3, 2, 1)
        assert y_spec.dtype.name == "int32" and tuple(y_spec.shape) == (None,)
        sizes, x, y = one_epoch(dataset)
        assert sizes == [5, 5, 5, 5, 3]  # the last, partial batch is kept
        assert x.dtype == np.float32 and y.dtype == np.int32
        ids = np.rint(x[:, 0, 0, 0] * 255).astype(np.int64)
        assert sorted(ids.tolist()) == list(range(COUNT))
        np.testing.assert_array_equal(y, 3 * ids + 1)
        np.testing.assert_array_equal(x, np.broadcast_to(x[:, :1, :1, :], x.shape))  # whole images


def test_repeats_show_each_image_that_many_times_per_epoch_shuffled_among_the_rest():
    images, labels = index_images()
    repeats = np.arange(COUNT) % 3  # 0, 1 or 2 times each
    for epoch in range(2):
        sizes, x, y = one_epoch(batches(images, labels, BATCH, shuffle_seed=4, epochs=range(epoch, epoch + 1),
                                        repeats=repeats))
        ids = np.rint(x[:, 0, 0, 0] * 255).astype(np.int64)
        assert sum(sizes) == repeats.sum() == len(ids)
        np.testing.assert_array_equal(np.bincount(ids, minlength=COUNT), repeats)
        np.testing.assert_array_equal(y, 3 * ids + 1)
        assert not np.array_equal(ids, np.sort(ids))  # the copies are mixed in, not appended in order


def test_batches_scale_pixels_to_unit_range():
    rng = np.random.default_rng(9)
    images = rng.integers(0, 256, (11, 4, 5, 3), dtype=np.uint8)
    images[0, 0, 0, 0], images[1, 0, 0, 0] = 0, 255
    _, x, y = one_epoch(batches(images, np.arange(11), 4))
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_allclose(x, images.astype(np.float64) / 255, rtol=2e-7, atol=0)
    np.testing.assert_array_equal(y, np.arange(11))


def test_batches_unshuffled_keep_the_order():
    images, labels = index_images()
    dataset = batches(images, labels, BATCH)
    for _ in range(2):
        _, x, y = one_epoch(dataset)
        np.testing.assert_array_equal(np.rint(x[:, 0, 0, 0] * 255), np.arange(COUNT))
        np.testing.assert_array_equal(y, labels)


def test_batches_reshuffle_each_epoch_reproducibly():
    images, labels = index_images()
    both = one_epoch(batches(images, labels, BATCH, shuffle_seed=1, epochs=range(2)))[2]
    epoch1, epoch2 = both[:COUNT], both[COUNT:]
    assert not np.array_equal(epoch1, epoch2)  # a new order every epoch
    assert not np.array_equal(epoch1, labels)  # and not the arrays' own
    np.testing.assert_array_equal(one_epoch(batches(images, labels, BATCH, shuffle_seed=1))[2], epoch1)
    # An epoch's order depends on its number alone: a run resumed at epoch 1 sees what an uninterrupted one saw.
    np.testing.assert_array_equal(one_epoch(batches(images, labels, BATCH, shuffle_seed=1, epochs=range(1, 2)))[2],
                                  epoch2)
    other = batches(images, labels, BATCH, shuffle_seed=2)
    assert not np.array_equal(one_epoch(other)[2], epoch1)


# ---------------------------------------------------------------- registry


def test_load_dataset_rejects_an_unknown_name(tmp_path):
    with pytest.raises(UserError) as caught:  # the scripts turn UserError into exit status 2
        load_dataset("cifar", tmp_path)
    assert isinstance(caught.value, DataError)
    message = str(caught.value)
    assert "'cifar'" in message
    for name in DATASETS:
        assert name in message


EXPECTED_SHAPES = {"mnist": (28, 28, 1), "svhn": (32, 32, 3), "svhn-extra": (32, 32, 3),
                   "synthetic": (28, 28, 1), "synthetic-rgb": (32, 32, 3)}
# Number data sets are loaded by name in tests/data/test_svhn_numbers.py, test_composer.py and
# test_handwriting_numbers.py; the CVL digits and handwriting in tests/data/test_cvl.py.
LOADED_ELSEWHERE = {"svhn-numbers", "svhn-numbers-official", "svhn-numbers-official-extra", "mnist-numbers",
                    "handwriting-numbers", "cvl-digits", "handwriting"}


def test_every_dataset_has_an_expected_shape():
    assert set(DATASETS) - LOADED_ELSEWHERE == set(EXPECTED_SHAPES)


@pytest.mark.parametrize("name", list(EXPECTED_SHAPES))
def test_load_dataset_by_name(name, mnist_dir, svhn_dir, monkeypatch):
    # The registry imports each loader when it is used; fewer synthetic images keep this fast.
    monkeypatch.setattr(data.synthetic, "load_synthetic", partial(load_synthetic, train_count=20, test_count=10))
    # The small files written here are accepted by swapping in their digests for the published ones.
    mnist_folder, _, mnist_md5 = mnist_dir
    svhn_folder, _, svhn_md5 = svhn_dir
    for file_name, digest in mnist_md5.items():
        monkeypatch.setitem(data.mnist.IDX_MD5, file_name, digest)
    for file_name, digest in svhn_md5.items():
        monkeypatch.setitem(data.svhn.MD5, file_name, digest)
    folder = mnist_folder if name == "mnist" else svhn_folder
    digits = load_dataset(name, str(folder))  # a plain string is accepted too
    assert digits.name == name
    assert digits.input_shape == EXPECTED_SHAPES[name]
    assert digits.x_train.dtype == digits.x_test.dtype == np.uint8
    assert digits.y_train.dtype == digits.y_test.dtype == np.int32
    assert len(digits.x_train) == len(digits.y_train) > 0 and len(digits.x_test) == len(digits.y_test) > 0
    assert 0 <= min(digits.y_train.min(), digits.y_test.min()) and max(digits.y_train.max(), digits.y_test.max()) <= 9
    if name == "svhn-extra":
        assert len(digits.y_train) == SVHN_COUNTS["train_32x32.mat"] + SVHN_COUNTS["extra_32x32.mat"]


# --- augmentation -------------------------------------------------------------

def test_random_shift_is_a_bilinear_translation_with_black_fill():
    import scipy.ndimage
    import tensorflow as tf

    from data.pipeline import random_shift

    rng = np.random.default_rng(0)
    size, max_shift = 28, 0.08
    # A single bright pixel in the middle of image 0 reveals that image's shift
    # as the movement of its centre of mass.
    probe = np.zeros((4, size, size, 1), np.float32)
    probe[:, 14, 14] = 1.0
    pictures = rng.random((4, size, size, 1)).astype(np.float32)
    seed = tf.constant([3, 4])
    moved_probe = random_shift(tf.constant(probe), seed, max_shift).numpy()
    moved = random_shift(tf.constant(pictures), seed, max_shift).numpy()  # same seed: same shifts
    offsets = []
    for index in range(4):
        dy, dx = np.array(scipy.ndimage.center_of_mass(moved_probe[index, ..., 0])) - 14
        assert abs(dy) <= max_shift * size + 1e-4 and abs(dx) <= max_shift * size + 1e-4
        # scipy's bilinear shift, zero-padded beyond the edges, is the independent reference.
        expected = scipy.ndimage.shift(pictures[index, ..., 0], (dy, dx), order=1, mode="grid-constant", cval=0.0)
        np.testing.assert_allclose(moved[index, ..., 0], expected, atol=1e-4)
        offsets.append((dy, dx))
    assert len({np.round(offset, 3).tobytes() for offset in np.array(offsets)}) == 4, "each image gets its own shift"


def test_shifted_batches_are_reproducible_and_change_every_epoch():
    images = np.random.default_rng(1).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(64, dtype=np.int32)

    def two_epochs():
        pipeline = [(x.numpy(), y.numpy()) for x, y in batches(images, labels, 32, shuffle_seed=9, augment="shift",
                                                                epochs=range(2))]
        return [pipeline[:2], pipeline[2:]]  # two batches of 32 per epoch

    first, second = two_epochs(), two_epochs()
    for epoch_a, epoch_b in zip(first, second):
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    # Same image, two epochs: different shifts.
    by_label = [{int(label): pixels for x, y in epoch for label, pixels in zip(y, x)} for epoch in first]
    assert not np.array_equal(by_label[0][0], by_label[1][0])
    # Shifting moves pixels but never adds brightness beyond the original's range.
    assert all(x.max() <= 1.0 and x.min() >= 0.0 for x, _ in first[0])


def test_augmentation_needs_a_known_name_and_training_batches():
    images = np.zeros((4, 28, 28, 1), np.uint8)
    labels = np.zeros(4, np.int32)
    with pytest.raises(ValueError, match="augment"):
        batches(images, labels, 2, shuffle_seed=0, augment="flip")
    with pytest.raises(ValueError, match="training"):
        batches(images, labels, 2, augment="shift")


def test_auto_augmentation_follows_the_images_and_what_the_model_reads():
    from data.pipeline import resolve_augment

    assert resolve_augment("auto", 3) == "street" and resolve_augment("auto", 3, kinds.READER) == "street"
    assert resolve_augment("auto", 1) == "handwriting"
    assert resolve_augment("auto", 1, kinds.READER) == "none"  # a 30-degree turn would cut a number's ends
    assert all(resolve_augment(name, 1) == name for name in ("none", "shift", "street", "handwriting"))


def test_random_affine_turns_and_zooms_about_the_centre():
    import scipy.ndimage
    import tensorflow as tf

    from data.pipeline import random_affine

    # One bright pixel 8 px right of the centre of a 33x33 image: a turn keeps its
    # distance from the centre, a zoom scales that distance.
    probe = np.zeros((6, 33, 33, 1), np.float32)
    probe[:, 16, 24] = 1.0
    turned = random_affine(tf.constant(probe), tf.constant([5, 6]), max_shift=0.0, max_rotation=30.0).numpy()
    zoomed = random_affine(tf.constant(probe), tf.constant([5, 6]), max_shift=0.0, max_zoom=0.2).numpy()
    turn_angles, zoom_factors = [], []
    for index in range(6):
        row, col = scipy.ndimage.center_of_mass(turned[index, ..., 0])
        assert np.hypot(row - 16, col - 16) == pytest.approx(8, abs=0.3)
        turn_angles.append(np.degrees(np.arctan2(row - 16, col - 16)))
        row, col = scipy.ndimage.center_of_mass(zoomed[index, ..., 0])
        assert row == pytest.approx(16, abs=0.2)  # a pure zoom stays on the horizontal line
        zoom_factors.append((col - 16) / 8)
    assert all(abs(angle) <= 30.5 for angle in turn_angles) and np.ptp(turn_angles) > 5
    assert all(0.79 <= factor <= 1.21 for factor in zoom_factors) and np.ptp(zoom_factors) > 0.02


def test_random_light_changes_brightness_and_contrast_within_bounds():
    import tensorflow as tf

    from data.pipeline import CONTRAST_RANGE, MAX_BRIGHTNESS, random_light

    rng = np.random.default_rng(3)
    images = rng.uniform(0.3, 0.7, (16, 8, 8, 3)).astype(np.float32)  # room to move without clipping
    lit = random_light(tf.constant(images), tf.constant([1, 2])).numpy()
    for before, after in zip(images, lit):
        # Per image: after = (before - mean) * contrast + mean + brightness, an exact affine map.
        slope, intercept = np.polyfit(before.ravel(), after.ravel(), 1)
        brightness = intercept + (slope - 1) * before.mean()
        assert CONTRAST_RANGE[0] - 1e-4 <= slope <= CONTRAST_RANGE[1] + 1e-4
        assert abs(brightness) <= MAX_BRIGHTNESS + 1e-4
        np.testing.assert_allclose(after, np.clip(slope * before + intercept, 0, 1), atol=1e-5)
    assert 0.0 <= lit.min() and lit.max() <= 1.0


def test_street_augmentation_never_mirrors():
    import tensorflow as tf

    from data.pipeline import augment_batch

    # An "L": mirrored, it would match its flip better than itself.
    image = np.zeros((1, 32, 32, 3), np.float32)
    image[0, 6:26, 10:14] = 1.0
    image[0, 22:26, 10:24] = 1.0
    batch = np.repeat(image, 32, axis=0)
    out = augment_batch(tf.constant(batch), tf.constant([4, 4]), "street").numpy()
    centred = lambda a: a - a.mean()  # noqa: E731
    for picture in out:
        same = np.sum(centred(picture) * centred(image[0]))
        mirrored = np.sum(centred(picture) * centred(image[0, :, ::-1]))
        assert same > mirrored


def test_handwriting_augmentation_turns_and_zooms_a_share_of_the_images_within_its_bounds():
    import scipy.ndimage
    import tensorflow as tf

    from data import pipeline

    # A bright pixel 8 px right of the centre of 33x33 images: its distance from the centre says the zoom,
    # its angle the turn (shifts off here); an image left alone keeps it exactly where it was.
    probe = np.zeros((400, 33, 33, 1), np.float32)
    probe[:, 16, 24] = 1.0
    moved = pipeline.random_affine(tf.constant(probe), tf.constant([7, 8]), max_shift=0.0, max_rotation=30.0,
                                   max_zoom=0.3, share=0.5).numpy()
    untouched = np.array([np.array_equal(image, probe[0]) for image in moved])
    assert 0.4 < untouched.mean() < 0.6  # about half
    angles, factors = [], []
    for image in moved[~untouched]:
        row, col = scipy.ndimage.center_of_mass(image[..., 0])
        angles.append(np.degrees(np.arctan2(16 - row, col - 16)))
        factors.append(np.hypot(row - 16, col - 16) / 8)
    assert max(np.abs(angles)) <= 32 and np.ptp(angles) > 40  # 30 degrees, and a bilinear blur of one pixel
    assert 0.65 <= min(factors) and max(factors) <= 1.35 and np.ptp(factors) > 0.3  # 0.7..1.3, blurred likewise
    # The named augmentation is this, with the module's bounds, and black fill.
    named = pipeline.augment_batch(tf.constant(probe[:8]), tf.constant([1, 2]), "handwriting").numpy()
    direct = pipeline.random_affine(tf.constant(probe[:8]), tf.constant([1, 2]), pipeline.HANDWRITING_SHIFT,
                                    pipeline.HANDWRITING_ROTATION, pipeline.HANDWRITING_ZOOM,
                                    share=pipeline.HANDWRITING_SHARE).numpy()
    np.testing.assert_array_equal(named, direct)
