"""Generated bad inputs for every script: each must end in one line on stderr ("error: ..."; a warning or
log record a terminal would show counts as a line too), exit status 1 or 2, no traceback, and no byte
changed in any file that existed before. The line must also be the error expected, not just any error:
as a rule it names the offending input (the damaged file, the flag whose value was bad) and says what
is wrong in the words its family expects (Case.error).

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
import sys
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

# The writer of tests/data/test_npz.py: pytest puts tests/data on sys.path when it collects that folder, which it
# does not when this file runs alone.
if str(Path(__file__).parent / "data") not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent / "data"))
from test_npz import write_npz  # noqa: E402

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
ANSWERS: list[str] = []  # "id<TAB>status<TAB>stderr (--json: stdout)", to $BAD_INPUTS_ANSWERS (a file) when set
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


def missing_parts(line: str, error: tuple) -> list[str]:
    """The parts of Case.error that `line` lacks (a tuple: none of its substrings is there)."""
    return [repr(part) if isinstance(part, str) else " or ".join(map(repr, part)) for part in error
            if not any(each in line for each in ((part,) if isinstance(part, str) else part))]


def judge(answer: Answer, expect: str, error: tuple = ()) -> list[str]:
    """What is wrong with the answer to a bad input ("refused") or a valid one ("succeeds"); a refusal must
    also be the error `error` names (Case.error)."""
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
        elif missing := missing_parts(lines[0], error):
            problems.append(f"not the error expected: the JSON answer lacks {', '.join(missing)}: {lines[0]!r}")
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
    elif missing := missing_parts(answer.errors[0], error):
        problems.append(f"not the error expected: the line lacks {', '.join(missing)}: {answer.errors[0]!r}")
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
    # Which error a refused input must get: every part must be in the one error line (for "json-refused", in the
    # JSON answer); a part is a substring, or a tuple of substrings of which any one will do (either()). As a rule
    # the offending input (the bad file's name, the flag whose value was bad) and the family's keyword.
    error: tuple[str | tuple[str, ...], ...] = ()


CASES: list[Case] = []


def case(id, script, setup, expect="refused", error=()):
    """error: a substring of the error line, or a tuple of parts (see Case.error)."""
    CASES.append(Case(id, script, setup, expect, error=(error,) if isinstance(error, str) else tuple(error)))


def either(*substrings: str) -> tuple[str, ...]:
    """A part of Case.error that any one of `substrings` satisfies."""
    return substrings


def for_kind(kind: str, reasons: dict):
    """reasons[kind], or the entry of the key ending in "-" that `kind` starts with ("cut-at-" for "cut-at-2.5%")."""
    if kind in reasons:
        return reasons[kind]
    (key,) = [key for key in reasons if key.endswith("-") and kind.startswith(key)]
    return reasons[key]


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
    """The small valid data set of tests/data/test_npz.py (20x24 greyscale, 4 classes), with `changes` (None: drop)."""
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
def world(tmp_path_factory, good_run) -> World:
    folder = tmp_path_factory.mktemp("bad_inputs_world")
    run = folder / "pristine run"
    # conftest's good_run (train.py --dataset synthetic --dry-run), copied rather than trained again. The run records
    # a data folder that never exists, so no case reaches a real data set by accident.
    shutil.copytree(good_run, run)
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "synthetic" and config["dry_run"] and not Path(config["data_dir"]).exists()
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


MODEL_PATHS = {"predict": "/model.keras", "visualize": "/model.keras", "evaluate": "/run/model.keras",
               "export": "/run/model.keras"}  # where model_uses puts the file, for the error to name


def model_uses(name: str, make_model: Callable, scripts=("predict", "visualize", "evaluate", "export"), error=(),
               named=True):
    """One case per script that reads a .keras file: `make_model(env)` -> the file's bytes. Each refusal must
    name the file (unless not `named`) and hold `error`'s parts (the same for every script, or {script: parts})."""

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
        parts = error[script] if isinstance(error, dict) else error
        case(f"keras-{name}-{script}", script, setups[script],
             error=((MODEL_PATHS[script],) if named else ()) + tuple(parts))


