"""Reading and writing .keras model files: portable files out, unusable files refused in one sentence.

    from harness import model_files
    model_files.save_model(model, "runs/convnet_mnist/model.keras")   # standard Keras layers only
    model = model_files.load_model("my_friends_model.keras")          # or a UserError saying what is wrong

save_model writes a file that plain `keras.saving.load_model` reads in a Python
that has never imported this project. The convnet trains with
FusedBatchNormalization (models/fused_batch_norm.py), a project class; the file
holds the keras.layers.BatchNormalization it derives from instead, with the same
configuration and weights. Inference of the fused layer is that class's own code,
so the file predicts bit for bit what the trained model predicts. The compiled
state (optimizer, its moments, loss, metrics) is carried over as model.save
would write it.

load_model reads files a user may have brought from anywhere, so it loads with
Keras's safe mode on and refuses Python code in the file itself as well (a
process that once called keras.config.enable_unsafe_deserialization() turns safe
mode off whatever load_model is told). It opens the archive with zipfile before
Keras does, because for a missing, empty, foreign or truncated file Keras only
says "File not found". Files saved before save_model existed, with the fused
layer in them, still load here: importing this module registers that layer.
"""

import io
import json
import re
import zipfile
from pathlib import Path

import keras
from keras.src.saving import saving_lib

from harness.errors import UserError
from harness import atomic
from models.fused_batch_norm import FusedBatchNormalization

# Each project layer class -> the standard Keras class whose inference it shares.
STANDARD_LAYERS = {FusedBatchNormalization: keras.layers.BatchNormalization}

CONFIG_MEMBER = "config.json"  # the model's architecture, inside a .keras zip archive
METADATA_MEMBER = "metadata.json"  # {"keras_version": ..., "date_saved": ...}
WEIGHTS_MEMBERS = ("model.weights.h5", "model.weights.npz")  # Keras writes the first; it reads either
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first bytes of every HDF5 file, the legacy .h5 format
ZIP_SIGNATURE = b"PK\x03\x04"  # the first bytes of a zip archive's first member
LONGEST_DETAIL = 200  # characters of a foreign error message quoted in ours


def save_model(model: keras.Model, path: Path, training_setup: bool = True) -> None:
    """Write `model` to `path` (ending in .keras) with standard Keras layers only, atomically.

    training_setup=False leaves out the loss, metrics and optimizer state (for a loss of our own,
    which plain Keras could not rebuild).
    Readers of `path` see the previous file or the new one, never half of one
    (harness/atomic.py).
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"a Keras model file's name must end in .keras, not {path.name!r}")
    atomic.write_bytes(path, model_bytes(portable_copy(model, training_setup)), elsewhere="another --run-dir")


def model_bytes(model: keras.Model) -> bytes:
    """The .keras archive of `model`, made in memory.

    Keras's own writer puts the weights on disk through h5py, which on a full disk
    fails inside its C code and can take the process down (a segmentation fault
    was seen); in memory, the only disk write is atomic.write_bytes's, whose full
    disk is one clear error. keras.saving.save_model takes only file names, so this
    calls the function behind it, which takes a file object.
    """
    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.getvalue()


def portable_copy(model: keras.Model, training_setup: bool = True) -> keras.Model:
    """A clone of `model` with each project layer replaced by its standard Keras class.

    Layer names and order, the model's name, its inputs, the weights and, if
    `model` is compiled, its optimizer state are the same; only classes change.
    """
    if not training_setup:  # the same layers in an uncompiled model: cloning never touches the loss
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    clone = keras.models.clone_model(model, clone_function=standard_layer)
    foreign = [f"{layer.name} ({type(layer).__name__})" for layer in clone.layers if not is_standard(layer)]
    if foreign:
        raise ValueError(f"no standard Keras form for {', '.join(foreign)}; add its class to STANDARD_LAYERS")
    for ours, theirs in zip(model.layers, clone.layers, strict=True):
        theirs.set_weights(ours.get_weights())
    if training_setup:
        copy_compiled_state(model, clone)
    return clone


def standard_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
    """A new, unbuilt layer with `layer`'s configuration, of its standard Keras class if it has one."""
    kind = STANDARD_LAYERS.get(type(layer), type(layer))
    return kind.from_config(layer.get_config())


def is_standard(layer: keras.layers.Layer) -> bool:
    """Whether Keras alone can rebuild `layer` (its class is Keras's own, not registered by a project)."""
    return type(layer).__module__.split(".")[0] == "keras"


def copy_compiled_state(model: keras.Model, clone: keras.Model) -> None:
    """Compile `clone` as `model` is and give it the same optimizer variables (step count, Adam's moments).

    The clone's trainable variables come in the same order as the model's, so the
    optimizer builds its slots in the same order too.
    """
    if not getattr(model, "compiled", False):
        return
    clone.compile_from_config(model.get_compile_config())
    if model.optimizer.built:
        for ours, theirs in zip(model.optimizer.variables, clone.optimizer.variables, strict=True):
            theirs.assign(ours)


def load_model(path: Path) -> keras.Model:
    """The Keras model saved in `path`, or a UserError saying in one sentence why there is none.

    Safe mode is on: a file with Python code in it (a Lambda layer's function) is
    refused, since loading it would run that code. The model is not compiled:
    prediction, evaluation and drawing need no loss, so a file whose loss or
    metrics are someone's own code still loads (only train.py compiles).
    """
    path = Path(path)
    config, made_with = read_archive(path)
    code = python_code(config)
    if code:
        raise refusal(path, f"{code} holds Python code, which loading would run; Keras safe mode refuses that.")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for files it cannot read
        raise refusal(path, explain(error, made_with)) from error


