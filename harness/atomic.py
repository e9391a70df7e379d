"""Every file the project writes: whole or not at all, durable once written, and never over a user's file.

    with atomic.replacing(path, elsewhere="--show-dir") as temporary:   # write temporary; on success it is path
        temporary.write_bytes(data)
    atomic.write_bytes(path, data)                      # the same for bytes in memory
    atomic.write_json(path, {"accuracy": 0.99})         # strict JSON
    with atomic.replacing_folder(folder) as temporary:  # an empty folder that replaces `folder` whole
        ...
    atomic.make_folder(folder, elsewhere="--out")       # a folder of the project's own (see "Records" below)

Whole: each file is written to a temporary beside it (.NAME.<random>.tmp[suffix],
unique, so two writers never collide and what a killed one leaves is
recognisably ours: is_leftover) and renamed over the destination.

Durable: the temporary's bytes are flushed to the disk (fsync) before the rename,
and the folder after it, as SQLite, git and PostgreSQL do: after a power cut
the destination holds the old file or the new one, never one of zero length.
A full disk is one OSError that names the folder, never a crash in a library's
own file code: callers that serialise (Keras models) do so in memory first.

Records: the project's one answer to "did we write this?". Every folder the
project writes into holds `.digits-written.json`: for each file or folder the
project put there, the SHA-256 of what it wrote (a folder's digest covers every
path and byte under it). An entry is the project's own while the record names
it and its bytes still match: a user's file that carries the same name, or one
of ours that the user has edited since, is not, and is never replaced (one
line naming it and `elsewhere`, the flag that chooses another place). A folder
holding a record of its own (a run, its figures/, a training state) is ours when
every entry in it is. A record is updated just after its file is in place: a
crash between the two leaves a file of ours that nothing proves, which is then
refused, never lost.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from harness.errors import UserError

RECORD = ".digits-written.json"
TEMPORARY = ".tmp"  # marks a file or folder being written
PREVIOUS = ".previous"  # marks a folder being replaced, for the instant between two renames
_LEFTOVER = re.compile(r"\..+\.[a-z0-9_]{8}(\.tmp.*|\.previous)", re.DOTALL)  # tempfile's 8 random characters
_CHUNK = 1 << 20  # bytes read at a time while hashing


def is_leftover(name: str) -> bool:
    """Whether `name` is a temporary (or a replaced folder) that one of this module's writers left."""
    return _LEFTOVER.fullmatch(name) is not None


def is_temporary(name: str, of: str) -> bool:
    """Whether `name` is a leftover of a writer of the file or folder `of` in the same folder."""
    return is_leftover(name) and name.startswith(f".{of}.")


# ------------------------------------------------------------------ writing


@contextlib.contextmanager
def replacing(path: Path, keep_suffix: str = "", elsewhere: str = "another place"):
    """Yield a unique temporary path beside `path`; on success it replaces `path` durably, on failure it is removed.

    A UserError first, nothing written, if `path` exists and is not provably the project's.
    keep_suffix: an ending the temporary must keep for its writer (Keras insists on .keras).
    elsewhere: how the user chooses another place, for that error ("--show-dir").
    """
    path = Path(path)
    check_replaceable(path, elsewhere)
    with _durably(path, keep_suffix, before_rename=_expect) as temporary:
        yield temporary
    record(path)


def _expect(temporary: Path, path: Path) -> None:
    """Name the temporary's digest in the record beside the digests `path` is recorded with now, before the
    rename: a kill or power cut between the rename and record() leaves a file the record still proves ours,
    whether old or new (seen: a run killed there could not be resumed). record() then keeps the new one alone."""
    with _locked(path.parent):
        entries = read_record(path.parent) or {}
        entries[path.name] = [*recorded_digests(entries.get(path.name)), digest(temporary)]
        _write_record(path.parent, entries)


@contextlib.contextmanager
def _durably(path: Path, keep_suffix: str = "", before_rename=None):
    """Yield a unique temporary beside `path`; on success it is fsynced, `before_rename(temporary, path)` called,
    then it is renamed to `path` and the folder fsynced; on failure it is removed. No check and no record:
    replacing adds those."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY + keep_suffix, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; ours is an ordinary file
        _fsync(temporary)
        if before_rename is not None:
            before_rename(temporary, path)
        os.replace(temporary, path)
        _fsync(path.parent)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise _explained(error, path.parent) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, elsewhere: str = "another place") -> None:
    """Write `data` to `path` whole and durably, only over a file of the project's own (see replacing)."""
    with replacing(path, elsewhere=elsewhere) as temporary:
        _write_all(temporary, data, Path(path).parent)


