"""download: one file over HTTP(S) into a folder, checked before it counts, moved into place atomically."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path

from tqdm import tqdm

from lamina.data.errors import IDXError
from lamina.data.idx import read_idx

TIMEOUT = 60.0  # seconds a stalled connection may stay silent
CHUNK = 1 << 16


def _copy(response, out, name: str, progress: bool) -> None:
    """Stream an HTTP response into the open file ``out`` with a progress bar; ConnectionError if it ends
    short."""
    length = response.headers.get("Content-Length", "")
    total = int(length) if length.isdigit() else None
    got = 0
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
              disable=not progress) as bar:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            got += len(chunk)
            bar.update(len(chunk))
    if total is not None and got != total:
        raise ConnectionError(f"the server sent {got} of the {total} bytes it announced (cut short)")


def download(url: str, destination, sha256: str, *, progress: bool = True, timeout: float = TIMEOUT) -> Path:
    """Fetch ``url`` to ``destination`` (an IDX file), verified by the SHA-256 of its decompressed content.

    The bytes go to a temporary file beside ``destination``; only a complete file that reads as IDX
    with the expected hash is moved into place (``os.replace``). Anything else is deleted and the
    error raised: OSError for the network, IDXError / ChecksumError (naming the URL) for the content.
    """
    destination = Path(destination)
    request = urllib.request.Request(url, headers={"User-Agent": "lamina"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        part = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(response, out, destination.name, progress)
                out.flush()
                os.fsync(out.fileno())
            try:
                read_idx(part, expected_sha256=sha256)
            except IDXError as error:
                error.path = url
                raise
            os.replace(part, destination)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    return destination