def keras_family():
    # Every damaged file goes to predict.py (the cheapest reader) and to one of the other three in turn:
    # all four open it through harness/model_files.py.
    others = ["visualize", "evaluate", "export"]
    base = lambda env: (env.world.run / "model.keras").read_bytes()  # noqa: E731
    config = lambda env: json.loads(zipfile.ZipFile(env.world.run / "model.keras").read("config.json"))  # noqa: E731
    # What each damage makes harness/model_files.py say after "cannot load PATH: ".
    truncated = "it is a truncated or damaged zip archive"
    reasons = {"empty": "it is empty (0 bytes)", "noise-": "it is not a Keras model file",
               "magic-then-noise": truncated, "first-": truncated, "cut-at-": truncated, "last-byte-missing": truncated,
               "flipped-in-config.json": "config.json inside it fails its checksum",
               "flipped-in-model.weights.h5": "model.weights.h5 inside it fails its checksum"}
    kinds = [(name, lambda env, d=damage: d(base(env)), for_kind(name, reasons))
             for name, damage in damage_kinds("keras", ZIP_SIGNATURE, members=("config.json", "model.weights.h5"))]
    no_model = "its config.json is JSON but no model's configuration"
    unreadable_weights = "its model.weights.h5 is not a readable HDF5 file"
    kinds += [
        ("hdf5-legacy-file", lambda env: noise(1, 2000, HDF5_SIGNATURE), "it is an HDF5 file (the legacy Keras .h5"),
        ("config-noise", lambda env: rezipped(base(env), {"config.json": noise(2, 300)}),
         "its config.json is not valid JSON"),
        ("config-a-list", lambda env: rezipped(base(env), {"config.json": b"[]"}), no_model),
        ("config-a-string", lambda env: rezipped(base(env), {"config.json": b'"convnet"'}), no_model),
        ("config-null", lambda env: rezipped(base(env), {"config.json": b"null"}), no_model),
        ("config-empty-object", lambda env: rezipped(base(env), {"config.json": b"{}"}), no_model),
        ("config-unknown-class", lambda env: rezipped(base(env), {"config.json": json.dumps(
            {**config(env), "class_name": "NoSuchModel", "module": "nowhere"}).encode()}),
         "the class 'NoSuchModel', which this Keras does not know"),
        ("no-config", lambda env: rezipped(base(env), {"config.json": None}), "it has no config.json"),
        ("no-weights", lambda env: rezipped(base(env), {"model.weights.h5": None}), "it has no model.weights.h5"),
        ("weights-noise", lambda env: rezipped(base(env), {"model.weights.h5": noise(3, 5000)}), unreadable_weights),
        ("weights-half", lambda env: rezipped(base(env), {"model.weights.h5": zipfile.ZipFile(
            env.world.run / "model.keras").read("model.weights.h5")[:20000]}), unreadable_weights),
    ]
    for number, (name, make, reason) in enumerate(kinds):
        model_uses(name, make, ("predict", others[number % len(others)]), error=("cannot load", reason))
    # Files that load but hold no digit model: every script must say so, not crash.
    odd = lambda name: lambda env: env.world.odd_models[name].read_bytes()  # noqa: E731
    model_uses("vector-input", odd("vector-input"), error=("does not take", "batch of images"))
    not_images = ("does not take a batch of images", "it takes (None, 28, 28, 2)")
    model_uses("two-channel-input", odd("two-channel-input"), error={
        "predict": not_images, "visualize": ("takes 28x28x2 images",), "evaluate": not_images, "export": not_images})
    # visualize.py may draw any functional model's conv1.
    model_uses("feature-map-output", odd("feature-map-output"), ("predict",),
               error=("does not give class probabilities", "(None, 26, 26, 4)"))
    model_uses("feature-map-output", odd("feature-map-output"), ("evaluate", "export"),
               error=("model.keras's output has 4 dimensions",))
    # It classifies 28x28 images too: a run may hold it. Only the file is checked: both messages give a wrong
    # reason (predict: "does not take a batch of images"; visualize: "takes NonexNonex1 images but synthetic has
    # 28x28x1"), reported rather than required.
    model_uses("any-size-input", odd("any-size-input"), ("predict", "visualize"))
    model_uses("python-lambda", odd("python-lambda"),
               error=("cannot load", "layer 'double' (Lambda) holds Python code"))
    model_uses("two-inputs", odd("two-inputs"), error={
        "predict": ("takes 2 inputs",), "visualize": ("does not take one batch of images",),
        "evaluate": ("takes 2 inputs",), "export": ("takes 2 inputs",)})


def npz_uses(name: str, make: Callable, visualize_too: bool = True, error=()):
    """The data set as --dataset of train.py (a new run) and of visualize.py (shown with a run's model); each
    refusal must name bad.npz and hold `error`'s parts (the same for both scripts, or {script: parts}: then
    naming the file is up to them)."""
    errors = error if isinstance(error, dict) else {script: ("/bad.npz", *error) for script in ("train", "visualize")}
    case(f"npz-{name}-train", "train", lambda env: [
        "--dataset", str(env.file("bad.npz", make(env))), "--dry-run", "--run-dir", str(env.tmp / "run")],
        error=errors["train"])
    if visualize_too:
        case(f"npz-{name}-visualize", "visualize", lambda env: [
            "--run-dir", str(env.run_copy()), "--dataset", str(env.file("bad.npz", make(env))), "--layer", "dense1"],
            error=errors["visualize"])