def _write_all(temporary: Path, data: bytes, folder: Path) -> None:
    """`data` into the temporary; a full disk said with the megabytes that were to be written."""
    try:
        temporary.write_bytes(data)
    except OSError as error:
        raise _explained(error, folder, len(data)) from error


def write_text(path: Path, text: str, elsewhere: str = "another place") -> None:
    write_bytes(path, text.encode("utf-8"), elsewhere)


def write_json(path: Path, content, elsewhere: str = "another place") -> None:
    """Strict JSON (a NaN or infinity is an error, not a token other readers reject)."""
    write_text(path, json.dumps(content, indent=2, allow_nan=False) + "\n", elsewhere)


@contextlib.contextmanager
def replacing_folder(path: Path, elsewhere: str = "another place"):
    """Yield a unique empty folder beside `path`; on success it replaces the folder `path` whole (swap_in)
    and is recorded as the project's."""
    path = Path(path)
    check_replaceable(path, elsewhere)
    temporary = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMPORARY, dir=path.parent))
    try:
        yield temporary
        swap_in(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    record(path)


def swap_in(new: Path, path: Path) -> None:
    """Put the folder `new` at `path`, replacing what is there, durably.

    Every file and folder under `new` reaches the disk first; then two renames, so
    `path` is never half written. Should the second rename fail, the old folder is
    put back; after a power cut between the two, runs.remove_stale_staging puts it back.
    """
    new, path = Path(new), Path(path)
    new.chmod(0o777 & ~_umask())  # mkdtemp makes folders private; ours are ordinary ones
    try:
        _fsync_tree(new)
        if not path.exists():
            os.replace(new, path)
            _fsync(path.parent)
            return
        previous = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=PREVIOUS, dir=path.parent))
        try:
            os.replace(path, previous)  # onto the empty placeholder mkdtemp made
            os.replace(new, path)
        except BaseException:
            if not path.exists():  # the old folder is aside and the new one not in: the old one goes back
                os.rename(previous, path)
            else:  # the old one is still in place (then `previous` is the empty placeholder), or the new one is
                shutil.rmtree(previous, ignore_errors=True)
            raise
        _fsync(path.parent)
    except OSError as error:
        raise _explained(error, path.parent) from error
    shutil.rmtree(previous, ignore_errors=True)


def make_durable(path: Path) -> None:
    """fsync a file another library wrote in place (a download), and its folder: it survives a power cut."""
    _fsync(path)
    _fsync(Path(path).parent)


def _fsync(path: Path) -> None:
    """Flush a file's or a folder's content (a folder's: its names) to the disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, the deepest first, `folder` last."""
    for parent, _, files in os.walk(folder, topdown=False):
        for name in files:
            _fsync(Path(parent) / name)
        _fsync(Path(parent))


class DiskFull(OSError):
    """No space left for a write; the message names the folder and the space (scripts print it as one line)."""

    def __str__(self):
        return self.strerror


def _explained(error: OSError, folder: Path, needed: int | None = None) -> OSError:
    """A full disk as a DiskFull that names the folder and the space; any other error as it is."""
    if error.errno != errno.ENOSPC or isinstance(error, DiskFull):
        return error
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    wanted = f"{needed / 1e6:.1f} MB to write, " if needed is not None else ""
    return DiskFull(errno.ENOSPC, f"the disk holding {folder} is full ({wanted}{free}); free some space and "
                                 f"run again (what was there before is unchanged)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ records: what the project wrote


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's tree (each path under it with its file's digest), in hex.

    A symbolic link has none (ValueError): the project never writes one, so one is never ours.
    """
    path = Path(path)
    if path.is_symlink():
        raise ValueError(f"{path} is a symbolic link")
    if path.is_dir():
        tree = hashlib.sha256()
        for entry in sorted(path.rglob("*")):
            if entry.is_symlink():
                raise ValueError(f"{entry} is a symbolic link")
            if entry.is_file():
                tree.update(f"{entry.relative_to(path).as_posix()}\0{digest(entry)}\n".encode())
        return tree.hexdigest()
    hashed = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            hashed.update(chunk)
    return hashed.hexdigest()


def read_record(folder: Path) -> dict[str, str | list[str]] | None:
    """A folder's record (name -> digest, or the digests either of which it may have while being replaced), or
    None where it has none that is readable."""
    try:
        entries = json.loads((Path(folder) / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(entries, dict) or not all(
            isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value))
            for value in entries.values()):
        return None
    return entries


def recorded_digests(entry: str | list[str] | None) -> list[str]:
    """The digests a record's entry names: one, several while its file is being replaced (_expect), or none."""
    return [] if entry is None else [entry] if isinstance(entry, str) else list(entry)


