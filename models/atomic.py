"""Files and folders written whole or not at all, so a reader (or a crash) never meets half of one.

    with atomic.replacing(path) as temporary:          # write temporary; on success it becomes path
        temporary.write_bytes(data)
    with atomic.replacing(path, keep_suffix=".keras") as temporary:   # for writers that insist on a suffix
        model.save(temporary)
    with atomic.replacing_folder(folder) as temporary:  # an empty folder that replaces `folder` whole
        ...
    atomic.write_json(path, {"accuracy": 0.99})         # strict JSON, atomically

Every temporary is named .NAME.<random>.tmp[suffix] beside its destination, so
two writers of the same file never collide (the last rename wins whole), and
what a killed writer leaves is recognisably ours (is_temporary).
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

TEMPORARY = ".tmp"  # marks a file or folder being written
PREVIOUS = ".previous"  # marks a folder being replaced, for the instant between two renames


def is_temporary(name: str, of: str) -> bool:
    """Whether `name` is a temporary or a replaced-folder leftover of a writer of the file or folder `of`."""
    return name.startswith(f".{of}.") and (TEMPORARY in name[len(of) + 2:] or name.endswith(PREVIOUS))


@contextlib.contextmanager
def replacing(path: Path, keep_suffix: str = ""):
    """Yield a unique temporary path beside `path`; on success it replaces `path`, on failure it is removed.

    keep_suffix: an ending the temporary must keep for its writer (Keras insists on .keras, .weights.h5).
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY + keep_suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; ours is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def replacing_folder(path: Path):
    """Yield a unique empty folder beside `path`; on success it replaces the folder `path` whole (swap_in)."""
    path = Path(path)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY, dir=path.parent))
    try:
        yield temporary
        swap_in(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def swap_in(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`, replacing what is there: two renames, so `path` is never half written."""
    new, path = Path(new), Path(path)
    Path(new).chmod(0o777 & ~_umask())  # mkdtemp makes folders private; ours are ordinary ones
    if not path.exists():
        os.replace(new, path)
        return
    previous = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PREVIOUS, dir=path.parent))
    os.replace(path, previous)  # onto the empty placeholder mkdtemp made
    os.replace(new, path)
    shutil.rmtree(previous, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically: readers see the old file or the new one, never half of one."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json(path: Path, content) -> None:
    """Strict JSON (a NaN or infinity is an error, not a token other readers reject), written atomically."""
    write_text(path, json.dumps(content, indent=2, allow_nan=False) + "\n")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