def npz_family():
    unreadable = "is not a readable .npz file"  # data/npz.py, for whatever zipfile or numpy cannot read
    for name, damage in damage_kinds("npz", ZIP_SIGNATURE, members=("y_train.npy",)):
        # No zip signature: data/npz.py says so in its words; after one, the reason is zipfile's or numpy's.
        member = name.removeprefix("flipped-in-") if name.startswith("flipped-in-") else None
        reason = f"{unreadable} (it is not a zip archive)" if name == "empty" or name.startswith("noise-") else \
            unreadable
        npz_uses(name, lambda env, d=damage: d(env.world.npz), error=(reason,) + ((member,) if member else ()))
    rng = family_rng("npz-compressed")
    for member in ("x_train.npy", "y_test.npy"):
        seed = int(rng.integers(2 ** 31))
        npz_uses(f"compressed-flipped-in-{member}", lambda env, s=seed, m=member: flipped(
            env.world.npz_compressed, s, *member_span(env.world.npz_compressed, m)), error=(unreadable, member))
    seed = int(rng.integers(2 ** 31))
    npz_uses("npy-header-flipped", lambda env, s=seed: flipped(
        env.world.npz, s, member_span(env.world.npz, "x_train.npy")[0] + 8,
        member_span(env.world.npz, "x_train.npy")[0] + 60), error=(unreadable,))

    def single_array(env):
        out = io.BytesIO()
        np.save(out, np.zeros((3, 28, 28), np.uint8))
        return out.getvalue()

    def header_unclosed(env):  # numpy tokenizes a .npy header as Python: an open bracket never closed
        header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 2".ljust(118) + b"\n"
        array = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(8)
        return rezipped(env.world.npz, {"x_train.npy": array})

    def too_small(size: str) -> dict:  # train.py's convnet refuses them, visualize.py's run model takes 28x28x1
        return {"train": ("the convnet needs images of at least 18x18 pixels", f"these are {size}"),
                "visualize": ("/run/model.keras takes 28x28x1 images", f"/bad.npz has {size}x1")}

    gap = "labels go up to {} but never use"
    labels_1d = "labels must be a 1-D array of whole numbers"
    images_shape = "images must be (N, H, W) or (N, H, W, C) with C 1 or 3"
    structural = {  # name: (bytes, what the refusal must say)
        "a-single-npy-array": (single_array, ("holds a single array",)),
        "npy-header-never-closed": (header_unclosed, (unreadable,)),
        "unknown-zip-compression": (lambda env: compression_method(env.world.npz, 99), (unreadable,)),
        "pickled-objects": (lambda env: npz_bytes(y_train=np.array([{"label": 1}] * 120, dtype=object)),
                            ("contains pickled Python objects",)),
        "missing-y_test": (lambda env: npz_bytes(y_test=None), ("lacks y_test",)),
        "float-pixels": (lambda env: npz_bytes(x_train=np.zeros((120, 20, 24), np.float32)),
                         ("x_train has dtype float32", "images must be uint8")),
        "labels-with-a-gap": (lambda env: npz_bytes(y_train=np.arange(120) % 4 * 33), ("y_train's", gap.format(99))),
        "sentinel-255-label": (lambda env: npz_bytes(y_train=np.resize(np.array([0, 1, 2, 255], np.uint8), 120)),
                               ("y_train's", gap.format(255))),
        "label-2**40": (lambda env: npz_bytes(y_train=np.arange(120) % 4 + 2 ** 40),
                        (f"y_train has label {2 ** 40 + 3}", "labels must be 0..K-1")),
        "negative-labels": (lambda env: npz_bytes(y_train=np.arange(120) % 4 - 1),
                            ("y_train has label -1", "labels must be 0..K-1")),
        "test-label-unseen-in-training": (lambda env: npz_bytes(y_test=np.full(40, 7)),
                                          ("y_test has label 7, which never occurs in y_train",)),
        "single-class": (lambda env: npz_bytes(y_train=np.zeros(120, np.int64), y_test=np.zeros(40, np.int64)),
                         ("y_train has a single class",)),
        "empty-test-split": (lambda env: npz_bytes(x_test=np.zeros((0, 20, 24), np.uint8), y_test=np.zeros(0, int)),
                             ("x_test is empty",)),
        "images-1x1": (lambda env: npz_bytes(shape=(1, 1)), too_small("1x1")),
        "images-16x16-too-small-for-the-convnet": (lambda env: npz_bytes(shape=(16, 16)), too_small("16x16")),
        "images-1x10000": (lambda env: npz_bytes(shape=(1, 10000), train_count=20, test_count=8),
                           too_small("1x10000")),
        "two-channel-images": (lambda env: npz_bytes(shape=(20, 24, 2)),
                               ("x_train has shape (120, 20, 24, 2)", images_shape)),
        "five-dimensional-images": (lambda env: npz_bytes(shape=(20, 24, 1, 1)),
                                    ("x_train has shape (120, 20, 24, 1, 1)", images_shape)),
        "scalar-images": (lambda env: npz_bytes(x_train=np.uint8(3)), ("x_train has shape ()", images_shape)),
        "text-labels": (lambda env: npz_bytes(y_train=np.array(["seven"] * 120)),
                        ("y_train has shape (120,) and dtype", labels_1d)),
        "boolean-labels": (lambda env: npz_bytes(y_train=np.arange(120) % 2 == 0),
                           ("y_train has shape (120,) and dtype bool", labels_1d)),
        "two-labels-per-image": (lambda env: npz_bytes(y_train=np.zeros((120, 2), np.int64)),
                                 ("y_train has shape (120, 2)", labels_1d)),
        "lengths-differ": (lambda env: npz_bytes(y_train=np.arange(119) % 4),
                           ("y_train has 119 labels for 120 images",)),
        "shapes-differ": (lambda env: npz_bytes(x_test=np.zeros((40, 20, 20), np.uint8)),
                          ("x_test images are (20, 20, 1)", "both splits need one shape")),
    }
    # Both scripts read the file through data/npz.py: every other one goes to visualize.py as well.
    for number, (name, (make, error)) in enumerate(structural.items()):
        npz_uses(name, make, visualize_too=number % 2 == 0, error=error)


def data_dir_uses(kind: str, name: str, dataset: str, make: Callable,
                  scripts=("train", "visualize", "evaluate", "export"), error=()):
    """A damaged --data-dir for every script that reads one; `make(env)` writes it and returns its path; each
    refusal must hold `error`'s parts (as a rule the damaged file's name and what is wrong with it)."""
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
        case(f"{kind}-{name}-{script}", script, setups[script], error=error)


NOT_PUBLISHED = "is corrupt or not the published file"  # data/files.py's checksum check


