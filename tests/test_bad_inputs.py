"""Generated bad inputs for every script: each must end in one line on stderr ("error: ..."; a warning or
log record a terminal would show counts as a line too), exit status 1 or 2, no traceback, and no byte
changed in any file that existed before.

    python -m pytest tests/test_bad_inputs.py -q       # ends with the tally of inputs tried and outcomes
    BAD_INPUTS_ANSWERS=answers.tsv python -m pytest tests/test_bad_inputs.py   # also every answer, one a line

The scripts run in this process (their main(argv); a SystemExit is read as the exit status), so the
whole file takes well under a minute. The inputs, drawn from seeded generators so every id names
the same input on every run:
- random bytes, truncations and flipped bytes of every file kind the scripts read: .keras models
  (--model-file of predict.py and visualize.py, model.keras of a run for evaluate.py and
  python -m serving.export), .npz data sets (--dataset), the MNIST IDX .gz and SVHN .mat files of a
  --data-dir (checked against their checksums; with the checks switched off, the parsers behind
  them), images for predict.py, and a run's config.json and metrics.json;
- images of extreme sizes, flag values of every kind, paths with spaces and non-ASCII letters,
  run folders that are files or hold someone's own files, missing and read-only folders.
A few inputs are valid and must succeed (an image in a folder named "dossier été").

Failures in files owned by others are marked xfail with a reason naming the file (KNOWN, below).
"""

import collections
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import traceback
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import keras
import numpy as np
import pytest
import scipy.io
from PIL import Image

import data.mnist
import data.svhn
import evaluate
import serving.export
import predict
import train
import visualize
from data.synthetic import draw_digit
from test_npz import write_npz

SEED = 20261130
SCRIPTS = {  # every main is wrapped by harness.cli.entry_point
    "train": train.main,
    "evaluate": evaluate.main,
    "visualize": visualize.main,
    "predict": predict.main,
    "export": serving.export.main,
}
# TensorFlow's C++ logging (absl) writes lines such as "W0000 00:00:1796066338.496804 11605 port.cc:153] ...".
CPP_LOG = re.compile(r"^([WIEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")
LONGEST_LINE = 600  # characters: a one-line message, not a dump
TALLY: collections.Counter = collections.Counter()  # outcomes over the session, printed by the last test
ANSWERS: list[str] = []  # "id<TAB>status<TAB>stderr", written to $BAD_INPUTS_ANSWERS (a file path) when it is set
UNREACHABLE_URL = "http://127.0.0.1:9/"  # the discard port: a download fails at once, offline or not


# ---------------------------------------------------------------- running a script and judging its answer


@dataclass
class Answer:
    code: object  # the exit status, or None when an exception escaped
    out: str
    errors: list[str]  # non-empty stderr lines, then one per warning or log record a terminal would show
    trace: str = ""


def run_script(script: str, argv: list[str], capfd) -> Answer:
    """main(argv) of `script` as a terminal would see it: stdout, stderr (Python's and C++'s), exit status."""
    capfd.readouterr()
    shown = []

    class Shown(logging.Handler):  # Python prints records of WARNING and above when nothing else handles them
        def emit(self, record):
            shown.append(f"{record.levelname}:{record.name}:{record.getMessage()}")

    handler = Shown(logging.WARNING)
    logging.getLogger().addHandler(handler)
    trace = ""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                code = SCRIPTS[script](argv)
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) or stop.code is None else 1
            except Exception:  # noqa: BLE001 - what a user would see as a traceback
                code, trace = None, traceback.format_exc()
    finally:
        logging.getLogger().removeHandler(handler)
    captured = capfd.readouterr()
    hidden = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)  # off by default
    printed = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, hidden)]
    errors = [line for line in captured.err.splitlines() if line.strip()] + printed + shown
    return Answer(0 if code is None and not trace else code, captured.out, errors, trace)


def judge(answer: Answer, expect: str) -> list[str]:
    """What is wrong with the answer to a bad input ("refused") or a valid one ("succeeds")."""
    if answer.trace or "Traceback" in answer.out + "\n".join(answer.errors):
        return ["a traceback:\n" + (answer.trace or "\n".join(answer.errors))]
    problems = []
    if expect == "succeeds":
        if answer.code != 0:
            problems.append(f"exit status {answer.code}, expected 0")
        if answer.errors:
            problems.append(f"stderr not empty: {answer.errors}")
        return problems
    if expect == "json-refused":  # predict.py --json reports an unusable image on stdout, as JSON
        lines = [line for line in answer.out.splitlines() if line.strip()]
        if answer.code != 2 or len(lines) != 1 or "error" not in json.loads(lines[0]) or answer.errors:
            problems.append(f"expected status 2, one JSON error on stdout and nothing on stderr; got "
                            f"{answer.code}, {lines}, {answer.errors}")
        return problems
    if answer.code not in (1, 2):
        problems.append(f"exit status {answer.code}, expected 1 or 2")
    cpp = [line for line in answer.errors if CPP_LOG.match(line)]
    if cpp:
        problems.append(f"TensorFlow's C++ log on stderr: {cpp}")
    if len(answer.errors) != 1:
        problems.append(f"{len(answer.errors)} lines on stderr, expected one: {answer.errors}")
    elif not answer.errors[0].startswith("error: ") or len(answer.errors[0]) > LONGEST_LINE:
        problems.append(f"the line is not a short 'error: ...' sentence: {answer.errors[0][:2 * LONGEST_LINE]!r}")
    return problems


