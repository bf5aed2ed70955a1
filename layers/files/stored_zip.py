"""The container of a model file: a ZIP archive of uncompressed members in one fixed layout.

The writer lays members out back to back from offset 0, each a 30-byte local header, the name
and the data; then the central directory and the end record. Every header field that does not
carry a name, size, CRC or offset is a constant (no timestamps, no extra fields, no comment), so
equal members give equal bytes. The reader accepts that layout and nothing else: it checks every
header byte against the one the writer would have written and every offset against the running
layout, before it reads any member's data; a member's CRC is checked as it is read. It reads no
more than the sizes it has checked against the file's size, and never inflates anything.
No ZIP64: an archive stays below 4 GiB.

.npy members carry numpy's version 1.0 header, padded so the data starts at a multiple of 64.
"""

from __future__ import annotations

import struct
import zlib

import attrs
import numpy as np

from lamina.layers.errors import ModelFileError

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")
LOCAL_SIG, CENTRAL_SIG, END_SIG = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
VERSION = 20                                 # "version needed to extract": 2.0
MADE_BY = (3 << 8) | VERSION                 # Unix
DOS_DATE = (1 << 5) | 1                      # 1980-01-01, the earliest a ZIP can say; time 00:00
MODE = 0o100644 << 16                        # a regular file, rw-r--r--
MAX_ARCHIVE_BYTES = 0xFFFFFFFF - 1           # 32-bit offsets and sizes (0xFFFFFFFF means ZIP64)
MAX_MEMBERS = 0xFFFF - 1
NPY_MAGIC = b"\x93NUMPY"
METHODS = {8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard"}


@attrs.frozen
class Member:
    """One member as the central directory gives it: name, CRC-32, size, and offset of its local header."""

    name: str
    crc: int
    size: int
    offset: int

    @property
    def data_offset(self) -> int:
        return self.offset + LOCAL.size + len(self.name)


def quote(name: str) -> str:
    """A member name for a message: quoted, and cut short if it is long."""
    return repr(name) if len(name) <= 80 else repr(name[:80]) + "..."


def _local_header(name: bytes, crc: int, size: int) -> bytes:
    return LOCAL.pack(LOCAL_SIG, VERSION, 0, 0, 0, DOS_DATE, crc, size, size, len(name), 0) + name


def _central_header(name: bytes, crc: int, size: int, offset: int) -> bytes:
    return CENTRAL.pack(CENTRAL_SIG, MADE_BY, VERSION, 0, 0, 0, DOS_DATE, crc, size, size,
                        len(name), 0, 0, 0, 0, MODE, offset) + name


def npy_header(dtype: np.dtype, shape: tuple) -> bytes:
    """The .npy 1.0 header numpy writes for a C-order array of ``dtype`` and ``shape``."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (dtype.str, tuple(int(s) for s in shape))
    text += " " * (-(len(NPY_MAGIC) + 4 + len(text) + 1) % 64) + "\n"
    return NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


def archive_size(members) -> int:
    """The size in bytes of the archive ``write_archive`` makes of ``members`` [(name, [buffers])]."""
    total = END.size
    for name, chunks in members:
        n = len(name.encode("ascii"))
        total += LOCAL.size + CENTRAL.size + 2 * n + sum(memoryview(c).nbytes for c in chunks)
    return total


def write_archive(file, members) -> None:
    """Write ``members`` [(ascii name, [bytes-like chunks])] to ``file`` as a stored ZIP, in that order."""
    if archive_size(members) > MAX_ARCHIVE_BYTES or len(members) > MAX_MEMBERS:
        raise ValueError("write_archive: too large for a ZIP without ZIP64")
    directory, offset = [], 0
    for name, chunks in members:
        name = name.encode("ascii")
        crc, size = 0, 0
        for chunk in chunks:
            crc, size = zlib.crc32(chunk, crc), size + memoryview(chunk).nbytes
        file.write(_local_header(name, crc, size))
        for chunk in chunks:
            file.write(chunk)
        directory.append(_central_header(name, crc, size, offset))
        offset += LOCAL.size + len(name) + size
    central = b"".join(directory)
    file.write(central)
    file.write(END.pack(END_SIG, 0, 0, len(members), len(members), len(central), offset, 0))


def _foreign(head: bytes) -> str:
    """What a file that is not a ZIP archive looks like, from its first bytes."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "it is a Python pickle, which lamina never loads (unpickling can run any code)"
    if head.startswith(NPY_MAGIC):
        return "it is a single .npy array, not a model file"
    if head.startswith(END_SIG):
        return "it is an empty ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed, not a model file"
    at = head.find(LOCAL_SIG)
    if at > 0:
        return f"{at} bytes come before the ZIP archive"
    return f"it is not a ZIP archive (it starts with {head[:8]!r})"


def read_directory(file, path, first: str) -> list[Member]:
    """The members of the stored ZIP ``file`` (its first member must be ``first``), its layout checked.

    Any difference from the layout ``write_archive`` makes is a ModelFileError naming ``path``.
    """
    def refuse(problem: str):
        raise ModelFileError(path, problem)

    file.seek(0, 2)
    size = file.tell()
    if size == 0:
        refuse("the file is empty; expected a lamina model file (a ZIP archive)")
    file.seek(0)
    head = file.read(1 << 16)
    if not head.startswith(LOCAL_SIG):
        refuse(_foreign(head))
    if size < LOCAL.size + END.size:
        refuse(f"truncated: {size} bytes is too short for a model file")
    file.seek(max(0, size - END.size - (1 << 16)))
    tail = file.read()
    end = tail[-END.size:]
    if not end.startswith(END_SIG):
        at = tail.rfind(END_SIG)
        if at < 0 or at + END.size > len(tail):
            refuse("truncated or damaged: the ZIP end record is missing")
        after = len(tail) - at - END.size
        comment = END.unpack_from(tail, at)[-1]
        refuse(f"the archive has a {after}-byte comment; lamina writes none" if comment == after
               else f"{after} bytes follow the end of the ZIP archive")
    _, disk, cd_disk, n_disk, n, cd_size, cd_offset, comment = END.unpack(end)
    if disk or cd_disk or n_disk != n or comment or n == 0:
        refuse("the ZIP end record is not in the form lamina writes (damaged, or written by another tool)")
    if cd_offset + cd_size != size - END.size:
        refuse("the ZIP directory is not where the end record says "
               "(truncated, damaged, or bytes were inserted or removed)")
    file.seek(cd_offset)
    central = file.read(cd_size)
    entries, at = [], 0
    for _ in range(n):
        if at + CENTRAL.size > cd_size:
            refuse("the ZIP directory is truncated")
        fields = CENTRAL.unpack_from(central, at)
        if fields[0] != CENTRAL_SIG:
            refuse("the ZIP directory is damaged")
        method, crc, usize = fields[4], fields[7], fields[9]
        stop = at + CENTRAL.size + sum(fields[10:13])
        raw_name = central[at + CENTRAL.size:at + CENTRAL.size + fields[10]]
        if stop > cd_size:
            refuse("the ZIP directory is truncated")
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            refuse(f"a member name is not ASCII: {raw_name[:80]!r}")
        entries.append((name, method, Member(name, crc, usize, fields[16]), central[at:stop]))
        at = stop
    if at != cd_size:
        refuse("the ZIP directory is damaged: it is longer than its entries")
    seen = set()
    for name, *_ in entries:
        if name in seen:
            refuse(f"the member {quote(name)} appears twice")
        seen.add(name)
    if entries[0][0] != first:
        names = [name for name, *_ in entries]
        if first in names:
            refuse(f"{first!r} is not the first member")
        if all(name.endswith(".npy") for name in names):
            refuse(f"it is a plain NumPy .npz archive (np.savez) without lamina's manifest {first!r}, "
                   "not a lamina model file; numpy.load reads it")
        refuse(f"it is a ZIP archive without lamina's manifest {first!r} (its first member is "
               f"{quote(names[0])})")
    return _check_layout(entries, cd_offset, refuse)


def _check_layout(entries, cd_offset, refuse) -> list[Member]:
    for name, method, _, _ in entries:
        if method != 0:
            refuse(f"the member {quote(name)} is compressed ({METHODS.get(method, f'method {method}')}); "
                   "lamina stores members uncompressed and refuses compressed ones without inflating them")
    members, offset = [], 0
    for name, _, member, raw in entries:
        if raw != _central_header(name.encode("ascii"), member.crc, member.size, member.offset):
            refuse(f"the ZIP directory entry of {quote(name)} is not in the form lamina writes "
                   "(damaged, or written by another tool)")
        if member.offset != offset:
            refuse(f"the member {quote(name)} is not where the layout puts it "
                   "(damaged, or bytes were inserted or removed)")
        offset = member.data_offset + member.size
        members.append(member)
    if offset != cd_offset:
        refuse("the members' sizes do not add up to where the ZIP directory starts "
               "(damaged, or bytes were inserted or removed)")
    return members


def _read_exactly(file, path, buffer) -> None:
    view, done = memoryview(buffer), 0
    while done < len(view):
        n = file.readinto(view[done:])
        if not n:
            raise ModelFileError(path, "the file ended early (was it changed while being read?)")
        done += n


def _open_member(file, path, member: Member) -> None:
    """Check ``member``'s local header against its directory entry and seek to its data."""
    name = member.name.encode("ascii")
    file.seek(member.offset)
    if file.read(LOCAL.size + len(name)) != _local_header(name, member.crc, member.size):
        raise ModelFileError(path, f"the local header of {quote(member.name)} is damaged or differs from the "
                                   "ZIP directory")


def _check_crc(path, member: Member, crc: int) -> None:
    if crc != member.crc:
        raise ModelFileError(path, f"the member {quote(member.name)} is damaged (CRC-32 mismatch)")


def read_member(file, path, member: Member) -> bytes:
    """The data of ``member``, CRC-checked (the caller has checked its size)."""
    _open_member(file, path, member)
    data = bytearray(member.size)
    _read_exactly(file, path, data)
    _check_crc(path, member, zlib.crc32(data))
    return bytes(data)


def _describe_npy(head: bytes) -> str:
    if not head.startswith(NPY_MAGIC) or len(head) < 10:
        return f"no .npy header (it starts with {head[:8]!r})"
    version = tuple(head[6:8])
    length = struct.unpack("<H", head[8:10])[0] if len(head) >= 10 else None
    text = head[10:].decode("latin-1").strip()
    text = text if len(text) <= 100 else text[:100] + "..."
    return f".npy {version[0]}.{version[1]} header of {length} bytes: {text!r}"


def read_array(file, path, member: Member, dtype: np.dtype, shape: tuple) -> np.ndarray:
    """The read-only array of ``dtype`` and ``shape`` in the .npy ``member`` (the caller checked its size)."""
    header = npy_header(dtype, shape)
    _open_member(file, path, member)
    head = file.read(len(header))
    if head != header:
        raise ModelFileError(path, f"the member {quote(member.name)} has a {_describe_npy(head)}; the "
                                   f"manifest says {dtype.name} {tuple(shape)}, whose header differs")
    data = bytearray(member.size - len(header))
    _read_exactly(file, path, data)
    _check_crc(path, member, zlib.crc32(data, zlib.crc32(header)))
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    array.flags.writeable = False
    return array