def damaged_official_files(dataset: str, kinds: list[tuple[str, Callable]], names: list[str],
                           checksums: dict[str, str]):
    """For each damage kind, a data folder with that damage done to one of `names` (each in turn), the others
    intact, and the intact files' md5s standing in for the published ones: the checksum check refuses the file."""
    for number, (name, damage) in enumerate(kinds):
        target = names[number % len(names)]

        def make(env, damage=damage, target=target):
            files = getattr(env.world, dataset)
            env.trust(files, checksums)
            return env.data_dir({**files, target: damage(files[target])})

        short = re.split(r"-idx|_32x32", target)[0]  # train-images, t10k-labels, train, test
        data_dir_uses(dataset, f"{name}-{short}", dataset, make, error=(f"/data/{target}", NOT_PUBLISHED))


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

    for name, make, error in [
            ("one-file-missing", three_files, ("/data has only some MNIST IDX files", "add t10k-labels-idx1-ubyte.gz")),
            ("a-foreign-mnist.npz", foreign_npz, ("/data/mnist.npz", NOT_PUBLISHED)),
            # Either image file may be the first one checked.
            ("train-and-test-swapped", swapped,
             (either("/data/train-images-idx3-ubyte.gz", "/data/t10k-images-idx3-ubyte.gz"), NOT_PUBLISHED))]:
        data_dir_uses("mnist", name, "mnist", make, error=error)

    # The parsers behind the checks, on files the checks would have refused.
    unreadable = "cannot be read"  # gzip's complaint, in data/mnist.py's words
    too_short = "but its header promises"
    not_mnist_npz = "is not a readable MNIST archive"
    parsed = {  # name: (damages, what the refusal must say)
        "gzip-cut-short": ({"train-labels-idx1-ubyte.gz": lambda c: c[:len(c) // 2]},
                           ("/data/train-labels-idx1-ubyte.gz", unreadable)),
        "gzip-body-flipped": ({"t10k-images-idx3-ubyte.gz": lambda c: flipped(c, 6, 12, len(c) - 8)},
                              ("/data/t10k-images-idx3-ubyte.gz", unreadable)),
        "not-gzip-at-all": ({"t10k-labels-idx1-ubyte.gz": lambda c: noise(7, 100)},
                            ("/data/t10k-labels-idx1-ubyte.gz", unreadable)),
        "float-type-code": ({"train-images-idx3-ubyte.gz": lambda c: idx_bytes(
            np.zeros((30, 28, 28), np.uint8), type_code=0x0D)},
            ("/data/train-images-idx3-ubyte.gz", "is not an IDX file of 3-dimensional unsigned bytes")),
        "header-promises-more": ({"train-images-idx3-ubyte.gz": lambda c: gzip.compress(
            gzip.decompress(c)[:-100])}, ("/data/train-images-idx3-ubyte.gz", too_short)),
        "header-sizes-2**32-1": ({"train-images-idx3-ubyte.gz": lambda c: gzip.compress(
            bytes([0, 0, 8, 3]) + b"\xff" * 12)}, ("/data/train-images-idx3-ubyte.gz", too_short)),
        "labels-beyond-9": ({"train-labels-idx1-ubyte.gz": lambda c: idx_bytes(
            (np.arange(30) % 12).astype(np.uint8))}, ("MNIST labels in", "/data go beyond 9")),
        "fewer-labels-than-images": ({"train-labels-idx1-ubyte.gz": lambda c: idx_bytes(np.zeros(29, np.uint8))},
                                     ("/data has 30 images but 29 labels",)),
        "labels-three-dimensional": ({"t10k-labels-idx1-ubyte.gz": lambda c: idx_bytes(
            np.zeros((20, 1, 1), np.uint8))},
            ("/data/t10k-labels-idx1-ubyte.gz", "is not an IDX file of 1-dimensional unsigned bytes")),
        "images-5x5": ({"train-images-idx3-ubyte.gz": lambda c: idx_bytes(np.full((30, 5, 5), 9, np.uint8)),
                        "t10k-images-idx3-ubyte.gz": lambda c: idx_bytes(np.zeros((20, 5, 5), np.uint8))},
                       ("MNIST's training images in", "/data are (30, 5, 5), not N > 0 images of 28x28")),
        "no-training-images": ({"train-images-idx3-ubyte.gz": lambda c: idx_bytes(np.zeros((0, 28, 28), np.uint8)),
                                "train-labels-idx1-ubyte.gz": lambda c: idx_bytes(np.zeros(0, np.uint8))},
                               ("MNIST's training images in", "/data are (0, 28, 28)")),
        "mnist.npz-without-y_test": ({"mnist.npz": lambda c: npz_bytes(shape=(28, 28), y_test=None)},
                                     ("/data/mnist.npz", not_mnist_npz, "y_test")),
        "mnist.npz-noise": ({"mnist.npz": lambda c: noise(8, 3000, ZIP_SIGNATURE)},
                            ("/data/mnist.npz", not_mnist_npz)),
    }
    for name, (damages, error) in parsed.items():
        def make(env, damages=damages):
            env.skip_checksums()
            files = dict(env.world.mnist)
            for target, damage in damages.items():
                files[target] = damage(files.get(target, b""))
            return env.data_dir(files)

        data_dir_uses("mnist-parser", name, "mnist", make, scripts=("train", "evaluate"), error=error)

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

        data_dir_uses("mnist", name, "mnist", make, scripts=("train",), error=(f"/real data/{target}", NOT_PUBLISHED))


def svhn_family():
    kinds = damage_kinds("svhn", MAT_HEADER[:20])
    kinds.append(("hdf5-matlab-7.3", lambda content: noise(4, 3000, HDF5_SIGNATURE)))
    damaged_official_files("svhn", kinds, ["train_32x32.mat", "test_32x32.mat"], data.svhn.MD5)

    def test_missing(env):
        env.trust(env.world.svhn, data.svhn.MD5)
        return env.data_dir({"train_32x32.mat": env.world.svhn["train_32x32.mat"]})

    data_dir_uses("svhn", "test-file-missing", "svhn", test_missing,
                  error=("test_32x32.mat not found in", "/data", "the download from"))

    # Only well-formed files and clean cuts here: on random bytes scipy.io.loadmat can kill the process with a
    # segmentation fault (scipy 1.17.1), which the md5 check before parsing keeps away from users.
    train_file = "/data/train_32x32.mat"
    parsed = {  # name: (train_32x32.mat's bytes, what the refusal must say)
        "cut-short": (lambda: mat_bytes(30)[:3000], (train_file, "is not a readable SVHN .mat file")),
        "float-images": (lambda: mat_bytes(30, images=np.zeros((32, 32, 3, 30), np.float64)),
                         (train_file, "holds X of shape (32, 32, 3, 30) and type float64")),
        "28x28x1-images": (lambda: mat_bytes(30, images=np.zeros((28, 28, 1, 30), np.uint8)),
                           (train_file, "holds X of shape (28, 28, 1, 30)")),
        # The reason in parentheses is only scipy's KeyError, "('y')" (reported): required are the file and its
        # being unreadable.
        "no-labels": (lambda: mat_bytes(30, labels=False), (train_file, "is not a readable SVHN .mat file")),
        "labels-0": (lambda: mat_bytes(30, labels=np.zeros((30, 1), np.uint8)), (train_file, "labels outside 1..10")),
        "labels-11": (lambda: mat_bytes(30, labels=np.full((30, 1), 11, np.uint8)),
                      (train_file, "labels outside 1..10")),
        "fewer-labels": (lambda: mat_bytes(30, labels=np.ones((29, 1), np.uint8)),
                         (train_file, "has 30 images but 29 labels")),
        "three-dimensional-images": (lambda: mat_bytes(30, images=np.zeros((32, 32, 90), np.uint8)),
                                     (train_file, "has no image array X of shape (32, 32, 3, N)")),
        "no-images": (lambda: mat_bytes(0), ("SVHN's training files in", "/data hold no images")),
    }
    for name, (make_train, error) in parsed.items():
        def make(env, make_train=make_train):
            env.skip_checksums()
            return env.data_dir({**env.world.svhn, "train_32x32.mat": make_train()})

        data_dir_uses("svhn-parser", name, "svhn", make, scripts=("train", "evaluate"), error=error)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and a correct IHDR chunk claiming width x height greyscale pixels, and no pixel data."""
    return PNG_SIGNATURE + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + \
        png_chunk(b"IEND", b"")


def image_family():
    def predict_on(name: str, make: Callable, suffix=".png", model=None, expect="refused", extra=(), error=(),
                   named=True):
        """`error`: what a refusal must say besides the image's name, photo`suffix` (unless not `named`: then
        `make` gives the path, and `error` names it)."""
        def setup(env):
            source = env.world.street_model if model == "street" else env.world.small_model
            image = make(env) if callable(make) else make
            path = image if isinstance(image, Path) else env.file(f"photo{suffix}", image)
            return ["--model-file", str(env.model_copy(source=source)), *extra, str(path)]

        case(f"image-{name}", "predict", setup, expect,
             error=((f"/photo{suffix}",) if named and expect != "succeeds" else ()) + tuple(error))

    # data/photos.py's words: Pillow cannot tell the format, or it can but the pixels are damaged.
    unknown = "not an image Pillow can read"
    damaged = "the image data is damaged"
    reasons = {"empty": "the file is empty", "noise-": unknown, "magic-then-noise": either(unknown, damaged),
               "first-": either(unknown, damaged), "cut-at-": either(unknown, damaged)}
    for fmt, magic, suffix in [("png", PNG_SIGNATURE, ".png"), ("jpeg", b"\xff\xd8\xff\xe0", ".jpg")]:
        for name, damage in damage_kinds(f"image-{fmt}", magic):
            if name != "last-byte-missing":  # the pixels are all there: Pillow reads the image, rightly
                predict_on(f"{fmt}-{name}", lambda env, d=damage, f=fmt: d(getattr(env.world, f)), suffix,
                           error=(for_kind(name, reasons),))

    def idat_flipped(env):
        content = env.world.png
        start = content.index(b"IDAT") + 4
        return flipped(content, 11, start, start + 50)

    predict_on("png-pixel-data-flipped", idat_flipped, error=(damaged,))
    for fmt, magic in [("gif", b"GIF89a"), ("bmp", b"BM"), ("tiff", b"II*\x00"), ("ico", b"\x00\x00\x01\x00"),
                       ("webp", b"RIFF\x00\x10\x00\x00WEBPVP8 "), ("psd", b"8BPS\x00\x01"), ("pdf", b"%PDF-1.4\n")]:
        for length in (30, 3000):
            predict_on(f"{fmt}-header-then-noise-{length}", noise(hash_seed(fmt, length), length, magic), f".{fmt}",
                       error=(either(unknown, damaged),))
    # Extreme sizes.
    too_small = "pixels is too small to show a digit"
    rng = family_rng("image-sizes")
    for height, width in [(1, 1), (1, 10000), (10000, 1), (2, 3)]:
        pixels = rng.integers(0, 256, (height, width), dtype=np.uint8)
        size = f"{width}x{height} {too_small}"  # width x height, as Pillow gives them
        predict_on(f"{height}x{width}-pixels", encoded(pixels, "PNG"), error=(size,))
        predict_on(f"{height}x{width}-pixels-street-model", encoded(pixels, "PNG"), model="street", error=(size,))
    too_large = "too large to decode safely"
    predict_on("header-claims-100000x100000", png_header_only(100000, 100000), error=(too_large,))
    predict_on("header-claims-100000x100000-street-model", png_header_only(100000, 100000), model="street",
               error=(too_large,))
    predict_on("header-claims-0x5", png_header_only(0, 5), error=(unknown,))
    predict_on("header-claims-3000x3000-no-pixel-data", png_header_only(3000, 3000), error=(damaged,))
    predict_on("blank-page", encoded(np.full((60, 40), 200, np.uint8), "PNG"), error=("no digit found",))
    predict_on("a-text-file", b"this is a note, not a picture\n", ".png", error=(unknown,))
    predict_on("a-folder", lambda env: (env.tmp / "photos.png").mkdir() or env.tmp / "photos.png",
               error=("/photos.png: is a folder",), named=False)
    predict_on("a-fifo", lambda env: os.mkfifo(env.tmp / "pipe.png") or env.tmp / "pipe.png",
               error=("/pipe.png: is not a regular file",), named=False)
    predict_on("dev-zero", Path("/dev/zero"), error=("/dev/zero: is not a regular file",), named=False)
    predict_on("a-link-to-nowhere", lambda env: (env.tmp / "gone.png").symlink_to(env.tmp / "nothing") or
               env.tmp / "gone.png", error=("/gone.png: no such file",), named=False)
    predict_on("a-link-loop", lambda env: (env.tmp / "loop.png").symlink_to(env.tmp / "loop.png") or
               env.tmp / "loop.png", error=("/loop.png: cannot be opened",), named=False)
    # A usable picture of extreme proportions must be read, whichever model, without memory to spare.
    wide = np.full((12, 20000), 220, np.uint8)
    wide[2:10, 9990:9996] = 20
    predict_on("12x20000-with-a-stroke-street-model", encoded(wide, "PNG"), model="street", expect="succeeds")
    # --json reports an unusable image on stdout; stderr stays empty.
    predict_on("noise-json", noise(12, 500), extra=["--json"], expect="json-refused", error=(unknown,))
    predict_on("1x1-json", encoded(np.zeros((1, 1), np.uint8), "PNG"), extra=["--json"], expect="json-refused",
               error=(f"1x1 {too_small}",))

    def one_good_one_bad(env):
        return ["--model-file", str(env.reader_copy()), str(env.file("good.png", env.world.png)),
                str(env.file("bad.png", noise(13, 700)))]

    case("image-one-good-one-bad", "predict", one_good_one_bad, error=("/bad.png", unknown))


def json_family():
    def config_uses(name: str, make: Callable, scripts: tuple[str, ...], error: tuple):
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

            case(f"config-{name}-{script}", script, setup, error=error)

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
    no_data_set = ("/run/config.json names no data set",)  # a JSON object, but no run's (harness/runs.py)
    for number, (name, make) in enumerate(whole):
        config_uses(name, make, (readers[number % len(readers)],), no_data_set if name == "marker-only" else
                    ("/run is not a run written by train.py", "its config.json is missing, damaged or not ours"))
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
    records = {"limit": "the image limit", "data_dir": "the data folder",
               "validation_fraction": "the validation fraction"}  # what each entry is called in the error
    errors = {"dataset-unknown": ("unknown dataset 'cifar10'",),  # config.json is not named (reported)
              "dataset-a-missing-npz": ("/nowhere/digits.npz, which is no longer there", "/run/config.json")}
    for name, (key, value) in fields.items():
        error = errors.get(name) or (no_data_set if key == "dataset" else
                                     (f"/run/config.json records {records[key]} {value!r}, not a",))

        def edit(config, key=key, value=value):
            if value is ...:
                config.pop(key)
            else:
                config[key] = value
            return json.dumps(config).encode()  # json writes float("inf") as the token Infinity, read back as inf

        # Only python -m serving.export reads validation_fraction (to pick the int8 calibration images).
        config_uses(name, edit, ("export",) if key == "validation_fraction" else ("evaluate", "export", "visualize"),
                    error)

    def metrics_uses(name: str, content: bytes, error: str):
        def setup(env):
            run = env.run_copy()
            (run / "metrics.json").write_bytes(content)
            return ["--run-dir", str(run), "--report"]

        case(f"metrics-{name}-visualize", "visualize", setup, error=("/run/metrics.json", error))

    rng = family_rng("metrics")
    unreadable, not_object, accuracy = "cannot read", "not an object", "records the test accuracy"
    metrics_uses("noise", noise(int(rng.integers(2 ** 31)), 200), unreadable)
    metrics_uses("cut-short", b'{"test_accuracy": 0.18, "test_lo', unreadable)
    metrics_uses("a-list", b"[0.18]", not_object)
    metrics_uses("a-string", b'"accurate"', not_object)
    metrics_uses("accuracy-text", b'{"test_accuracy": "high"}', f"{accuracy} 'high'")
    metrics_uses("accuracy-null", b'{"test_accuracy": null}', f"{accuracy} None")
    metrics_uses("accuracy-nan", b'{"test_accuracy": NaN}', f"{accuracy} nan")
    metrics_uses("deeply-nested", b'{"test_accuracy": ' + b"[" * 100000 + b"]" * 100000 + b"}", unreadable)


BAD_WHOLE_NUMBERS = ["-1", "0", "nan", "inf", "1.5", "abc", "", "1e3", "0x10"]
BAD_POSITIVE_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "abc", "", "1e-400"]
BAD_FRACTIONS = ["-0.1", "1", "1.5", "nan", "inf", "abc"]


def flag_family():
    def flags(script: str, argv_tail: list[str], prefix: Callable = lambda env: [], name=None, error=None):
        """`error` by default: the flag whose value was bad (the tail's first: --flag=value or --flag value),
        "must be" and the value."""
        name = name or " ".join(argv_tail) or "(none)"
        if error is None:
            flag, value = argv_tail[0].split("=", 1) if "=" in argv_tail[0] else argv_tail[:2]
            error = (f"argument {flag}: must be", f"not {value!r}")
        case(f"flag-{script}-{name}", script, lambda env: prefix(env) + argv_tail, error=error)

    def parser_says(flag: str, says: str) -> tuple:  # argparse's own errors, in harness/cli.py's one line
        return f"argument {flag}: ", says

    unknown_word = lambda word: ("unrecognized arguments: ", word)  # noqa: E731
    no_value = lambda flag: parser_says(flag, "expected one argument")  # noqa: E731
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
    unknown_dataset = lambda name: parser_says("--dataset", f"unknown dataset {name!r}")  # noqa: E731
    for tail, error in ((["--model", "resnet"], parser_says("--model", "invalid choice: 'resnet'")),
                        (["--augment", "rotate"], parser_says("--augment", "invalid choice: 'rotate'")),
                        (["--distribute", "tpu"], parser_says("--distribute", "invalid choice: 'tpu'")),
                        (["--dataset", "cifar10"], unknown_dataset("cifar10")),
                        (["--dataset", ""], unknown_dataset("")),
                        (["--dataset", "digits.zip"], unknown_dataset("digits.zip")),
                        (["--no-such-flag"], unknown_word("--no-such-flag")),
                        (["stray-word"], unknown_word("stray-word")), (["--epochs"], no_value("--epochs")),
                        (["--dry-run=yes"], parser_says("--dry-run", "ignored explicit argument 'yes'")),
                        (["--run-dir"], no_value("--run-dir"))):
        flags("train", tail, train_prefix, error=error)
    # Values the parser lets through, to the places that use them.
    flags("train", ["--seed", "-1"], train_prefix)
    flags("train", ["--seed", "99999999999999999999"], train_prefix)
    flags("train", ["--batch-size", "99999999999999999999"], train_prefix)
    flags("train", ["--learning-rate", "1e300"], train_prefix)
    flags("train", ["--epochs", "99999999999999999999", "--limit", "20"],
          lambda env: ["--dataset", "synthetic", "--run-dir", str(env.tmp / "run")])

    for value in BAD_WHOLE_NUMBERS:
        flags("evaluate", [f"--max-mistakes={value}"])
    for tail, error in ((["--run-dir"], no_value("--run-dir")), (["--no-such-flag"], unknown_word("--no-such-flag")),
                        (["stray-word"], unknown_word("stray-word")), (["--data-dir"], no_value("--data-dir"))):
        flags("evaluate", tail, error=error)

    run = lambda env: ["--run-dir", str(env.run_copy())]  # noqa: E731
    both_dirs = parser_says("--model-file", "not allowed with argument --run-dir")
    for flag in ("--images", "--top-k", "--units"):
        for value in ["-1", "0", "nan", "abc", "1e3"]:
            flags("visualize", [f"{flag}={value}"], run)
    for tail, error in ((["--probe-images", "5"], parser_says("--probe-images", "expected 2 arguments")),
                        (["--probe-images", "0", "5"], parser_says("--probe-images", "must be")),
                        (["--probe-images", "-1", "5"], parser_says("--probe-images", "must be")),
                        (["--probe-images", "5", "abc"], parser_says("--probe-images", "must be")),
                        (["--seed", "abc"], parser_says("--seed", "must be")),
                        (["--dataset", "cifar10"], unknown_dataset("cifar10")),
                        (["--model-file", "model.keras"], both_dirs),
                        (["--no-such-flag"], unknown_word("--no-such-flag")),
                        (["stray-word"], unknown_word("stray-word")), (["--layer"], no_value("--layer"))):
        flags("visualize", tail, run, error=error)
    unknown_layer = lambda name: (f"unknown layer {name!r}; valid layers: ",)  # noqa: E731
    for tail, error in ((["--layer", "no_such_layer"], unknown_layer("no_such_layer")),
                        (["--layer", ""], unknown_layer("")),
                        (["--layer", "conv1/inner"], unknown_layer("conv1/inner")),
                        (["--layer", "/"], unknown_layer("/")),
                        (["--layer", "flatten"], ("flatten has no weights or units to show",)),
                        (["--seed", "-1", "--layer", "conv1"], parser_says("--seed", "must be")),
                        (["--seed", "99999999999999999999", "--layer", "conv1"], parser_says("--seed", "must be"))):
        flags("visualize", tail, run, error=error)

    image = lambda env: [str(env.file("digit.png", env.world.png))]  # noqa: E731
    model = lambda env: ["--model-file", str(env.reader_copy())] + image(env)  # noqa: E731
    flags("predict", [], name="no-image", error=("the following arguments are required: IMAGE",))
    for tail, error in ((["--run-dir", "run", "--model-file", "model.keras"], both_dirs),
                        (["--no-such-flag"], unknown_word("--no-such-flag")), (["--show-dir"], no_value("--show-dir")),
                        (["--json=yes"], parser_says("--json", "ignored explicit argument 'yes'"))):
        flags("predict", tail, image, error=error)
    flags("predict", ["--run-dir", "no such run"], image, error=("no model file no such run/model.keras",))
    flags("predict", ["--show", "--show-dir", "digit.png/inside"], model, name="--show-dir-inside-a-file",
          error=("digit.png/inside", "Not a directory"))

    # No --run-dir: the default run, which the case's empty folder does not hold.
    flags("export", [], error=("no trained model in runs/",))
    for tail, error in ((["--no-such-flag"], unknown_word("--no-such-flag")), (["--run-dir"], no_value("--run-dir")),
                        (["stray-word"], unknown_word("stray-word")), (["--data-dir"], no_value("--data-dir"))):
        flags("export", tail, error=error)


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
        "--model-file", str(env.reader_copy()), str(env.tmp / "dossier été" / "manquant 数字.png")],
        error="/dossier été/manquant 数字.png: no such file")
    case("place-missing-image-named-with-a-newline", "predict", lambda env: [
        "--model-file", str(env.reader_copy()), str(env.tmp / "ligne\nnouvelle.png")],
        error=("/ligne\\nnouvelle.png", "no such file"))  # the name as Python writes it, the newline escaped
    case("place-missing-model-in-dossier-été", "predict", lambda env: [
        "--model-file", str(env.tmp / "dossier été" / "模型.keras"), str(env.file("digit.png", env.world.png))],
        error=("no model file /", "/dossier été/模型.keras"))
    case("place-missing-npz-in-données-été", "train", lambda env: [
        "--dataset", str(env.tmp / "données été" / "chiffres 7.npz"), "--run-dir", str(env.tmp / "run")],
        error="/données été/chiffres 7.npz does not exist")
    case("place-damaged-npz-in-données-été", "train", lambda env: [
        "--dataset", str(env.file("données été/chiffres 7.npz", noise(14, 900, ZIP_SIGNATURE))),
        "--run-dir", str(env.tmp / "sorties été" / "运行 1")],
        error="/données été/chiffres 7.npz is not a readable .npz")
    for script in ("evaluate", "export"):
        case(f"place-missing-run-in-dossier-été-{script}", script, lambda env: [
            "--run-dir", str(env.tmp / "dossier été" / "运行 1")],
            error=("no trained model in /", "/dossier été/运行 1"))
        case(f"place-damaged-run-in-dossier-été-{script}", script, lambda env: [
            "--run-dir", str(env.edit_config(env.run_copy("dossier été/运行 1"), dataset=["été"]))],
            error="/dossier été/运行 1/config.json names no data set")
    case("place-missing-model-in-dossier-été-visualize", "visualize", lambda env: [
        "--model-file", str(env.tmp / "dossier été" / "模型.keras")],
        error=("no model file /", "/dossier été/模型.keras"))

    # A --run-dir that is a file, or a folder that is not a run.
    def run_dir_file(env):
        return env.file("notes été.txt", b"my notes\n")

    case("place-run-dir-is-a-file-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", str(run_dir_file(env))],
        error="/notes été.txt: it is a file, not a run folder")
    for script in ("evaluate", "export", "visualize"):
        case(f"place-run-dir-is-a-file-{script}", script, lambda env: ["--run-dir", str(run_dir_file(env))],
             error="/notes été.txt is a file, not a run folder")
    def run_plus(env, name: str, content: bytes | None) -> Path:
        """A run with one thing of someone's in it: a file, or (content None) a folder."""
        run = env.run_copy()
        (run / name).mkdir() if content is None else (run / name).write_bytes(content)
        return run

    not_ours = "it is a folder this project did not write"
    own_files = {  # name: (the --run-dir, what train.py's refusal must say)
        "notes": (lambda env: env.file("mine/notes.txt", b"shopping list\n").parent, ("/mine: ", not_ours)),
        "a-bare-model": (lambda env: env.model_copy("mine/model.keras").parent, ("/mine: ", not_ours)),
        "a-config-not-ours": (lambda env: env.file("mine/config.json", b'{"name": "my experiment"}').parent,
                              ("/mine: ", not_ours)),
        "a-run-plus-own-file": (lambda env: run_plus(env, "mes notes.txt", b"ne pas effacer\n"),
                                ("/run: ", "it holds mes notes.txt, which this project did not write")),
        "a-run-plus-own-folder": (lambda env: run_plus(env, "photos", None),
                                  ("/run: ", "it holds photos, which this project did not write")),
    }
    for name, (make, error) in own_files.items():
        case(f"place-run-dir-holds-{name}-train", "train", lambda env, make=make: [
            "--dataset", "synthetic", "--dry-run", "--run-dir", str(make(env))],
            error=("refusing to write a run into /", *error))
    for script in ("evaluate", "export", "visualize"):
        case(f"place-run-dir-holds-a-bare-model-{script}", script, lambda env: [
            "--run-dir", str(own_files["a-bare-model"][0](env))], error="/mine is not a run written by train.py")

    # Missing data folders: the files are not there, and the download (unreachable here) failed.
    missing = lambda env: str(env.tmp / "nowhere été")  # noqa: E731
    not_found = lambda files: (f"{files} not found in /", "/nowhere été and the download from")  # noqa: E731
    mnist_files = f"MNIST IDX files ({', '.join(MNIST_NAMES)})"
    case("place-missing-data-dir-train-mnist", "train", lambda env: [
        "--dataset", "mnist", "--data-dir", missing(env), "--dry-run", "--run-dir", str(env.tmp / "run")],
        error=not_found(mnist_files))
    case("place-missing-data-dir-train-svhn", "train", lambda env: [
        "--dataset", "svhn", "--data-dir", missing(env), "--dry-run", "--run-dir", str(env.tmp / "run")],
        error=not_found("train_32x32.mat"))
    case("place-missing-data-dir-visualize", "visualize", lambda env: [
        "--model-file", str(env.reader_copy()), "--data-dir", missing(env)], error=not_found(mnist_files))
    for script in ("evaluate", "export"):
        case(f"place-missing-data-dir-{script}", script, lambda env: [
            "--run-dir", str(env.edit_config(env.run_copy(), dataset="mnist")), "--data-dir", missing(env)],
            error=not_found(mnist_files))
    case("place-data-dir-is-a-file-train", "train", lambda env: [
        "--dataset", "mnist", "--data-dir", str(env.file("data.txt", b"x")), "--dry-run",
        "--run-dir", str(env.tmp / "run")], error=("/data.txt is a file, not a folder", "--data-dir"))

    # Read-only places to write to: /sys and /proc refuse new entries even to root. The errors are the operating
    # system's (harness/cli.py prints an OSError as it is), naming the path the script tried to write.
    refused = either("Operation not permitted", "Permission denied", "Read-only file system")
    case("place-run-dir-under-sys-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", "/sys/digits-bad-input-run"],
        error=("cannot write a run into /sys/digits-bad-input-run: ", refused))
    case("place-run-dir-under-proc-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", "/proc/digits-bad-input-run"],
        error="cannot write a run into /proc/digits-bad-input-run: ")
    case("place-show-dir-under-sys-predict", "predict", lambda env: [
        "--model-file", str(env.reader_copy()), "--show", "--show-dir", "/sys/digits-bad-input",
        str(env.file("digit.png", env.world.png))], error=("/sys/digits-bad-input", refused))
    case("place-run-dir-in-read-only-folder-train", "train", lambda env: [
        "--dataset", "synthetic", "--dry-run", "--run-dir", str(read_only(env, env.data_dir({}, "locked")) / "run")],
        error=("/locked/", refused))
    for script, tail in (("evaluate", []), ("visualize", ["--layer", "dense1"]), ("export", [])):
        case(f"place-read-only-run-{script}", script, lambda env, tail=tail: [
            "--run-dir", str(read_only(env, env.run_copy("locked run"))), *tail], error=("/locked run/", refused))
    case("place-model-in-read-only-folder-visualize", "visualize", lambda env: [  # figures/ would go beside it
        "--model-file", str(read_only(env, env.model_copy("locked/model.keras").parent) / "model.keras"),
        "--dataset", "synthetic", "--layer", "dense1"], error=("/locked/figures", refused))
    # Outputs blocked by something in the way.
    case("place-evaluation.json-is-a-folder-evaluate", "evaluate", lambda env: [
        "--run-dir", str(run_plus(env, "evaluation.json", None))],
        error=("refusing to replace /", "/run/evaluation.json: this project did not write it"))
    case("place-figures-is-a-file-visualize", "visualize", lambda env: [
        "--run-dir", str(run_plus(env, "figures", b"not a folder")), "--layer", "dense1"],
        error="/run/figures is a file, not a folder for the figures; choose another --out")


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
assert all(bool(c.error) == (c.expect != "succeeds") for c in CASES), "each refusal, and only one, names its error"


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
    problems = judge(answer, case.expect, case.error) + changes(before, after)
    outcome = "traceback" if answer.trace else f"exit {answer.code}"
    TALLY["inputs"] += 1
    TALLY["valid inputs" if case.expect == "succeeds" else "bad inputs"] += 1
    TALLY["error checked"] += bool(case.error)
    TALLY[("outcome", outcome)] += 1
    TALLY[("script", case.script, outcome)] += 1
    verdict = ("known failure (xfail)" if case.known else "FAILED") if problems else "as required"
    TALLY[("verdict", verdict)] += 1
    said = answer.out.splitlines() if case.expect == "json-refused" else answer.errors  # where the error goes
    ANSWERS.append(f"{case.id!r}\t{outcome}\t{' | '.join(said)[:1000]!r}")
    assert not problems, f"{case.script} {argv!r}:\n" + "\n".join(problems)