def tree_digests(root: Path) -> dict[str, str]:
    """{path relative to root: sha256} of every file under root ("<dir>" for folders); a file root is {"": ...}."""
    root = Path(root)

    def digest(path: Path) -> str:
        if path.is_symlink() and not path.exists():
            return "<dangling link>"
        if not path.is_file():
            return "<special>"
        return hashlib.sha256(path.read_bytes()).hexdigest()

    if not root.is_dir():
        return {"": digest(root)} if root.exists() or root.is_symlink() else {}
    digests = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            digests[os.path.relpath(os.path.join(folder, name), root)] = "<dir>"
        for name in files:
            path = Path(folder, name)
            digests[str(path.relative_to(root))] = digest(path)
    return digests


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files changed or removed, and anything added but empty folders (the data folder a failed download
    made, the folder holding a run's lock) and a run's lock: an empty .NAME.lock beside the run folder."""
    changed = [f"changed or removed: {path}" for path, digest in before.items() if after.get(path) != digest]
    empty = hashlib.sha256(b"").hexdigest()
    new = {path: digest for path, digest in after.items() if path not in before}
    locks = {path for path, digest in new.items()
             if Path(path).name.startswith(".") and path.endswith(".lock") and digest == empty}
    holding = {str(folder) for path in new if path not in locks for folder in Path(path).parents}
    added = [f"added: {path}" for path, digest in new.items()
             if path not in locks and not (digest == "<dir>" and path not in holding)]
    return changed + added


# ---------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    id: str
    script: str
    setup: Callable  # (Env) -> argv; writes the inputs into env.tmp
    expect: str = "refused"  # or "succeeds", "json-refused"
    known: str | None = None  # a failure in a file owned by others: the file, what goes wrong, the fix


CASES: list[Case] = []


def case(id, script, setup, expect="refused"):
    CASES.append(Case(id, script, setup, expect))


def hash_seed(*parts) -> int:
    """A seed that depends on `parts` alone (Python's hash() changes between runs)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16)


def family_rng(name: str) -> np.random.Generator:
    """Each family draws from its own stream, so adding a family never changes another's inputs."""
    return np.random.default_rng([SEED, hash_seed(name)])


def noise(seed, length: int, prefix: bytes = b"") -> bytes:
    """`prefix` then random bytes, `length` in all."""
    return (prefix + np.random.default_rng(seed).bytes(length))[:max(length, len(prefix))]


def flipped(content: bytes, seed, start: int = 0, end: int | None = None, count: int = 3) -> bytes:
    """content with `count` bytes in [start, end) inverted."""
    buffer = bytearray(content)
    end = len(buffer) if end is None else end
    for position in np.random.default_rng(seed).integers(start, end, count):
        buffer[position] ^= 0xFF
    return bytes(buffer)


def member_span(content: bytes, name: str) -> tuple[int, int]:
    """(start, end) of a zip member's stored (possibly compressed) bytes inside the archive."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo(name)
    name_length, extra_length = struct.unpack("<HH", content[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    return start, start + info.compress_size


def rezipped(content: bytes, replace: dict[str, bytes | None], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive with members replaced (None: removed), checksums correct, written with `compression`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w", compression) as target:
        for name in source.namelist():
            if name in replace:
                if replace[name] is not None:
                    target.writestr(name, replace[name])
            else:
                target.writestr(name, source.read(name))
        for name, member in replace.items():
            if name not in source.namelist() and member is not None:
                target.writestr(name, member)
    return out.getvalue()


def compression_method(content: bytes, method: int) -> bytes:
    """A zip archive whose every member claims compression `method` (2 bytes in each local and central header)."""
    buffer = bytearray(content)
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = buffer.find(signature)
        while start >= 0:
            buffer[start + offset:start + offset + 2] = struct.pack("<H", method)
            start = buffer.find(signature, start + 4)
    return bytes(buffer)


def damage_kinds(family: str, magic: bytes, members: tuple[str, ...] = ()) -> list[tuple[str, Callable]]:
    """(name, bytes -> damaged bytes) shared by every file kind: noise, truncations, flipped bytes."""
    rng = family_rng(family)
    kinds = [("empty", lambda content: b"")]
    for length in (1, 64, 5000):
        seed = int(rng.integers(2 ** 31))
        kinds.append((f"noise-{length}", lambda content, s=seed, n=length: noise(s, n)))
    seed = int(rng.integers(2 ** 31))
    kinds.append(("magic-then-noise", lambda content, s=seed: noise(s, 3000, magic)))
    for cut in (len(magic), 40):
        kinds.append((f"first-{cut}-bytes", lambda content, n=cut: content[:n]))
    for fraction in np.round(rng.uniform(0.05, 0.95, 2), 3):
        kinds.append((f"cut-at-{fraction:.1%}", lambda content, f=fraction: content[:int(len(content) * f)]))
    kinds.append(("last-byte-missing", lambda content: content[:-1]))
    for member in members:
        seed = int(rng.integers(2 ** 31))
        kinds.append((f"flipped-in-{member}",
                       lambda content, s=seed, m=member: flipped(content, s, *member_span(content, m))))
    return kinds


# ---------------------------------------------------------------- the world the cases run in


@dataclass
class World:
    """Valid inputs made once per session; cases copy them into their own folder before damaging them."""

    run: Path  # a real run of train.py --dataset synthetic --dry-run (a 28x28x1 convnet)
    small_model: Path  # a 28x28x1 classifier of one dense layer, untrained: loads 10 times as fast as the run's
    street_model: Path  # a 32x32x3 one, the same
    odd_models: dict[str, Path]  # .keras files that load but are no digit model
    png: bytes  # a dark seven-segment 7 on light paper
    jpeg: bytes
    npz: bytes  # a small valid data set, 20x24 greyscale, 4 classes
    npz_compressed: bytes  # the same, deflated as numpy.savez_compressed writes it
    mnist: dict[str, bytes]  # the four IDX .gz files, small
    svhn: dict[str, bytes]  # train_32x32.mat, test_32x32.mat, small
    real_mnist: Path | None  # DIGITS_DATA_DIR when it holds the official IDX files
    digests: dict = field(default_factory=dict)  # of the folder holding run and models, checked at the end


@dataclass
class Env:
    world: World
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    cleanups: list = field(default_factory=list)

    def file(self, relative: str, content: bytes) -> Path:
        path = self.tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def run_copy(self, relative: str = "run") -> Path:
        target = self.tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.world.run, target)
        return target

    def model_copy(self, relative: str = "model.keras", source: Path | None = None) -> Path:
        """A copy of the run's model (or of `source`)."""
        return self.file(relative, Path(source or self.world.run / "model.keras").read_bytes())

    def reader_copy(self, relative: str = "model.keras") -> Path:
        """A copy of the small 28x28x1 classifier, for cases whose subject is not the model."""
        return self.model_copy(relative, self.world.small_model)

    def edit_config(self, run: Path, **changes) -> Path:
        config = json.loads((run / "config.json").read_text())
        config.update(changes)
        (run / "config.json").write_text(json.dumps(config))
        return run

    def data_dir(self, files: dict[str, bytes], relative: str = "data") -> Path:
        """A folder holding `files` ({name: content})."""
        folder = self.tmp / relative
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
        return folder

    def trust(self, files: dict[str, bytes], checksums: dict[str, str]):
        """Make `files` the published ones: their md5s replace the official digests for this test."""
        for name, content in files.items():
            self.monkeypatch.setitem(checksums, name, hashlib.md5(content).hexdigest())

    def skip_checksums(self):
        """Let damaged files through the checksum checks, to reach the parsers behind them."""
        self.monkeypatch.setattr(data.mnist, "verify_checksum", lambda *args: None)
        self.monkeypatch.setattr(data.files, "verify_checksum", lambda *args: None)  # behind data.files.verified_copy


def digit_picture(digit=7, size=(120, 90), seed=0) -> np.ndarray:
    """uint8 (h, w): a dark seven-segment digit on light paper, as a photo of a written digit shows it."""
    ink = draw_digit(digit, max(size), np.random.default_rng(seed))[:size[0], :size[1]]
    return (230 - 200 * ink).astype(np.uint8)


def encoded(array: np.ndarray, kind: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=kind)
    return out.getvalue()


def npz_bytes(**changes) -> bytes:
    """The small valid data set of tests/test_npz.py (20x24 greyscale, 4 classes), with `changes` (None: drop)."""
    return write_npz(io.BytesIO(), **changes).getvalue()


def idx_bytes(array: np.ndarray, type_code=0x08) -> bytes:
    """A gzipped IDX file: 0x00 0x00, type code, ndim, sizes as big-endian uint32, raw payload."""
    raw = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    return gzip.compress(raw, mtime=0)


def mnist_files(train_count=30, test_count=20) -> dict[str, bytes]:
    """The four IDX .gz files of a small MNIST: 28x28 random pixels, labels 0..9."""
    rng = np.random.default_rng(1)
    return {
        "train-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (train_count, 28, 28), dtype=np.uint8)),
        "train-labels-idx1-ubyte.gz": idx_bytes((np.arange(train_count) % 10).astype(np.uint8)),
        "t10k-images-idx3-ubyte.gz": idx_bytes(rng.integers(0, 256, (test_count, 28, 28), dtype=np.uint8)),
        "t10k-labels-idx1-ubyte.gz": idx_bytes((np.arange(test_count) % 10).astype(np.uint8)),
    }


def mat_bytes(count=30, images=None, labels=None) -> bytes:
    """An SVHN format-2 .mat file: X (32, 32, 3, N) uint8, y (N, 1) labels 1..10; replace X or y, or drop y
    (labels=False)."""
    rng = np.random.default_rng(2)
    content = {"X": rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8) if images is None else images}
    if labels is not False:
        content["y"] = (np.arange(count) % 10 + 1).astype(np.uint8).reshape(-1, 1) if labels is None else labels
    out = io.BytesIO()
    scipy.io.savemat(out, content)
    return out.getvalue()


def svhn_files() -> dict[str, bytes]:
    return {"train_32x32.mat": mat_bytes(30), "test_32x32.mat": mat_bytes(12)}


def odd_models(folder: Path) -> dict[str, Path]:
    """.keras files of models that load but take no image batch, or are no classifier, or hold Python code."""
    layers = keras.layers
    built = {}
    image = keras.Input((28, 28, 1))
    vector = keras.Input((5,))
    built["vector-input"] = keras.Model(vector, layers.Dense(3, activation="softmax")(vector))
    two_channels = keras.Input((28, 28, 2))
    built["two-channel-input"] = keras.Model(two_channels, layers.Dense(10, activation="softmax")(
        layers.Flatten()(two_channels)))
    built["feature-map-output"] = keras.Model(image, layers.Conv2D(4, 3, name="conv1")(image))
    any_size = keras.Input((None, None, 1))
    built["any-size-input"] = keras.Model(any_size, layers.Dense(10, activation="softmax")(
        layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, name="conv1")(any_size))))
    doubled = layers.Lambda(lambda x: x * 2, name="double")(image)
    built["python-lambda"] = keras.Model(image, layers.Dense(10, activation="softmax")(layers.Flatten()(doubled)))
    other = keras.Input((28, 28, 1))
    built["two-inputs"] = keras.Model([image, other], layers.Dense(10, activation="softmax")(
        layers.Flatten()(layers.Add()([image, other]))))
    paths = {}
    for name, model in built.items():
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
    return paths


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    folder = tmp_path_factory.mktemp("bad_inputs_world")
    run = folder / "pristine run"
    # The run records a data folder that never exists, so no case reaches a real data set by accident.
    assert train.main(["--dataset", "synthetic", "--dry-run", "--run-dir", str(run),
                       "--data-dir", str(folder / "no data here")]) == 0
    for name, shape in (("small.keras", (28, 28, 1)), ("street.keras", (32, 32, 3))):
        image = keras.Input(shape)
        keras.Model(image, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(image))).save(
            folder / name)
    picture = digit_picture()
    real = Path(os.environ.get("DIGITS_DATA_DIR", "/nonexistent"))
    real_mnist = real if all((real / name).is_file() for name in data.mnist.IDX_MD5) else None
    made = World(run=run, small_model=folder / "small.keras", street_model=folder / "street.keras",
                 odd_models=odd_models(folder), png=encoded(picture, "PNG"), jpeg=encoded(picture, "JPEG"),
                 npz=npz_bytes(), npz_compressed=rezipped(npz_bytes(), {}, zipfile.ZIP_DEFLATED), mnist=mnist_files(),
                 svhn=svhn_files(), real_mnist=real_mnist)
    made.digests = tree_digests(folder)
    yield made
    # Whichever cases ran, in whatever order: the session's own inputs are as they were made.
    assert changes(made.digests, tree_digests(folder)) == []


