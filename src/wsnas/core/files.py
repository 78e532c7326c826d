"""The files wsnas writes for the user: whole or not at all, and never over a results store.

:func:`atomic_write` writes a file through a temporary file in the same folder, synced to disk
and renamed over the target when the block ends; if the block raises, the temporary file is
removed and the target is left as it was. A target that exists and is not a regular file (a
device such as ``/dev/null`` or ``/dev/full``, a named pipe) is written directly, since it
cannot be replaced by renaming. Symbolic links are followed: the file they point at is
replaced, not the link.

:func:`check_output` refuses, before any work, an output path given on the command line whose
folder does not exist, that is a folder, or that would replace a results store (the SQLite file,
its ``-wal``, ``-shm`` or ``-journal`` file, or a link to one of them); :func:`atomic_write`
repeats the store check for every file it writes.

Errors of a full disk (``ENOSPC``, ``EDQUOT``, ``EFBIG``) propagate as :class:`OSError` with
the target's name as ``filename``; the command line reports them in one line.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from wsnas.core.errors import WsnasError

#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: The files SQLite keeps beside a database.
SIDE_FILES = ("-wal", "-shm", "-journal")
#: errno values of a full disk or quota.
FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

PathLike = str | os.PathLike


def is_sqlite_database(path: PathLike) -> bool:
    """Whether ``path`` is a readable regular file that starts with SQLite's header."""
    if not os.path.isfile(path):  # never open a pipe or a device to find out
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_store(path: PathLike, stores: Iterable[PathLike] = ()) -> None:
    """Refuse (:class:`WsnasError`) to write ``path`` if that would replace a results store.

    That is one of ``stores`` or a file SQLite keeps beside it (``-wal``, ``-shm``,
    ``-journal``), also through a symbolic link, or any existing SQLite database or such a file
    beside one.
    """
    target = Path(path).expanduser()
    for store in stores:
        store = Path(store).expanduser()
        for suffix in ("", *SIDE_FILES):
            other = store.with_name(store.name + suffix)
            if _same_file(target, other):
                what = "the results store" if not suffix else f"the {suffix[1:]} file of the results store"
                raise WsnasError(f"refusing to write {str(target)!r}: it is {what} "
                                 f"{str(store)!r}; give another output path")
    if is_sqlite_database(target):
        raise WsnasError(f"refusing to overwrite {str(target)!r}: it is an SQLite database (a "
                         "results store?); give another output path")
    for suffix in SIDE_FILES:
        if target.name.endswith(suffix) and len(target.name) > len(suffix):
            base = target.with_name(target.name[:-len(suffix)])
            if is_sqlite_database(base):
                raise WsnasError(f"refusing to write {str(target)!r}: it is the {suffix[1:]} file "
                                 f"of the SQLite database {str(base)!r}; give another output path")


def check_output(path: PathLike, *, stores: Iterable[PathLike] = ()) -> Path:
    """Check an output path given by the user before any work; returns it (``~`` expanded).

    Refuses (:class:`WsnasError`, naming the path) a folder, a path whose folder does not exist
    or is not a folder (as ``cp`` does; nothing is created), and a results store
    (:func:`refuse_store`).
    """
    target = Path(path).expanduser()
    name = str(target)
    if target.is_dir():
        raise WsnasError(f"output {name!r} is a directory; give a file name such as "
                         f"{str(target / 'out.csv')!r}")
    parent = target.parent
    if not parent.exists():
        raise WsnasError(f"cannot write {name!r}: the directory {str(parent)!r} does not exist; "
                         "create it first")
    if not parent.is_dir():
        raise WsnasError(f"cannot write {name!r}: {str(parent)!r} is not a directory")
    refuse_store(target, stores)
    return target


def _name(exc: OSError, target: Path) -> None:
    """Give ``exc`` ``target`` as its file name if it has none (a failed write names no file)."""
    if exc.filename is None:
        exc.filename = str(target)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_write(path: PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                 newline: str | None = None, buffering: int = -1,
                 stores: Iterable[PathLike] = ()) -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``mode`` ``"w"`` or ``"wb"``); it appears whole or not at all.

    The block writes to a temporary file in the target's folder; when it ends the file is
    flushed, synced and renamed over the target. If the block (or the sync, or the rename)
    raises, the temporary file is removed, the target is unchanged and the exception goes on;
    an :class:`OSError` of a full disk, or of the sync or rename, names the target. The
    target's folder must exist; a file that cannot be created there (no permission, say) is a
    :class:`WsnasError`. ``stores`` are results stores the file must not replace
    (:func:`refuse_store`). ``encoding`` and ``newline`` apply to text mode; ``buffering=0``
    (binary only) hands every write straight to the system, so that a writer that checks its
    position (``torch.save``) sees a failed write as the error it is.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes a new file: mode 'w' or 'wb', not {mode!r}")
    target = Path(path).expanduser()
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    refuse_store(target, stores)
    if target.is_dir():
        raise WsnasError(f"output {str(target)!r} is a directory; give a file name")
    text = {} if "b" in mode else {"encoding": encoding, "newline": newline}
    device = target.exists() and not target.is_file()  # a device or a pipe: written in place
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        # mode 0o666: the umask decides the permissions, as for a plain open()
        fd = os.open(target if device else tmp, os.O_WRONLY | (0 if device else os.O_CREAT | os.O_EXCL), 0o666)
    except OSError as exc:
        if exc.errno in FULL_DISK:
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        raise WsnasError(f"cannot write {str(target)!r}: {exc.strerror}") from None
    if device:
        try:
            with open(fd, mode, buffering=buffering, **text) as handle:
                yield handle
        except OSError as exc:
            if exc.errno in FULL_DISK:
                _name(exc, target)
            raise
        return
    try:
        with open(fd, mode, buffering=buffering, **text) as handle:
            try:
                yield handle
            except OSError as exc:
                if exc.errno in FULL_DISK:
                    _name(exc, target)
                raise
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                _name(exc, target)
                raise
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(target)) from None
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _sync_folder(target.parent)


__all__ = ["FULL_DISK", "SIDE_FILES", "SQLITE_HEADER", "atomic_write", "check_output",
           "is_sqlite_database", "refuse_store"]
