"""read_idx: an IDX file (gzipped or not) into a NumPy array of its declared dtype and dims, checked."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import string
import zlib

import numpy as np

from lamina.data.errors import ChecksumError, IDXError

# type code -> (name, big-endian dtype as stored in the file)
TYPES = {
    0x08: ("ubyte", np.dtype(">u1")),
    0x09: ("byte", np.dtype(">i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 22  # bytes read (and hashed) at a time
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _open(path):
    """The raw file: a str or os.PathLike is opened, anything else (an importlib Traversable) opens itself."""
    if isinstance(path, (str, os.PathLike)):
        return open(path, "rb")
    return path.open("rb")


def _check_sha256(expected: str | None) -> str | None:
    if expected is None:
        return None
    hex_digits = isinstance(expected, str) and all(c in string.hexdigits for c in expected)
    if not (hex_digits and len(expected) == 64):
        raise ValueError(f"read_idx: expected_sha256 must be 64 hex digits, got {expected!r}")
    return expected.lower()


class _Reader:
    """Reads the decompressed stream, counting bytes and feeding them to the hash; gzip faults become
    IDXError."""

    def __init__(self, stream, path, hasher):
        self.stream, self.path, self.hasher, self.offset = stream, path, hasher, 0

    def _gzip_error(self, error: Exception) -> IDXError:
        return IDXError(self.path, "gzip", f"the compressed stream is damaged or cut short after "
                                           f"{self.offset} decompressed bytes ({error})")

    def read(self, size: int) -> bytes:
        try:
            data = self.stream.read(size)
        except _GZIP_ERRORS as error:
            raise self._gzip_error(error) from error
        self.offset += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the stream goes; the number of bytes read."""
        filled = 0
        while filled < len(buffer):
            try:
                n = self.stream.readinto(buffer[filled:filled + CHUNK])
            except _GZIP_ERRORS as error:
                raise self._gzip_error(error) from error
            if not n:
                break
            if self.hasher is not None:
                self.hasher.update(buffer[filled:filled + n])
            filled += n
            self.offset += n
        return filled

    def rest(self) -> int:
        """Read to the end (so gzip checks its CRC); the number of bytes left over."""
        left = 0
        while chunk := self.read(CHUNK):
            left += len(chunk)
        return left


def _header(reader: _Reader, path):
    """(type name, stored dtype, dims) from the magic number and the dims that follow it."""
    magic = reader.read(4)
    if len(magic) < 4:
        raise IDXError(path, "magic", f"the file ends after {len(magic)} bytes; an IDX file starts "
                                      f"with a 4-byte magic number")
    if magic[:2] != b"\0\0":
        raise IDXError(path, "magic", f"expected the first two bytes to be 0x00 0x00, got "
                                      f"0x{magic[0]:02x} 0x{magic[1]:02x}; this is not an IDX file")
    if magic[2] not in TYPES:
        known = ", ".join(f"0x{code:02x} ({name})" for code, (name, _) in TYPES.items())
        raise IDXError(path, "type code", f"expected one of {known}, got 0x{magic[2]:02x}")
    name, dtype = TYPES[magic[2]]
    ndim = magic[3]
    if ndim == 0:
        raise IDXError(path, "ndim", "expected at least 1 dimension, got 0")
    raw = reader.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise IDXError(path, "dims", f"the header declares {ndim} dimensions ({4 * ndim} bytes), but the "
                                     f"file ends after {len(raw)} of those bytes")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4"))
    return name, dtype, dims


def read_idx(path, *, expected_sha256: str | None = None) -> np.ndarray:
    """An IDX file (gzipped or not, told by its first bytes) -> array of its dims, in the declared dtype
    (native byte order).

    Checks the magic number, type code, ndim, and that the dims account for every byte of data
    (no fewer, no more); with ``expected_sha256`` also the SHA-256 of the decompressed file,
    computed while reading. Raises ``IDXError`` (``ChecksumError`` for the hash) naming the file and field.
    """
    expected_sha256 = _check_sha256(expected_sha256)
    hasher = hashlib.sha256() if expected_sha256 is not None else None
    with _open(path) as raw, contextlib.ExitStack() as stack:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")) if gzipped else raw
        reader = _Reader(stream, path, hasher)
        name, dtype, dims = _header(reader, path)
        size = math.prod(dims) * dtype.itemsize
        shown = f"dims {dims} of {name} need {size} bytes of data"
        try:
            buffer = np.empty(size, dtype=np.uint8)
        except (MemoryError, ValueError) as error:
            raise IDXError(path, "dims", f"{shown}, more than this machine can hold") from error
        got = reader.readinto(memoryview(buffer))
        if got < size:
            raise IDXError(path, "data", f"{shown}, but the file ends after {got} of them (cut short)")
        extra = reader.rest()
        if extra:
            raise IDXError(path, "data", f"{shown}, but {extra} more bytes follow them (trailing bytes)")
    if hasher is not None and hasher.hexdigest() != expected_sha256:
        raise ChecksumError(path, expected_sha256, hasher.hexdigest())
    native = dtype.newbyteorder("=")
    if native != dtype:
        buffer.view(dtype).byteswap(inplace=True)
    return buffer.view(native).reshape(dims)
