"""SVHN full numbers ("format 1"): the official street photos with digit boxes, cropped around each whole number.

    from data.svhn_format1 import load_svhn_format1
    numbers = load_svhn_format1(data_dir)   # x_train (N, 32, 96, 3) uint8, y_train (N, 6) int32

Reads the official train.tar.gz, test.tar.gz and, on request, extra.tar.gz from
the data directory, downloading any that are missing from the official Stanford
address. Each archive holds one folder (train/, test/, extra/) of photos 1.png,
2.png, ... and digitStruct.mat, a MATLAB v7.3 file (HDF5) whose group
`digitStruct` has the datasets `name` and `bbox` of object references: per
photo its file name (uint16 characters) and a struct of the fields height, left,
top, width and label. A field is a 1x1 number for a one-digit photo, else a
column of references to 1x1 numbers. Label 10 stands for the digit 0; left and
top are read as 0-based pixel offsets, as other readers of the set do.

Each photo is cropped (data.framing.crop_box) to the union of its digit boxes,
widened by HORIZONTAL_MARGIN of the median digit width on each side and by
VERTICAL_MARGIN of the union's height above and below, clipped to the photo,
then fitted to the reader's input by data.framing.fit_to_input. That resembles
the svhn-numbers stand-in (data/svhn_numbers.py), which covers the number plus a
little context.
Numbers longer than MAX_DIGITS, and photos whose boxes miss the photo entirely,
are skipped and counted.

Decoding tens of thousands of photos takes minutes, so the fitted arrays of each
archive are cached beside it, in a .npz named after the archive and the input
shape (e.g. svhn-train-numbers-32x96x3.npz), keyed by the archive's digest: a
changed archive is processed again. A file of that name that this module did
not write (it marks its caches) is never replaced: the numbers then load
without a cache, with a warning.
"""

import io
import tarfile
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
from PIL import Image, UnidentifiedImageError

from data.dataset import Dataset
from harness.errors import DataError, UserError
from data.files import verified_copy
from data.framing import crop_box, fit_boxes, fit_to_input
from data.numbers import MAX_DIGITS, PADDING
from data.svhn_numbers import INPUT_SHAPE

BASE_URL = "http://ufldl.stanford.edu/housenumbers/"
# Stanford publishes no checksums for these archives. These sha256s are the ones that Hugging Face's svhn
# script pinned (huggingface/datasets, datasets/svhn/dataset_infos.json, "download_checksums"); mindee/doctr
# (doctr/datasets/svhn.py) pins the same two for train and test. No published md5 was found.
ALGORITHM = "sha256"
SHA256 = {
    "train.tar.gz": "4b17bb33b6cd8f963493168f80143da956f28ec406cc12f8e5745a9f91a51898",
    "test.tar.gz": "57ac9ceb530e4aa85b55d991be8fc49c695b3d71c6f6a88afea86549efde7fb5",
    "extra.tar.gz": "e857e27d1e65bd1e7d3959b094061777f6506bbc39889a0df3bba6a729d60f9c",
}
FIELDS = ("height", "left", "top", "width", "label")
CACHE_VERSION = 2  # raise when the crop or the cached arrays change, so old caches are rebuilt
SKIPPED = ("too_long", "unusable")  # counts kept with each cache: longer than MAX_DIGITS; no box on the photo


def _damaged(path: Path, what: str) -> DataError:
    return DataError(f"{path} is not an SVHN format-1 archive ({what}); delete it and download it again.")


