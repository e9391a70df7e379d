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
mode off whatever load_model is told). It judges a file by its structure before
Keras reads it, never by the wording of Keras's errors (which changes between
versions): the zip archive and its members (for a missing, empty, foreign or
truncated file Keras only says "File not found"), the Keras version in
metadata.json, and every object config.json names, each of which must be a class
or function this Keras can rebuild. When Keras still fails, the weights file's
variables are compared with those of the model rebuilt from config.json; other
failures are quoted by exception type and first line. Files saved before
save_model existed, with the fused layer in them, still load here: importing this
module registers that layer.
"""

import importlib
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
# Packages whose classes Keras imports by the module path a config names (anything else must be registered).
KERAS_PACKAGES = ("keras", "keras_hub", "keras_cv", "keras_nlp")
# Keras's public modules whose functions a config may name by name alone (module "builtins").
BUILTIN_MODULES = ("activations", "constraints", "initializers", "losses", "metrics", "optimizers", "regularizers")
# Where an object config that names no module is looked up: Keras's public modules of layer parts.
PUBLIC_MODULES = ("keras", "keras.layers", "keras.dtype_policies", "keras.optimizers.schedules",
                  *(f"keras.{name}" for name in BUILTIN_MODULES))


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
    unknown = unknown_object(config)
    if unknown:
        kind, name = unknown
        raise refusal(path, other_keras(made_with) or
                      f"it uses the {kind} {name!r}, which this Keras does not know (custom code from another "
                      f"project).")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for files it cannot read
        raise refusal(path, explain(path, config, error, made_with)) from error


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
    except RecursionError as error:
        raise refusal(path, f"it is damaged (its {CONFIG_MEMBER} nests deeper than any model).") from error
    if not (isinstance(config, dict) and isinstance(config.get("class_name"), str) and "config" in config):
        # Keras writes {"module": ..., "class_name": ..., "config": {...}, ...} for every model.
        raise refusal(path, f"it is damaged (its {CONFIG_MEMBER} is JSON but no model's configuration).")
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


def objects(config, compiled: bool = True):
    """(entry, owner) for each object config.json (parsed) names, depth first in file order.

    An object entry is a dict with a string "class_name" (and usually "module",
    "config", "registered_name"); owner is the layer holding it, as
    "layer 'double' (Lambda)", or "its configuration". compiled=False leaves out the
    model's compile_config (loss, metrics, optimizer), which loading with
    compile=False never rebuilds. Iterative: a deeply nested file cannot exhaust
    Python's stack.
    """
    stack = [(config, "its configuration", not compiled)]
    while stack:
        node, owner, skip_compile = stack.pop()
        if isinstance(node, dict):
            children = [value for key, value in node.items() if not (skip_compile and key == "compile_config")]
            if isinstance(node.get("class_name"), str):
                yield node, owner
                inner = node.get("config")
                if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                    owner = f"layer {inner['name']!r} ({node['class_name']})"
        elif isinstance(node, list):
            children = node
        else:
            continue
        stack.extend((child, owner, False) for child in reversed(children))


def python_code(config) -> str | None:
    """Which part of config.json (parsed) holds serialised Python bytecode, as "layer 'double' (Lambda)", or None.

    Keras writes a Python lambda as {"class_name": "__lambda__", ...}, inside the
    config of the layer that uses it (a Lambda layer's function, say).
    """
    return next((owner for entry, owner in objects(config) if entry["class_name"] == "__lambda__"), None)


def unknown_object(config) -> tuple[str, str] | None:
    """("class" or "function", its name) for the first object in config.json (parsed) this Keras cannot rebuild.

    Names of the form __name__ are Keras's encodings of values (a tensor, an
    array, a slice), not classes. The compile configuration is not rebuilt
    (loading does not compile), so it is not judged either.
    """
    for entry, _ in objects(config, compiled=False):
        class_name = entry["class_name"]
        if class_name.startswith("__") and class_name.endswith("__"):
            continue
        if class_name == "function":
            kind, name, registered = "function", entry.get("config"), entry.get("config")
        else:
            kind, name, registered = "class", class_name, entry.get("registered_name", class_name)
        if isinstance(name, str) and not rebuildable(kind, name, entry.get("module"), registered):
            return kind, name
    return None


def rebuildable(kind: str, name: str, module, registered) -> bool:
    """Whether this Keras finds the class or function a config entry names, where Keras looks for it.

    In order: objects registered with keras.saving.register_keras_serializable (by
    their registered name, "package>Class"), then Keras's own by their module path
    (keras.layers.Dense; keras.src.models.functional.Functional), functions named
    alone among Keras's built-in ones, and entries with no module among Keras's
    public modules.
    """
    if isinstance(registered, str) and keras.saving.get_registered_object(registered) is not None:
        return True
    if not isinstance(module, str) or not module:
        return any(public_object(kind, candidate, name) for candidate in PUBLIC_MODULES)
    if kind == "function" and module == "builtins":
        return (any(public_object(kind, f"keras.{candidate}", name) for candidate in BUILTIN_MODULES)
                or any(key.endswith(f">{name}") for key in keras.saving.get_custom_objects()))
    return module.split(".")[0] in KERAS_PACKAGES and public_object(kind, module, name)


def public_object(kind: str, module: str, name: str) -> bool:
    """Whether `module` (a package Keras imports classes from) has a class, or function, called `name`."""
    try:
        found = getattr(importlib.import_module(module), name, None)
    except (ImportError, ValueError, TypeError):  # not installed, or not a module path at all
        return False
    return isinstance(found, type) if kind == "class" else callable(found)


def version_tuple(version: str) -> tuple[int, ...]:
    """(major, minor, patch) of a version string such as "3.15.1" or "3.16.0.dev2025"; missing parts are 0."""
    numbers = [int(part) for part in re.findall(r"\d+", version)[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def other_keras(made_with: str | None) -> str | None:
    """The reason to give when the file comes from a newer Keras, or another major version, else None."""
    if made_with is None:
        return None
    saved, installed = version_tuple(made_with), version_tuple(keras.__version__)
    if saved[0] != installed[0] or saved > installed:
        return f"it was made with Keras {made_with}, this is Keras {keras.__version__}; open it with Keras {made_with}."
    return None


def explain(path: Path, config, error: Exception, made_with: str | None) -> str:
    """Why Keras could not load a file whose archive and classes passed: from the file's structure, else `error`'s type.

    In order: a Keras version other than this one; weights that do not fit the
    model config.json describes (compared variable by variable); otherwise Keras's
    own exception, by type and first line.
    """
    return other_keras(made_with) or weights_mismatch(path, config) or keras_failure(error)


def keras_failure(error: Exception) -> str:
    """Keras's exception in one line: its type and the first line of its message.

    Where Keras wrapped another exception (a layer's own error inside the
    model's), that one is quoted: it says more.
    """
    for _ in range(10):  # exceptions chained by raise ... from, or raised while handling another
        inner = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        if inner is None:
            break
        error = inner
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "no message")
    return f"Keras could not build a model from it ({type(error).__name__}: {first[:LONGEST_DETAIL]})."


def weights_mismatch(path: Path, config) -> str | None:
    """Why the weights in `path` do not fit the model config.json describes, or None if they do (or it cannot tell).

    The model is rebuilt from config.json alone; Keras writes its weights as it
    would lay them out, and each layer's variables (their number and shapes) are
    compared with the file's, first layer first.
    """
    try:
        weights = archived_weights(path)
    except (KeyError, OSError, zipfile.BadZipFile):
        return None  # .npz weights, or none: nothing to compare (read_archive judged the archive)
    try:
        found = weight_layout(io.BytesIO(weights))
    except Exception as error:  # h5py raises OSError for a file it cannot parse, and others for damage inside
        return (f"it is damaged (its {WEIGHTS_MEMBERS[0]} is not a readable HDF5 file: {type(error).__name__}); "
                f"copy the file again.")
    try:
        model = keras.saving.deserialize_keras_object({**config, "compile_config": None}, safe_mode=True)
        if not isinstance(model, keras.Model):
            return None
        expected = weight_layout(io.BytesIO(archived_weights(io.BytesIO(model_bytes(model)))))
    except Exception:  # a config Keras cannot build a model from: keras_failure says why
        return None
    layers = {layer.name: (order, type(layer).__name__) for order, layer in enumerate(all_layers(model))}
    differing = [name for where, (name, variables) in expected.items() if found.get(where, (name, {}))[1] != variables]
    differing += [name for where, (name, _) in found.items() if where.startswith("layers/") and where not in expected]
    if not differing:
        return None
    first = min(differing, key=lambda name: layers.get(name, (len(layers), ""))[0])
    kind = layers.get(first, (0, ""))[1]
    return (f"its weights do not match its configuration (first at {kind + ' ' if kind else ''}layer {first!r}); "
            f"the file is inconsistent.")


def archived_weights(archive) -> bytes:
    """The HDF5 weights member of a .keras archive (a path or a file object); KeyError where it has none."""
    with zipfile.ZipFile(archive) as opened:
        return opened.read(WEIGHTS_MEMBERS[0])


def weight_layout(source) -> dict[str, tuple[str, dict[str, tuple[int, ...]]]]:
    """{group path: (layer name, {variable: shape})} for each "vars" group of a Keras weights file (HDF5).

    Keras stores each layer's own variables as datasets 0, 1, ... of a group
    named vars, whose "name" attribute is the layer's name.
    """
    import h5py  # only to judge a file Keras could not load

    layout = {}
    with h5py.File(source, "r") as weights:
        def visit(where, item):
            if isinstance(item, h5py.Group) and where.rsplit("/", 1)[-1] == "vars":
                name = item.attrs.get("name", where)
                name = name.decode() if isinstance(name, bytes) else str(name)
                layout[where] = (name, {key: tuple(value.shape) for key, value in item.items()
                                        if isinstance(value, h5py.Dataset)})
        weights.visititems(visit)
    return layout


def all_layers(model: keras.Model):
    """The model's layers in order, each nested model's own layers after it."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