def refusal(path: Path, reason: str) -> UserError:
    """The one error load_model raises: "cannot load PATH: REASON", on one line."""
    return UserError(f"cannot load {path}: {reason}")


def read_archive(path: Path) -> tuple[dict, str | None]:
    """(the model's config.json, the Keras version metadata.json records or None), checked with zipfile.

    UserError for anything that is not an intact .keras zip archive holding a
    configuration and weights.
    """
    start = first_bytes(path)
    try:
        with zipfile.ZipFile(path) as archive:
            config, metadata = model_members(path, archive)
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as error:
        if start.startswith(ZIP_SIGNATURE):
            raise refusal(path, f"it is a truncated or damaged zip archive ({error}); copy the file again.") from error
        raise refusal(path, "it is not a Keras model file (a .keras file is a zip archive, and this is not one).") \
            from error
    try:
        config = json.loads(config)
    except ValueError as error:
        raise refusal(path, f"it is damaged (its {CONFIG_MEMBER} is not valid JSON: {error}).") from error
    if path.suffix != ".keras":
        raise refusal(path, "it is a Keras model archive, but Keras opens one only under a name ending in .keras; "
                            "rename it.")
    return config, saved_version(metadata)


def first_bytes(path: Path) -> bytes:
    """The first bytes of `path`, enough to tell HDF5 from zip; UserError unless it is a readable, non-empty file."""
    if not path.exists():
        raise refusal(path, "there is no such file; check the path.")
    if path.is_dir():
        raise refusal(path, "it is a folder, not a .keras model file; pass the file itself.")
    if not path.is_file():
        raise refusal(path, "it is not a regular file, so not a .keras model file.")
    try:
        with open(path, "rb") as stream:
            start = stream.read(len(HDF5_SIGNATURE))
    except OSError as error:
        raise refusal(path, f"it cannot be read ({error.strerror or error}).") from error
    if not start:
        raise refusal(path, "it is empty (0 bytes).")
    if start == HDF5_SIGNATURE:
        raise refusal(path, "it is an HDF5 file (the legacy Keras .h5 format), not a .keras zip archive; "
                            "re-save it as .keras with the Keras that made it.")
    return start


def model_members(path: Path, archive: zipfile.ZipFile) -> tuple[bytes, bytes]:
    """(config.json, metadata.json or b"{}") from an archive whose members all pass their checksums."""
    damaged = archive.testzip()  # the first member whose checksum fails
    if damaged is not None:
        raise refusal(path, f"it is damaged ({damaged} inside it fails its checksum); copy the file again.")
    members = set(archive.namelist())
    for needed, present in ((CONFIG_MEMBER, CONFIG_MEMBER in members),
                            (WEIGHTS_MEMBERS[0], bool(members.intersection(WEIGHTS_MEMBERS)))):
        if not present:
            raise refusal(path, f"it is a zip archive but not a Keras model archive (it has no {needed}).")
    metadata = archive.read(METADATA_MEMBER) if METADATA_MEMBER in members else b"{}"
    return archive.read(CONFIG_MEMBER), metadata


def saved_version(metadata: bytes) -> str | None:
    """The keras_version that metadata.json records, or None if it records none."""
    try:
        version = json.loads(metadata).get("keras_version")
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def python_code(node, owner: str = "its configuration") -> str | None:
    """Which part of config.json (parsed) holds serialised Python bytecode, as "layer 'double' (Lambda)", or None.

    Keras writes a Python lambda as {"class_name": "__lambda__", ...}, inside the
    config of the layer that uses it (a Lambda layer's function, say).
    """
    if isinstance(node, list):
        children = node
    elif isinstance(node, dict):
        if node.get("class_name") == "__lambda__":
            return owner
        inner = node.get("config")
        if "class_name" in node and isinstance(inner, dict) and isinstance(inner.get("name"), str):
            owner = f"layer {inner['name']!r} ({node['class_name']})"
        children = node.values()
    else:
        return None
    return next(filter(None, (python_code(child, owner) for child in children)), None)


def version_tuple(version: str) -> tuple[int, ...]:
    """(major, minor, patch) of a version string such as "3.15.1" or "3.16.0.dev2025"; missing parts are 0."""
    numbers = [int(part) for part in re.findall(r"\d+", version)[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def explain(error: Exception, made_with: str | None) -> str:
    """Why Keras could not load a file, from its exception and the Keras version that saved the file."""
    if made_with is not None:
        saved, installed = version_tuple(made_with), version_tuple(keras.__version__)
        if saved[0] != installed[0] or saved > installed:
            return (f"it was made with Keras {made_with}, this is Keras {keras.__version__}; "
                    f"open it with Keras {made_with}.")
    message = str(error)
    unknown = unknown_name(message)
    if unknown:
        kind, name = unknown
        return f"it uses the {kind} {name!r}, which this Keras does not know (custom code from another project)."
    mismatch = re.search(r"could not be loaded\. Example error message for object <(\w+) name=([^,>]+)", message)
    if mismatch:
        return (f"its weights do not match its configuration (first at {mismatch.group(1)} layer "
                f"{mismatch.group(2)!r}); the file is inconsistent.")
    # Keras wraps a layer's own error in the model's; the layer's says more.
    detail = " ".join(message.rsplit("Exception encountered:", 1)[-1].split())[:LONGEST_DETAIL]
    return f"Keras could not build a model from it ({type(error).__name__}: {detail})."


def unknown_name(message: str) -> tuple[str, str] | None:
    """("class" or "function", its name) when a Keras error says it found no such object, else None."""
    found = re.search(r"Could not locate (class|function) '([^']+)'", message)
    if found:
        return found.group(1), found.group(2)
    found = re.search(r"Could not deserialize '([^']+)' because it is not a KerasSaveable", message)
    return ("class", found.group(1).rsplit(".", 1)[-1]) if found else None