@pytest.fixture(autouse=True)
def offline_and_elsewhere(tmp_path, monkeypatch):
    """Every case runs in its own empty folder, with no default data and downloads that fail at once."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "no default data"))
    monkeypatch.setattr(data.mnist, "NPZ_URL", UNREACHABLE_URL + "mnist.npz")
    monkeypatch.setattr(data.svhn, "BASE_URL", UNREACHABLE_URL)


# ---------------------------------------------------------------- families of inputs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
GZIP_SIGNATURE = b"\x1f\x8b\x08"
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created on: Mon Jan  1 00:00:00 2024".ljust(116) + bytes(8)
MNIST_NAMES = list(data.mnist.IDX_MD5)


def model_uses(name: str, make_model: Callable, scripts=("predict", "visualize", "evaluate", "export")):
    """One case per script that reads a .keras file: `make_model(env)` -> the file's bytes."""

    def predict_setup(env):
        model = env.file("model.keras", make_model(env))
        return ["--model-file", str(model), str(env.file("digit.png", env.world.png))]

    def visualize_setup(env):
        return ["--model-file", str(env.file("model.keras", make_model(env))), "--dataset", "synthetic",
                "--layer", "conv1"]

    def run_setup(env):
        run = env.run_copy()
        (run / "model.keras").write_bytes(make_model(env))
        return ["--run-dir", str(run)]

    setups = {"predict": predict_setup, "visualize": visualize_setup, "evaluate": run_setup, "export": run_setup}
    for script in scripts:
        case(f"keras-{name}-{script}", script, setups[script])


def keras_family():
    # Every damaged file goes to predict.py (the cheapest reader) and to one of the other three in turn:
    # all four open it through harness/model_files.py.
    others = ["visualize", "evaluate", "export"]
    base = lambda env: (env.world.run / "model.keras").read_bytes()  # noqa: E731
    config = lambda env: json.loads(zipfile.ZipFile(env.world.run / "model.keras").read("config.json"))  # noqa: E731
    kinds = [(name, lambda env, d=damage: d(base(env)))
             for name, damage in damage_kinds("keras", ZIP_SIGNATURE, members=("config.json", "model.weights.h5"))]
    kinds += [
        ("hdf5-legacy-file", lambda env: noise(1, 2000, HDF5_SIGNATURE)),
        ("config-noise", lambda env: rezipped(base(env), {"config.json": noise(2, 300)})),
        ("config-a-list", lambda env: rezipped(base(env), {"config.json": b"[]"})),
        ("config-a-string", lambda env: rezipped(base(env), {"config.json": b'"convnet"'})),
        ("config-null", lambda env: rezipped(base(env), {"config.json": b"null"})),
        ("config-empty-object", lambda env: rezipped(base(env), {"config.json": b"{}"})),
        ("config-unknown-class", lambda env: rezipped(base(env), {"config.json": json.dumps(
            {**config(env), "class_name": "NoSuchModel", "module": "nowhere"}).encode()})),
        ("no-config", lambda env: rezipped(base(env), {"config.json": None})),
        ("no-weights", lambda env: rezipped(base(env), {"model.weights.h5": None})),
        ("weights-noise", lambda env: rezipped(base(env), {"model.weights.h5": noise(3, 5000)})),
        ("weights-half", lambda env: rezipped(base(env), {"model.weights.h5": zipfile.ZipFile(
            env.world.run / "model.keras").read("model.weights.h5")[:20000]})),
    ]
    for number, (name, make) in enumerate(kinds):
        model_uses(name, make, ("predict", others[number % len(others)]))
    # Files that load but hold no digit model: every script must say so, not crash.
    for name in ("vector-input", "two-channel-input", "feature-map-output", "any-size-input", "python-lambda",
                 "two-inputs"):
        scripts = ("predict", "visualize", "evaluate", "export")
        if name == "feature-map-output":
            scripts = ("predict", "evaluate", "export")  # visualize.py may draw any functional model's conv1
        if name == "any-size-input":
            scripts = ("predict", "visualize")  # it classifies 28x28 images too: a run may hold it
        model_uses(name, lambda env, n=name: env.world.odd_models[n].read_bytes(), scripts)