def is_ours(path: Path) -> bool:
    """Whether the file or folder at `path` is provably the project's: recorded with the digest it still has,
    or a folder with a record of its own whose every entry is ours."""
    path = Path(path)
    if path.is_symlink() or not path.exists():
        return False
    recorded = (read_record(path.parent) or {}).get(path.name)
    if recorded is not None:
        try:
            if digest(path) in recorded_digests(recorded):
                return True
        except (OSError, ValueError):
            return False
    return path.is_dir() and read_record(path) is not None and not foreign_entries(path)


def foreign_entries(folder: Path) -> list[str]:
    """The names in `folder` the project cannot prove it wrote, sorted (its record and leftovers excepted)."""
    return sorted(entry.name for entry in Path(folder).iterdir()
                  if entry.name != RECORD and not is_leftover(entry.name) and not is_ours(entry))


def recorded_names_only(folder: Path) -> bool:
    """Whether every entry of `folder` is named in its record (folders: or holds only such entries).

    Looser than is_ours: a file of ours cut short by a crash, or edited, still counts. Only for the project's
    own hidden scratch folders (a run's staging folder), which no user writes into.
    """
    folder = Path(folder)
    entries = read_record(folder)
    if entries is None:
        return False
    for entry in folder.iterdir():
        if entry.is_symlink():
            return False
        if entry.name == RECORD or is_leftover(entry.name) or entry.name in entries:
            continue
        if not (entry.is_dir() and recorded_names_only(entry)):
            return False
    return True


def check_replaceable(path: Path, elsewhere: str) -> None:
    """A UserError unless `path` is absent or provably the project's; nothing is touched."""
    path = Path(path)
    if os.path.lexists(path) and not is_ours(path):
        raise UserError(f"refusing to replace {path}: this project did not write it (or it was changed since); "
                        f"move it away or choose {elsewhere}.")


def make_folder(folder: Path, elsewhere: str) -> Path:
    """`folder`, created (with its parents) as the project's own, holding an empty record; or, if it exists,
    checked to be the project's own already. A UserError, nothing created, for a file, a link, or a folder
    holding files the project did not write."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(f"refusing to write into {folder}: it is not a folder this project made; choose {elsewhere}.")
    if folder.is_dir() and read_record(folder) is None and any(folder.iterdir()):
        raise UserError(f"refusing to write into {folder}: it holds files this project did not write; "
                        f"choose {elsewhere}.")
    folder.mkdir(parents=True, exist_ok=True)
    if read_record(folder) is None:
        _write_record(folder, {})
    return folder


def record(path: Path) -> None:
    """Add `path` (a file or folder just put in place) to its folder's record, with its digest now."""
    path = Path(path)
    with _locked(path.parent):
        entries = read_record(path.parent) or {}
        entries[path.name] = digest(path)
        _write_record(path.parent, entries)


def forget(path: Path) -> None:
    """Drop `path` from its folder's record (once it is removed)."""
    path = Path(path)
    with _locked(path.parent):
        entries = read_record(path.parent)
        if entries is not None and entries.pop(path.name, None) is not None:
            _write_record(path.parent, entries)


@contextlib.contextmanager
def _locked(folder: Path):
    """An advisory lock on the folder itself while its record is read and rewritten, so that two processes
    writing into one folder (visualize.py and evaluate.py on one run) never drop each other's entry."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _write_record(folder: Path, entries: dict[str, str]) -> None:
    """The record, itself written whole and durably (but not recorded: it is the record)."""
    folder = Path(folder)
    data = (json.dumps(dict(sorted(entries.items())), indent=1) + "\n").encode("utf-8")
    with _durably(folder / RECORD) as temporary:
        _write_all(temporary, data, folder)
