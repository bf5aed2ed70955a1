"""Atomic replacement of a file: the target holds either the old bytes or all of the new ones, never a mix."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat


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


def write_atomically(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then put it in place of ``path`` in one step.

    The temporary file is flushed and fsynced, renamed over ``path`` with ``os.replace``, and the
    folder is fsynced. On any exception (KeyboardInterrupt, a full disk) the temporary file is
    removed and ``path`` keeps what it had. A new file gets the usual permissions (0o666 less the
    umask); a replaced one keeps its mode.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        while True:
            tmp = temporary_name(path)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                tmp = None
        with os.fdopen(fd, "wb") as file:
            with contextlib.suppress(FileNotFoundError):
                if hasattr(os, "fchmod"):
                    os.fchmod(file.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):       # never hide the error that got us here
                os.unlink(tmp)
    _fsync_folder(folder)