def npz_uses(name: str, make: Callable, visualize_too: bool = True):
    """The data set as --dataset of train.py (a new run) and of visualize.py (shown with a run's model)."""
    case(f"npz-{name}-train", "train", lambda env: [
        "--dataset", str(env.file("bad.npz", make(env))), "--dry-run", "--run-dir", str(env.tmp / "run")])
    if visualize_too:
        case(f"npz-{name}-visualize", "visualize", lambda env: [
            "--run-dir", str(env.run_copy()), "--dataset", str(env.file("bad.npz", make(env))), "--layer", "dense1"])


def npz_family():
    for name, damage in damage_kinds("npz", ZIP_SIGNATURE, members=("y_train.npy",)):
        npz_uses(name, lambda env, d=damage: d(env.world.npz))
    rng = family_rng("npz-compressed")
    for member in ("x_train.npy", "y_test.npy"):
        seed = int(rng.integers(2 ** 31))
        npz_uses(f"compressed-flipped-in-{member}", lambda env, s=seed, m=member: flipped(
            env.world.npz_compressed, s, *member_span(env.world.npz_compressed, m)))
    seed = int(rng.integers(2 ** 31))
    npz_uses("npy-header-flipped", lambda env, s=seed: flipped(
        env.world.npz, s, member_span(env.world.npz, "x_train.npy")[0] + 8,
        member_span(env.world.npz, "x_train.npy")[0] + 60))

    def single_array(env):
        out = io.BytesIO()
        np.save(out, np.zeros((3, 28, 28), np.uint8))
        return out.getvalue()

    def header_unclosed(env):  # numpy tokenizes a .npy header as Python: an open bracket never closed
        header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2".ljust(118) + b"\n"
        array = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(8)
        return rezipped(env.world.npz, {"x_train.npy": array})

    structural = {
        "a-single-npy-array": single_array,
        "npy-header-never-closed": header_unclosed,
        "unknown-zip-compression": lambda env: compression_method(env.world.npz, 99),
        "pickled-objects": lambda env: npz_bytes(y_train=np.array([{"label": 1}] * 120, dtype=object)),
        "missing-y_test": lambda env: npz_bytes(y_test=None),
        "float-pixels": lambda env: npz_bytes(x_train=np.zeros((120, 20, 24), np.float32)),
        "labels-with-a-gap": lambda env: npz_bytes(y_train=np.arange(120) % 4 * 33),
        "sentinel-255-label": lambda env: npz_bytes(y_train=np.resize(np.array([0, 1, 2, 255], np.uint8), 120)),
        "label-2**40": lambda env: npz_bytes(y_train=np.arange(120) % 4 + 2 ** 40),
        "negative-labels": lambda env: npz_bytes(y_train=np.arange(120) % 4 - 1),
        "test-label-unseen-in-training": lambda env: npz_bytes(y_test=np.full(40, 7)),
        "single-class": lambda env: npz_bytes(y_train=np.zeros(120, np.int64), y_test=np.zeros(40, np.int64)),
        "empty-test-split": lambda env: npz_bytes(x_test=np.zeros((0, 20, 24), np.uint8), y_test=np.zeros(0, int)),
        "images-1x1": lambda env: npz_bytes(shape=(1, 1)),
        "images-16x16-too-small-for-the-convnet": lambda env: npz_bytes(shape=(16, 16)),
        "images-1x10000": lambda env: npz_bytes(shape=(1, 10000), train_count=20, test_count=8),
        "two-channel-images": lambda env: npz_bytes(shape=(20, 24, 2)),
        "five-dimensional-images": lambda env: npz_bytes(shape=(20, 24, 1, 1)),
        "scalar-images": lambda env: npz_bytes(x_train=np.uint8(3)),
        "text-labels": lambda env: npz_bytes(y_train=np.array(["seven"] * 120)),
        "boolean-labels": lambda env: npz_bytes(y_train=np.arange(120) % 2 == 0),
        "two-labels-per-image": lambda env: npz_bytes(y_train=np.zeros((120, 2), np.int64)),
        "lengths-differ": lambda env: npz_bytes(y_train=np.arange(119) % 4),
        "shapes-differ": lambda env: npz_bytes(x_test=np.zeros((40, 20, 20), np.uint8)),
    }
    # Both scripts read the file through data/npz.py: every other one goes to visualize.py as well.
    for number, (name, make) in enumerate(structural.items()):
        npz_uses(name, make, visualize_too=number % 2 == 0)


def data_dir_uses(kind: str, name: str, dataset: str, make: Callable,
                  scripts=("train", "visualize", "evaluate", "export")):
    """A damaged --data-dir for every script that reads one; `make(env)` writes it and returns its path."""
    model = {"mnist": None, "svhn": "street"}[dataset]

    def train_setup(env):
        return ["--dataset", dataset, "--data-dir", str(make(env)), "--dry-run", "--run-dir", str(env.tmp / "run")]

    def visualize_setup(env):
        source = env.world.street_model if model == "street" else env.world.small_model
        return ["--model-file", str(env.model_copy(source=source)), "--dataset", dataset,
                "--data-dir", str(make(env))]

    def run_setup(env):
        run = env.edit_config(env.run_copy(), dataset=dataset)
        return ["--run-dir", str(run), "--data-dir", str(make(env))]

    setups = {"train": train_setup, "visualize": visualize_setup, "evaluate": run_setup, "export": run_setup}
    for script in scripts:
        case(f"{kind}-{name}-{script}", script, setups[script])


def damaged_official_files(dataset: str, kinds: list[tuple[str, Callable]], names: list[str],
                           checksums: dict[str, str]):
    """For each damage kind, a data folder with that damage done to one of `names` (each in turn), the others
    intact, and the intact files' md5s standing in for the published ones."""
    for number, (name, damage) in enumerate(kinds):
        target = names[number % len(names)]

        def make(env, damage=damage, target=target):
            files = getattr(env.world, dataset)
            env.trust(files, checksums)
            return env.data_dir({**files, target: damage(files[target])})

        short = re.split(r"-idx|_32x32", target)[0]  # train-images, t10k-labels, train, test
        data_dir_uses(dataset, f"{name}-{short}", dataset, make)