def tally_lines(tally: collections.Counter | None = None) -> list[str]:
    """How many inputs were tried and how each ended (tests/conftest.py prints it after the session): this
    process's TALLY, or `tally`, the sum of several processes' (pytest-xdist's workers)."""
    TALLY = tally if tally is not None else globals()["TALLY"]  # noqa: N806 (the module's name, or the sum)
    if not TALLY:
        return []
    scripts = sorted({key[1] for key in TALLY if key[0] == "script"})
    outcomes = sorted({key[1] for key in TALLY if key[0] == "outcome"})
    lines = [f"bad-input suite: {TALLY['inputs']} inputs tried ({TALLY['bad inputs']} bad, each judged on which "
             f"error too: {TALLY['error checked']}; {TALLY['valid inputs']} valid ones that must work); "
             f"{len(NOT_RUN)} known failures not run",
             "  outcomes: " + ", ".join(f"{outcome} {TALLY['outcome', outcome]}" for outcome in outcomes),
             "  verdicts: " + ", ".join(f"{key[1]} {count}" for key, count in sorted(TALLY.items(), key=str)
                                        if key[0] == "verdict")]
    lines += [f"  {script}: " + ", ".join(f"{outcome} {TALLY['script', script, outcome]}" for outcome in outcomes
                                          if TALLY["script", script, outcome]) for script in scripts]
    if os.environ.get("BAD_INPUTS_ANSWERS"):
        Path(os.environ["BAD_INPUTS_ANSWERS"]).write_text("\n".join(ANSWERS) + "\n", encoding="utf-8")
    return lines
