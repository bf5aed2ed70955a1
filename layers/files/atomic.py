"""Atomic replacement of a file: the target holds either the old bytes or all of the new ones, never a mix."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time

try:
    import fcntl
except ImportError:            # Windows: no flock; stale temporaries are then left alone
    fcntl = None

TEMPORARY = re.compile(r"\..+\.[0-9a-f]{16}\.tmp\Z")
STALE_SECONDS = 1.0
"""A temporary younger than this is never removed (its writer may not hold its lock yet)."""


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):   # file systems that cannot sync folders
            raise
    finally:
        os.close(fd)


def temporary_name(path: str) -> str:
    """A fresh hidden name beside ``path``: ``.NAME.<16 hex digits>.tmp``."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{secrets.token_hex(8)}.tmp")


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when a live process holds one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_temporaries(folder, pattern: re.Pattern = TEMPORARY,
                             age: float = STALE_SECONDS) -> list[str]:
    """Delete the temporaries of dead writers in ``folder`` (``.NAME.<hex>.tmp``, a writer holds a lock on its
    own while it lives; ``age``: seconds since the last write, enough for a new writer to take its lock)
    -> their names; a live writer's temporary is never touched."""
    removed = []
    with contextlib.suppress(OSError):
        names = [name for name in os.listdir(folder) if pattern.match(name)] if fcntl else []
        for name in names:
            stale = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                fd = os.open(stale, os.O_RDONLY)
                try:
                    old = time.time() - os.fstat(fd).st_mtime >= age
                    if old and try_lock(fd):
                        os.unlink(stale)
                        removed.append(name)
                finally:
                    os.close(fd)
    return removed


def _named(error: OSError, path: str, tmp) -> OSError:
    """``error`` naming the user's ``path`` instead of no file or of the temporary (its type kept)."""
    if error.errno is not None and (error.filename is None or error.filename == tmp):
        error.filename = path   # (an OSError made from a message alone would print "[Errno None] None")
    return error


def write_atomically(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then put it in place of ``path`` in one step.

    The temporary file is flushed and fsynced, renamed over ``path`` with ``os.replace``, and the
    folder is fsynced. On any exception (KeyboardInterrupt, a full disk) the temporary file is
    removed and ``path`` keeps what it had; an OSError names ``path``. The writer locks its temporary until
    it is renamed, and first removes the stale temporaries of dead writers from the folder. A new file gets
    the usual permissions (0o666 less the umask); a replaced one keeps its mode.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    remove_stale_temporaries(folder)
    try:
        while True:
            tmp = temporary_name(path)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                tmp = None
        if fcntl:
            try_lock(fd)
        with os.fdopen(fd, "wb") as file:
            with contextlib.suppress(FileNotFoundError):
                if hasattr(os, "fchmod"):
                    os.fchmod(file.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(file)
            file.flush()
            os.fsync(file.fileno())
            if fcntl:                                # renamed while locked: never taken for stale
                os.replace(tmp, path)
                tmp = None
        if tmp is not None:
            os.replace(tmp, path)
            tmp = None
    except OSError as error:
        _named(error, path, tmp)
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):       # never hide the error that got us here
                os.unlink(tmp)
    _fsync_folder(folder)