def mnist_family():
    # The checks as shipped: one damaged file among files whose checksums are the published ones.
    kinds = damage_kinds("mnist", GZIP_SIGNATURE)
    kinds += [("not-gzipped", lambda content: gzip.decompress(content)),
              ("flipped", lambda content: flipped(content, 5, 10))]
    damaged_official_files("mnist", kinds, MNIST_NAMES, data.mnist.IDX_MD5)

    def three_files(env):
        env.trust(env.world.mnist, data.mnist.IDX_MD5)
        return env.data_dir({name: body for name, body in env.world.mnist.items() if "t10k-labels" not in name})

    def foreign_npz(env):
        env.trust(env.world.mnist, data.mnist.IDX_MD5)
        return env.data_dir({**env.world.mnist, "mnist.npz": env.world.npz})  # read first, and not Keras's file

    def swapped(env):
        env.trust(env.world.mnist, data.mnist.IDX_MD5)
        files = dict(env.world.mnist)
        files["train-images-idx3-ubyte.gz"], files["t10k-images-idx3-ubyte.gz"] = \
            files["t10k-images-idx3-ubyte.gz"], files["train-images-idx3-ubyte.gz"]
        return env.data_dir(files)

    for name, make in {"one-file-missing": three_files, "a-foreign-mnist.npz": foreign_npz,
                       "train-and-test-swapped": swapped}.items():
        data_dir_uses("mnist", name, "mnist", make)

    # The parsers behind the checks, on files the checks would have refused.
    parsed = {
        "gzip-cut-short": {"train-labels-idx1-ubyte.gz": lambda c: c[:len(c) // 2]},
        "gzip-body-flipped": {"t10k-images-idx3-ubyte.gz": lambda c: flipped(c, 6, 12, len(c) - 8)},
        "not-gzip-at-all": {"t10k-labels-idx1-ubyte.gz": lambda c: noise(7, 100)},
        "float-type-code": {"train-images-idx3-ubyte.gz": lambda c: idx_bytes(
            np.zeros((30, 28, 28), np.uint8), type_code=0x0D)},
        "header-promises-more": {"train-images-idx3-ubyte.gz": lambda c: gzip.compress(
            gzip.decompress(c)[:-100])},
        "header-sizes-2**32-1": {"train-images-idx3-ubyte.gz": lambda c: gzip.compress(
            bytes([0, 0, 8, 3]) + b"\xff" * 12)},
        "labels-beyond-9": {"train-labels-idx1-ubyte.gz": lambda c: idx_bytes(
            (np.arange(30) % 12).astype(np.uint8))},
        "fewer-labels-than-images": {"train-labels-idx1-ubyte.gz": lambda c: idx_bytes(np.zeros(29, np.uint8))},
        "labels-three-dimensional": {"t10k-labels-idx1-ubyte.gz": lambda c: idx_bytes(
            np.zeros((20, 1, 1), np.uint8))},
        "images-5x5": {"train-images-idx3-ubyte.gz": lambda c: idx_bytes(np.full((30, 5, 5), 9, np.uint8)),
                       "t10k-images-idx3-ubyte.gz": lambda c: idx_bytes(np.zeros((20, 5, 5), np.uint8))},
        "no-training-images": {"train-images-idx3-ubyte.gz": lambda c: idx_bytes(np.zeros((0, 28, 28), np.uint8)),
                               "train-labels-idx1-ubyte.gz": lambda c: idx_bytes(np.zeros(0, np.uint8))},
        "mnist.npz-without-y_test": {"mnist.npz": lambda c: npz_bytes(shape=(28, 28), y_test=None)},
        "mnist.npz-noise": {"mnist.npz": lambda c: noise(8, 3000, ZIP_SIGNATURE)},
    }
    for name, damages in parsed.items():
        def make(env, damages=damages):
            env.skip_checksums()
            files = dict(env.world.mnist)
            for target, damage in damages.items():
                files[target] = damage(files.get(target, b""))
            return env.data_dir(files)

        data_dir_uses("mnist-parser", name, "mnist", make, scripts=("train", "evaluate"))

    # The real files, when DIGITS_DATA_DIR has them: three intact, one damaged copy.
    for name, target, damage in [("real-labels-cut-short", "train-labels-idx1-ubyte.gz", lambda c: c[:10000]),
                                 ("real-test-images-flipped", "t10k-images-idx3-ubyte.gz",
                                  lambda c: flipped(c, 9, 1000))]:
        def make(env, target=target, damage=damage):
            if env.world.real_mnist is None:
                pytest.skip("DIGITS_DATA_DIR holds no official MNIST IDX files")
            folder = env.tmp / "real data"
            folder.mkdir()
            for each in MNIST_NAMES:
                source = env.world.real_mnist / each
                if each == target:
                    (folder / each).write_bytes(damage(source.read_bytes()))
                else:
                    (folder / each).symlink_to(source)
            return folder

        data_dir_uses("mnist", name, "mnist", make, scripts=("train",))


def svhn_family():
    kinds = damage_kinds("svhn", MAT_HEADER[:20])
    kinds.append(("hdf5-matlab-7.3", lambda content: noise(4, 3000, HDF5_SIGNATURE)))
    damaged_official_files("svhn", kinds, ["train_32x32.mat", "test_32x32.mat"], data.svhn.MD5)

    def test_missing(env):
        env.trust(env.world.svhn, data.svhn.MD5)
        return env.data_dir({"train_32x32.mat": env.world.svhn["train_32x32.mat"]})

    data_dir_uses("svhn", "test-file-missing", "svhn", test_missing)

    # Only well-formed files and clean cuts here: on random bytes scipy.io.loadmat can kill the process with a
    # segmentation fault (scipy 1.17.1), which the md5 check before parsing keeps away from users.
    parsed = {
        "cut-short": lambda: mat_bytes(30)[:3000],
        "float-images": lambda: mat_bytes(30, images=np.zeros((32, 32, 3, 30), np.float64)),
        "28x28x1-images": lambda: mat_bytes(30, images=np.zeros((28, 28, 1, 30), np.uint8)),
        "no-labels": lambda: mat_bytes(30, labels=False),
        "labels-0": lambda: mat_bytes(30, labels=np.zeros((30, 1), np.uint8)),
        "labels-11": lambda: mat_bytes(30, labels=np.full((30, 1), 11, np.uint8)),
        "fewer-labels": lambda: mat_bytes(30, labels=np.ones((29, 1), np.uint8)),
        "three-dimensional-images": lambda: mat_bytes(30, images=np.zeros((32, 32, 90), np.uint8)),
        "no-images": lambda: mat_bytes(0),
    }
    for name, make_train in parsed.items():
        def make(env, make_train=make_train):
            env.skip_checksums()
            return env.data_dir({**env.world.svhn, "train_32x32.mat": make_train()})

        data_dir_uses("svhn-parser", name, "svhn", make, scripts=("train", "evaluate"))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and a correct IHDR chunk claiming width x height greyscale pixels, and no pixel data."""
    return PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        png_chunk(b"IEND", b"")


def image_family():
    def predict_on(name: str, make: Callable, suffix=".png", model=None, expect="refused", extra=()):
        def setup(env):
            source = env.world.street_model if model == "street" else env.world.small_model
            image = make(env) if callable(make) else make
            path = image if isinstance(image, Path) else env.file(f"photo{suffix}", image)
            return ["--model-file", str(env.model_copy(source=source)), *extra, str(path)]

        case(f"image-{name}", "predict", setup, expect)

    for fmt, magic, suffix in [("png", PNG_SIGNATURE, ".png"), ("jpeg", b"\xff\xd8\xff\xe0", ".jpg")]:
        for name, damage in damage_kinds(f"image-{fmt}", magic):
            if name != "last-byte-missing":  # the pixels are all there: Pillow reads the image, rightly
                predict_on(f"{fmt}-{name}", lambda env, d=damage, f=fmt: d(getattr(env.world, f)), suffix)

    def idat_flipped(env):
        content = env.world.png
        start = content.index(b"IDAT") + 4
        return flipped(content, 11, start, start + 50)

    predict_on("png-pixel-data-flipped", idat_flipped)
    for fmt, magic in [("gif", b"GIF89a"), ("bmp", b"BM"), ("tiff", b"II*\x00"), ("ico", b"\x00\x00\x01\x00"),
                       ("webp", b"RIFF\x00\x10\x00\x00WEBPVP8 "), ("psd", b"8BPS\x00\x01"), ("pdf", b"%PDF-1.4\n")]:
        for length in (30, 3000):
            predict_on(f"{fmt}-header-then-noise-{length}", noise(hash_seed(fmt, length), length, magic), f".{fmt}")
    # Extreme sizes.
    rng = family_rng("image-sizes")
    for height, width in [(1, 1), (1, 10000), (10000, 1), (2, 3)]:
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        predict_on(f"{height}x{width}-pixels", encoded(pixels, "PNG"))
        predict_on(f"{height}x{width}-pixels-street-model", encoded(pixels, "PNG"), model="street")
    predict_on("header-claims-100000x100000", png_header_only(100000, 100000))
    predict_on("header-claims-100000x100000-street-model", png_header_only(100000, 100000), model="street")
    predict_on("header-claims-0x5", png_header_only(0, 5))
    predict_on("header-claims-3000x3000-no-pixel-data", png_header_only(3000, 3000))
    predict_on("blank-page", encoded(np.full((60, 40), 200, np.uint8), "PNG"))
    predict_on("a-text-file", b"this is a note, not a picture\n", ".png")
    predict_on("a-folder", lambda env: (env.tmp / "photos.png").mkdir() or env.tmp / "photos.png")
    predict_on("a-fifo", lambda env: os.mkfifo(env.tmp / "pipe.png") or env.tmp / "pipe.png")
    predict_on("dev-zero", Path("/dev/zero"))
    predict_on("a-link-to-nowhere", lambda env: (env.tmp / "gone.png").symlink_to(env.tmp / "nothing") or
               env.tmp / "gone.png")
    predict_on("a-link-loop", lambda env: (env.tmp / "loop.png").symlink_to(env.tmp / "loop.png") or
               env.tmp / "loop.png")
    # A usable picture of extreme proportions must be read, whichever model, without memory to spare.
    wide = np.full((12, 20000), 220, np.uint8)
    wide[2:10, 9990:9996] = 20
    predict_on("12x20000-with-a-stroke-street-model", encoded(wide, "PNG"), model="street", expect="succeeds")
    # --json reports an unusable image on stdout; stderr stays empty.
    predict_on("noise-json", noise(12, 500), extra=["--json"], expect="json-refused")
    predict_on("1x1-json", encoded(np.zeros((1, 1), np.uint8), "PNG"), extra=["--json"], expect="json-refused")

    def one_good_one_bad(env):
        return ["--model-file", str(env.reader_copy()), str(env.file("good.png", env.world.png)),
                str(env.file("bad.png", noise(13, 700)))]

    case("image-one-good-one-bad", "predict", one_good_one_bad)


def json_family():
    def config_uses(name: str, make: Callable, scripts: tuple[str, ...]):
        for script in scripts:
            def setup(env, script=script):
                run = env.run_copy()
                content = make(json.loads((run / "config.json").read_text()))
                if content is None:
                    (run / "config.json").unlink()
                    (run / "config.json").mkdir()
                else:
                    (run / "config.json").write_bytes(content if isinstance(content, bytes) else
                                                      json.dumps(content).encode())
                return ["--run-dir", str(run)] + (["--layer", "dense1"] if script == "visualize" else [])

            case(f"config-{name}-{script}", script, setup)

    # A file that is no JSON object fails where every script reads it (harness/runs.py): one script in turn.
    readers = ["evaluate", "export", "visualize"]
    whole = [(name, lambda config, d=damage: d(json.dumps(config, indent=2).encode()))
             for name, damage in damage_kinds("config", b"{")]
    whole += [(name, lambda config, v=value: json.dumps(v).encode()) for name, value in [
        ("a-list", []), ("a-string", "run"), ("a-number", 3), ("null", None), ("true", True), ("empty-object", {}),
        ("marker-only", {"digits_run": 1})]]
    whole += [
        ("deeply-nested", lambda config: b'{"digits_run": 1, "dataset": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
        ("not-utf-8", lambda config: b"\xff\xfe" + json.dumps(config).encode("utf-16-le")),
        ("a-folder", lambda config: None),
    ]
    for number, (name, make) in enumerate(whole):
        config_uses(name, make, (readers[number % len(readers)],))
    # A wrong value in one entry fails where each script uses it: every script.
    fields = {
        "no-dataset": ("dataset", ...), "dataset-a-number": ("dataset", 5), "dataset-null": ("dataset", None),
        "dataset-a-list": ("dataset", ["synthetic"]), "dataset-unknown": ("dataset", "cifar10"),
        "dataset-a-missing-npz": ("dataset", "/nowhere/digits.npz"), "limit-text": ("limit", "all"),
        "limit-negative": ("limit", -3), "limit-zero": ("limit", 0), "limit-fraction": ("limit", 1.5),
        "limit-true": ("limit", True), "limit-infinite": ("limit", float("inf")),
        "data_dir-a-number": ("data_dir", 5), "data_dir-a-list": ("data_dir", []),
        "validation_fraction-text": ("validation_fraction", "tenth"),
        "validation_fraction-2": ("validation_fraction", 2),
    }
    for name, (key, value) in fields.items():
        def edit(config, key=key, value=value):
            if value is ...:
                config.pop(key)
            else:
                config[key] = value
            return json.dumps(config).encode()  # json writes float("inf") as the token Infinity, read back as inf

        # Only python -m serving.export reads validation_fraction (to pick the int8 calibration images).
        config_uses(name, edit, ("export",) if key == "validation_fraction" else ("evaluate", "export", "visualize"))

    def metrics_uses(name: str, content: bytes):
        def setup(env):
            run = env.run_copy()
            (run / "metrics.json").write_bytes(content)
            return ["--run-dir", str(run), "--report"]

        case(f"metrics-{name}-visualize", "visualize", setup)

    rng = family_rng("metrics")
    metrics_uses("noise", noise(int(rng.integers(2 ** 31)), 200))
    metrics_uses("cut-short", b'{"test_accuracy": 0.18, "test_lo')
    metrics_uses("a-list", b"[0.18]")
    metrics_uses("a-string", b'"accurate"')
    metrics_uses("accuracy-text", b'{"test_accuracy": "high"}')
    metrics_uses("accuracy-null", b'{"test_accuracy": null}')
    metrics_uses("accuracy-nan", b'{"test_accuracy": NaN}')
    metrics_uses("deeply-nested", b'{"test_accuracy": ' + b"[" * 100000 + b"]" * 100000 + b"}")


BAD_WHOLE_NUMBERS = ["-1", "0", "nan", "inf", "1.5", "abc", "", "1e3", "0x10"]
BAD_POSITIVE_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "abc", "", "1e-400"]
BAD_FRACTIONS = ["-0.1", "1", "1.5", "nan", "inf", "abc"]


def flag_family():
    def flags(script: str, argv_tail: list[str], prefix: Callable = lambda env: [], name=None):
        name = name or " ".join(argv_tail) or "(none)"
        case(f"flag-{script}-{name}", script, lambda env: prefix(env) + argv_tail)

    train_prefix = lambda env: ["--dataset", "synthetic", "--dry-run", "--run-dir", str(env.tmp / "run")]  # noqa: E731
    for flag in ("--epochs", "--batch-size", "--limit", "--cpu-replicas"):
        for value in BAD_WHOLE_NUMBERS:
            flags("train", [flag, value], train_prefix, name=f"{flag}={value}")
    flags("train", ["--learning-rate", "abc"], train_prefix)
    for value in BAD_POSITIVE_NUMBERS:
        flags("train", [f"--learning-rate={value}"], train_prefix)
    for value in BAD_FRACTIONS:
        flags("train", [f"--validation-fraction={value}"], train_prefix)
    for value in ["abc", "1.5", ""]:
        flags("train", [f"--seed={value}"], train_prefix)
    for tail in (["--model", "resnet"], ["--augment", "rotate"], ["--distribute", "tpu"], ["--dataset", "cifar10"],
                 ["--dataset", ""], ["--dataset", "digits.zip"], ["--no-such-flag"], ["stray-word"], ["--epochs"],
                 ["--dry-run=yes"], ["--run-dir"]):
        flags("train", tail, train_prefix)
    # Values the parser lets through, to the places that use them.
    flags("train", ["--seed", "-1"], train_prefix)
    flags("train", ["--seed", "99999999999999999999"], train_prefix)
    flags("train", ["--batch-size", "99999999999999999999"], train_prefix)
    flags("train", ["--learning-rate", "1e300"], train_prefix)
    flags("train", ["--epochs", "99999999999999999999", "--limit", "20"],
          lambda env: ["--dataset", "synthetic", "--run-dir", str(env.tmp / "run")])

    for value in BAD_WHOLE_NUMBERS:
        flags("evaluate", [f"--max-mistakes={value}"])
    for tail in (["--run-dir"], ["--no-such-flag"], ["stray-word"], ["--data-dir"]):
        flags("evaluate", tail)

    run = lambda env: ["--run-dir", str(env.run_copy())]  # noqa: E731
    for flag in ("--images", "--top-k", "--units"):
        for value in ["-1", "0", "nan", "abc", "1e3"]:
            flags("visualize", [f"{flag}={value}"], run)
    for tail in (["--probe-images", "5"], ["--probe-images", "0", "5"], ["--probe-images", "-1", "5"],
                 ["--probe-images", "5", "abc"], ["--seed", "abc"], ["--dataset", "cifar10"],
                 ["--model-file", "model.keras"], ["--no-such-flag"], ["stray-word"], ["--layer"]):
        flags("visualize", tail, run)
    for tail in (["--layer", "no_such_layer"], ["--layer", ""], ["--layer", "conv1/inner"], ["--layer", "/"],
                 ["--layer", "flatten"], ["--seed", "-1", "--layer", "conv1"],
                 ["--seed", "99999999999999999999", "--layer", "conv1"]):
        flags("visualize", tail, run)

    image = lambda env: [str(env.file("digit.png", env.world.png))]  # noqa: E731
    model = lambda env: ["--model-file", str(env.reader_copy())] + image(env)  # noqa: E731
    flags("predict", [], name="no-image")
    for tail in (["--run-dir", "run", "--model-file", "model.keras"], ["--no-such-flag"], ["--show-dir"],
                 ["--json=yes"]):
        flags("predict", tail, image)
    flags("predict", ["--run-dir", "no such run"], image)
    flags("predict", ["--show", "--show-dir", "digit.png/inside"], model, name="--show-dir-inside-a-file")

    for tail in ([], ["--no-such-flag"], ["--run-dir"], ["stray-word"], ["--data-dir"]):
        flags("export", tail)


def read_only(env, folder: Path) -> Path:
    """`folder` made immutable (chattr +i) until the case ends: nothing can be added to it, even by root, whom
    chmod does not stop; its files stay writable. Skips the case where the file system does not allow it."""
    try:
        subprocess.run(["chattr", "+i", str(folder)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"no read-only folder: tests run as root, whom chmod does not stop, and chattr +i failed "
                    f"({error})")
    env.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(folder)], check=False))
    return folder


def place_family():
    # Valid inputs in folders and files named with spaces and non-ASCII letters: they must work.
    def valid_image(folder, name, kind):
        def setup(env):
            image = env.file(f"{folder}/{name}", getattr(env.world, kind))
            return ["--model-file", str(env.reader_copy("modèle été/模型 1.keras")), str(image)]
        return setup

    case("place-png-in-dossier-été", "predict", valid_image("dossier été", "数字 7.png", "png"), "succeeds")
    case("place-jpeg-in-папка-с-пробелом", "predict", valid_image("папка с пробелом", "цифра 3.jpg", "jpeg"),
         "succeeds")
    # Missing ones in such places.
    case("place-missing-image-in-dossier-été", "predict", lambda env: [
        "--model-file", str(env.reader_copy()), str(env.tmp / "dossier été" / "manquant 数字.png")])
    case("place-missing-image-named-with-a-newline", "predict", lambda env: [
        "--model-file", str(env.reader_copy()), str(env.tmp / "ligne\nnouvelle.png")])
    case("place-missing-model-in-dossier-été", "predict", lambda env: [
        "--model-file", str(env.tmp / "dossier été" / "模型.keras"), str(env.file("digit.png", env.world.png))])
    case("place-missing-npz-in-données-été", "train", lambda env: [
        "--dataset", str(env.tmp / "données été" / "chiffres 7.npz"), "--run-dir", str(env.tmp / "run")])
    case("place-damaged-npz-in-données-été", "train", lambda env: [
        "--dataset", str(env.file("données été/chiffres 7.npz", noise(14, 900, ZIP_SIGNATURE))),
        "--run-dir", str(env.tmp / "sorties été" / "运行 1")])
    for script in ("evaluate", "export"):
        case(f"place-missing-run-in-dossier-été-{script}", script, lambda env: [
            "--run-dir", str(env.tmp / "dossier été" / "运行 1")])
        case(f"place-damaged-run-in-dossier-été-{script}", script, lambda env: [
            "--run-dir", str(env.edit_config(env.run_copy("dossier été/运行 1"), dataset=["été"]))])
    case("place-missing-model-in-dossier-été-visualize", "visualize", lambda env: [
        "--model-file", str(env.tmp / "dossier été" / "模型.keras")])

    # A --run-dir that is a file, or a folder that is not a run.
    def run_dir_file(env):
        return env.file("notes été.txt", b"my notes\n")

    case("place-run-dir-is-a-file-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", str(run_dir_file(env))])
    for script in ("evaluate", "export", "visualize"):
        case(f"place-run-dir-is-a-file-{script}", script, lambda env: ["--run-dir", str(run_dir_file(env))])
    def run_plus(env, name: str, content: bytes | None) -> Path:
        """A run with one thing of someone's in it: a file, or (content None) a folder."""
        run = env.run_copy()
        (run / name).mkdir() if content is None else (run / name).write_bytes(content)
        return run

    own_files = {
        "notes": lambda env: env.file("mine/notes.txt", b"shopping list\n").parent,
        "a-bare-model": lambda env: env.model_copy("mine/model.keras").parent,
        "a-config-not-ours": lambda env: env.file("mine/config.json", b'{"name": "my experiment"}').parent,
        "a-run-plus-own-file": lambda env: run_plus(env, "mes notes.txt", b"ne pas effacer\n"),
        "a-run-plus-own-folder": lambda env: run_plus(env, "photos", None),
    }
    for name, make in own_files.items():
        case(f"place-run-dir-holds-{name}-train", "train", lambda env, make=make: [
            "--dataset", "synthetic", "--dry-run", "--run-dir", str(make(env))])
    for script in ("evaluate", "export", "visualize"):
        case(f"place-run-dir-holds-a-bare-model-{script}", script, lambda env: [
            "--run-dir", str(own_files["a-bare-model"](env))])

    # Missing data folders.
    missing = lambda env: str(env.tmp / "nowhere été")  # noqa: E731
    case("place-missing-data-dir-train-mnist", "train", lambda env: [
        "--dataset", "mnist", "--data-dir", missing(env), "--dry-run", "--run-dir", str(env.tmp / "run")])
    case("place-missing-data-dir-train-svhn", "train", lambda env: [
        "--dataset", "svhn", "--data-dir", missing(env), "--dry-run", "--run-dir", str(env.tmp / "run")])
    case("place-missing-data-dir-visualize", "visualize", lambda env: [
        "--model-file", str(env.reader_copy()), "--data-dir", missing(env)])
    for script in ("evaluate", "export"):
        case(f"place-missing-data-dir-{script}", script, lambda env: [
            "--run-dir", str(env.edit_config(env.run_copy(), dataset="mnist")), "--data-dir", missing(env)])
    case("place-data-dir-is-a-file-train", "train", lambda env: [
        "--dataset", "mnist", "--data-dir", str(env.file("data.txt", b"x")), "--dry-run",
        "--run-dir", str(env.tmp / "run")])

    # Read-only places to write to: /sys and /proc refuse new entries even to root.
    case("place-run-dir-under-sys-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", "/sys/digits-bad-input-run"])
    case("place-run-dir-under-proc-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", "/proc/digits-bad-input-run"])
    case("place-show-dir-under-sys-predict", "predict", lambda env: [
        "--model-file", str(env.reader_copy()), "--show", "--show-dir", "/sys/digits-bad-input",
        str(env.file("digit.png", env.world.png))])
    case("place-run-dir-in-read-only-folder-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", str(read_only(env, env.data_dir({}, "locked")) / "run")])
    for script, tail in (("evaluate", []), ("visualize", ["--layer", "dense1"]), ("export", [])):
        case(f"place-read-only-run-{script}", script, lambda env, tail=tail: [
            "--run-dir", str(read_only(env, env.run_copy("locked run"))), *tail])
    case("place-model-in-read-only-folder-visualize", "visualize", lambda env: [  # figures/ would go beside it
        "--model-file", str(read_only(env, env.model_copy("locked/model.keras").parent) / "model.keras"),
        "--dataset", "synthetic", "--layer", "dense1"])
    # Outputs blocked by something in the way.
    case("place-evaluation.json-is-a-folder-evaluate", "evaluate", lambda env: [
        "--run-dir", str(run_plus(env, "evaluation.json", None))])
    case("place-figures-is-a-file-visualize", "visualize", lambda env: [
        "--run-dir", str(run_plus(env, "figures", b"not a folder")), "--layer", "dense1"])