def read_digit_struct(source, where: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """digitStruct.mat (a path or a binary file object) -> per photo (file name, labels (k,) 1..10, boxes (k, 4)).

    Boxes are float64 x0, y0, x1, y1 (left, top, left + width, top + height).
    Raises DataError naming `where` for anything not in the official layout.
    The references are followed with h5py's low-level calls, in a quarter of the
    time of its high-level ones (measured): each photo takes a dozen or more.
    """
    try:
        with h5py.File(source, "r") as content:
            group = content.get("digitStruct")
            if not isinstance(group, h5py.Group) or not {"name", "bbox"} <= set(group):
                raise _damaged(where, "digitStruct.mat has no digitStruct group with name and bbox")
            names, structs = (_values(group[key].id) for key in ("name", "bbox"))
            if names.dtype.kind != "O" or structs.dtype.kind != "O":
                raise _damaged(where, "digitStruct's name and bbox are not columns of references")
            if len(names) != len(structs):
                raise _damaged(where, f"digitStruct lists {len(names)} names but {len(structs)} bboxes")
            return [(_name(content.id, reference, where), *_digits(content.id, struct, where))
                    for reference, struct in zip(names, structs, strict=True)]
    # OSError: not HDF5; KeyError: a field missing; ValueError, TypeError: a dangling reference, a group where a
    # dataset belongs, or something that is not a number.
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise _damaged(where, f"digitStruct.mat cannot be read: {error}") from error


def _values(dataset: h5py.h5d.DatasetID) -> np.ndarray:
    """All of a low-level HDF5 dataset, flattened; object references come out as an object array."""
    if not isinstance(dataset, h5py.h5d.DatasetID):
        raise TypeError("a group where a dataset belongs")
    values = np.empty(dataset.shape, dataset.dtype)
    dataset.read(h5py.h5s.ALL, h5py.h5s.ALL, values)
    return values.reshape(-1)


def _name(file: h5py.h5f.FileID, reference, where: Path) -> str:
    characters = _values(h5py.h5r.dereference(reference, file))  # MATLAB's char: uint16 codes
    if characters.dtype.kind not in "ui" or not len(characters):
        raise _damaged(where, "a photo name in digitStruct.mat is not text")
    return "".join(map(chr, characters))


def _digits(file: h5py.h5f.FileID, reference, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """One photo's bbox struct -> labels (k,) int32 1..10 and boxes (k, 4) float64."""
    struct = h5py.h5r.dereference(reference, file)
    if not isinstance(struct, h5py.h5g.GroupID):
        raise _damaged(where, "a bbox in digitStruct.mat is not a struct")
    values = {}
    for field in FIELDS:
        column = _values(h5py.h5d.open(struct, field.encode()))
        if column.dtype.kind == "O":  # several digits: a reference to a 1x1 number per digit
            column = np.array([_values(h5py.h5r.dereference(item, file)).item() for item in column])
        values[field] = column.astype(np.float64)
    lengths = {len(column) for column in values.values()}
    if len(lengths) != 1 or not all(np.isfinite(column).all() for column in values.values()):
        raise _damaged(where, "a bbox in digitStruct.mat has fields of different lengths or non-numbers")
    labels = values["label"]
    if np.any((labels < 1) | (labels > 10) | (labels != np.round(labels))):
        raise _damaged(where, "a digit label in digitStruct.mat is outside 1..10")
    left, top = values["left"], values["top"]
    boxes = np.stack([left, top, left + values["width"], top + values["height"]], axis=1)
    return labels.astype(np.int32), boxes


def _members(tar: tarfile.TarFile):
    """The archive's regular files, one by one: (name without a leading "./", content stream)."""
    for member in tar:
        if member.isfile():
            yield member.name.removeprefix("./"), tar.extractfile(member)


def read_archive(path: Path, input_shape: tuple[int, int, int] = INPUT_SHAPE):
    """One official archive -> (images, labels, boxes, skipped), in digitStruct.mat's order.

    images: (N, H, W, C) uint8 number crops fitted to input_shape.
    labels: (N, MAX_DIGITS) int32 digits 0..9, then PADDING.
    boxes: (N, MAX_DIGITS, 4) float32 digit boxes x0, y0, x1, y1 in the fitted crop's pixels, then PADDING.
    skipped: photos left out, by reason (SKIPPED).
    The gzip stream is read twice: digitStruct.mat may come after the photos.
    """
    path = Path(path)
    folder = path.name.removesuffix(".tar.gz")
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise DataError(f"SVHN photos can be read with 1 or 3 channels, not {channels}.")
    try:
        with tarfile.open(path, "r:gz") as tar:
            struct = next((stream.read() for member_name, stream in _members(tar)
                           if member_name == f"{folder}/digitStruct.mat"), None)
        if struct is None:
            raise _damaged(path, f"it has no {folder}/digitStruct.mat")
        photos = read_digit_struct(io.BytesIO(struct), path)
        del struct
        skipped = dict.fromkeys(SKIPPED, 0)
        slots = {}  # member name -> row in the output, for photos short enough to keep
        for name, labels, _ in photos:
            if len(labels) > MAX_DIGITS or not len(labels):
                skipped["too_long" if len(labels) else "unusable"] += 1
            elif f"{folder}/{name}" in slots:
                raise _damaged(path, f"digitStruct.mat lists {name} twice")
            else:
                slots[f"{folder}/{name}"] = len(slots)
        kept = [photo for photo in photos if 0 < len(photo[1]) <= MAX_DIGITS]
        images = np.empty((len(kept), height, width, channels), np.uint8)
        boxes = np.full((len(kept), MAX_DIGITS, 4), PADDING, np.float32)
        labels = np.full((len(kept), MAX_DIGITS), PADDING, np.int32)
        usable = np.zeros(len(kept), bool)
        seen = np.zeros(len(kept), bool)
        with tarfile.open(path, "r:gz") as tar:
            for member_name, stream in _members(tar):
                row = slots.get(member_name)
                if row is None:
                    continue
                if seen[row]:
                    raise _damaged(path, f"it holds {member_name} twice")
                seen[row] = True
                _, digits, digit_boxes = kept[row]
                usable[row] = _fill(stream.read(), digits, digit_boxes, images[row], labels[row], boxes[row],
                                    f"{path}: {member_name}")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:  # gzip.BadGzipFile is an OSError
        raise _damaged(path, f"it cannot be read: {error}") from error
    if not seen.all():
        missing = next(name for name, row in slots.items() if not seen[row])
        raise _damaged(path, f"it lacks {int((~seen).sum())} of the photos digitStruct.mat lists, such as {missing}")
    skipped["unusable"] += int((~usable).sum())
    if not usable.all():  # indexing copies, so only when a photo was left out (the extra images are 1.9 GB)
        images, labels, boxes = images[usable], labels[usable], boxes[usable]
    return images, labels, boxes, skipped


def _fill(content: bytes, digits, digit_boxes, image_out, labels_out, boxes_out, where: str) -> bool:
    """Crop one photo around its number into image_out (H, W, C); False when the boxes miss the photo."""
    try:
        with Image.open(io.BytesIO(content)) as photo:
            photo.load()
            crop = crop_box(digit_boxes, (photo.height, photo.width))
            if crop is None:
                return False
            pixels = np.asarray(photo.crop(crop).convert("RGB" if image_out.shape[-1] == 3 else "L"), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{where} is not a readable PNG ({type(error).__name__}); delete the archive and download "
                        f"it again.") from error
    pixels = pixels.reshape(*pixels.shape[:2], -1)
    height, width = image_out.shape[:2]
    image_out[...] = fit_to_input(pixels, height, width)
    labels_out[:len(digits)] = digits % 10  # SVHN's 10 is the digit 0
    # Digit boxes relative to the crop, clipped to it (a box may stick out of the photo).
    x0, y0, x1, y1 = crop
    inside = np.clip(digit_boxes - [x0, y0, x0, y0], 0, [x1 - x0, y1 - y0] * 2)
    boxes_out[:len(digits)] = fit_boxes(inside, pixels.shape[:2], image_out.shape)
    return True


def cache_path(name: str, data_dir: Path, input_shape: tuple[int, int, int]) -> Path:
    """Where the fitted arrays of archive `name` are cached for input_shape."""
    return Path(data_dir) / f"svhn-{name.removesuffix('.tar.gz')}-numbers-{'x'.join(map(str, input_shape))}.npz"


def _read_cache(path: Path, digest: str, input_shape) -> tuple | None:
    """The cached (images, labels, boxes, skipped), or None if it is missing, stale or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as cache:
            if str(cache["digest"]) != digest or int(cache["version"]) != CACHE_VERSION:
                return None
            images, labels, boxes = cache["images"], cache["labels"], cache["boxes"]
            skipped = {reason: int(cache[reason]) for reason in SKIPPED}
    # Missing, cut short, not an .npz, a key missing: each means "build it again". (zlib: damaged compression;
    # TokenError: a damaged array header, which numpy tokenizes as Python; TypeError: a lone .npy, no archive.)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, tokenize.TokenError):
        return None
    count = len(images)
    if (images.dtype != np.uint8 or images.shape != (count, *input_shape) or labels.shape != (count, MAX_DIGITS)
            or boxes.shape != (count, MAX_DIGITS, 4)):
        return None
    return images, labels.astype(np.int32), boxes.astype(np.float32), skipped


def _write_cache(path: Path, digest: str, images, labels, boxes, skipped) -> None:
    """Save the arrays whole and durably, recorded as the project's (harness/atomic.py); a file of that name
    that the project did not write is a UserError, and stays."""
    from harness import atomic

    with atomic.replacing(path, elsewhere="another --data-dir") as temporary:
        with open(temporary, "wb") as stream:
            np.savez(stream, images=images, labels=labels, boxes=boxes, digest=np.str_(digest),
                     version=np.int64(CACHE_VERSION), **{reason: np.int64(count) for reason, count in skipped.items()})


def load_split(name: str, data_dir: Path, input_shape=INPUT_SHAPE, checksums: dict[str, str] = SHA256):
    """One archive's (images, labels, boxes, skipped) as read_archive gives them, from the cache when it is current.

    The archive is verified (or downloaded) first; its digest keys the cache.
    """
    data_dir = Path(data_dir)
    archive = verified_copy(name, BASE_URL + name, checksums[name], ALGORITHM, data_dir, f"SVHN's {name}")
    cache = cache_path(name, data_dir, input_shape)
    cached = _read_cache(cache, checksums[name], input_shape)
    if cached is not None:
        return cached
    arrays = read_archive(archive, input_shape)
    try:
        _write_cache(cache, checksums[name], *arrays)
    except UserError:
        warnings.warn(f"{cache} was not written by this project, so it is left alone and {name}'s numbers are not "
                      f"cached; move it away to have them cached.", stacklevel=2)
    except OSError as error:  # a read-only data folder: the arrays are still good, only slower next time
        warnings.warn(f"could not cache {name}'s numbers in {cache} ({error}); it will be read again next time.",
                      stacklevel=2)
    return arrays


def load_svhn_format1(data_dir: Path, include_extra: bool = False, input_shape=INPUT_SHAPE,
                      checksums: dict[str, str] = SHA256) -> Dataset:
    """Official SVHN numbers: images (N, H, W, C) uint8 fitted to input_shape, labels (N, MAX_DIGITS) int32.

    include_extra adds the 202,353 easier `extra` photos to the training split
    (about 1.9 GB as 32x96x3 uint8; twice that at the peak, while the training
    split is put together). `checksums` are the published sha256s;
    tests replace them to load small archives they write in the official layout.
    """
    data_dir = Path(data_dir)
    train_names = ["train.tar.gz"] + (["extra.tar.gz"] if include_extra else [])
    train = [load_split(name, data_dir, input_shape, checksums) for name in train_names]
    x_test, y_test, _, _ = load_split("test.tar.gz", data_dir, input_shape, checksums)
    if len(train) == 1:
        x_train, y_train = train[0][:2]
    else:
        x_train = np.concatenate([split[0] for split in train])
        y_train = np.concatenate([split[1] for split in train])
    del train
    for split, labels in (("training", y_train), ("test", y_test)):
        if not len(labels):
            raise DataError(f"SVHN's format-1 {split} archives in {data_dir} hold no usable numbers; they are "
                            f"damaged.")
    name = "svhn-numbers-official-extra" if include_extra else "svhn-numbers-official"
    return Dataset(name, x_train, y_train, x_test, y_test)