keras_family()
npz_family()
mnist_family()
svhn_family()
image_family()
json_family()
flag_family()
place_family()

# ---------------------------------------------------------------- known failures

# A case that still fails is listed here with the file at fault, what goes wrong and a fix; it then
# counts as an expected failure (xfail) until fixed. None is known today.
KNOWN: dict[str, str] = {}
NOT_RUN: set[str] = set()  # known failures too slow to run every time
CASES = [dataclasses.replace(c, known=KNOWN.get(c.id)) for c in CASES]
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
assert set(KNOWN) <= {c.id for c in CASES} and NOT_RUN <= set(KNOWN), "known failures must name cases"


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.known, run=c.id not in NOT_RUN, strict=False)]
                 if c.known else [])
    for c in CASES])
def test_bad_input(case, world, tmp_path, monkeypatch, capfd):
    env = Env(world, tmp_path, monkeypatch)
    try:
        argv = case.setup(env)
        before = tree_digests(env.tmp)
        answer = run_script(case.script, argv, capfd)
        after = tree_digests(env.tmp)
    finally:
        for cleanup in env.cleanups:
            cleanup()
    problems = judge(answer, case.expect) + changes(before, after)
    outcome = "traceback" if answer.trace else f"exit {answer.code}"
    TALLY["inputs"] += 1
    TALLY["valid inputs" if case.expect == "succeeds" else "bad inputs"] += 1
    TALLY[("outcome", outcome)] += 1
    TALLY[("script", case.script, outcome)] += 1
    verdict = ("known failure (xfail)" if case.known else "FAILED") if problems else "as required"
    TALLY[("verdict", verdict)] += 1
    ANSWERS.append(f"{case.id!r}\t{outcome}\t{' | '.join(answer.errors)[:1000]!r}")
    assert not problems, f"{case.script} {argv!r}:\n" + "\n".join(problems)


def tally_lines() -> list[str]:
    """How many inputs were tried and how each ended (tests/conftest.py prints it after the session)."""
    if not TALLY:
        return []
    scripts = sorted({key[1] for key in TALLY if key[0] == "script"})
    outcomes = sorted({key[1] for key in TALLY if key[0] == "outcome"})
    lines = [f"bad-input suite: {TALLY['inputs']} inputs tried ({TALLY['bad inputs']} bad, "
             f"{TALLY['valid inputs']} valid ones that must work); {len(NOT_RUN)} known failures not run",
             "  outcomes: " + ", ".join(f"{outcome} {TALLY['outcome', outcome]}" for outcome in outcomes),
             "  verdicts: " + ", ".join(f"{key[1]} {count}" for key, count in sorted(TALLY.items(), key=str)
                                        if key[0] == "verdict")]
    lines += [f"  {script}: " + ", ".join(f"{outcome} {TALLY['script', script, outcome]}" for outcome in outcomes
                                          if TALLY["script", script, outcome]) for script in scripts]
    if os.environ.get("BAD_INPUTS_ANSWERS"):
        Path(os.environ["BAD_INPUTS_ANSWERS"]).write_text("\n".join(ANSWERS) + "\n", encoding="utf-8")
    return lines
