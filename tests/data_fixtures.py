"""Helpers for the lamina.data tests: write IDX files, fake MNIST-like sets, a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np

TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
              np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic (0, 0, type code, ndim), big-endian int32 dims, big-endian
    data."""
    array = np.asarray(array)
    header = bytes([0, 0, TYPE_CODES[array.dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write(path: Path, content: bytes, *, gz: bool = False) -> Path:
    """Write ``content`` (gzipped if ``gz``) to ``path``; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content, mtime=0) if gz else content)
    return path


def fake_set(seed: int = 0, n_train: int = 12, n_test: int = 5, size: int = 28):
    """A small MNIST-like set: {file name: decompressed IDX bytes} and the arrays in it."""
    rng = np.random.default_rng(seed)
    arrays = {
        FILES[0]: rng.integers(0, 256, size=(n_train, size, size), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, size=n_train).astype(np.uint8),
        FILES[2]: rng.integers(0, 256, size=(n_test, size, size), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, size=n_test).astype(np.uint8),
    }
    arrays[FILES[0]][0, 0, 0], arrays[FILES[0]][0, 0, 1] = 0, 255  # both ends of the range
    return {name: idx_bytes(a) for name, a in arrays.items()}, arrays


def write_set(folder: Path, contents: dict, *, gz: bool = True) -> Path:
    """Write a set's files into ``folder`` (as NAME.gz, or as NAME without .gz if not ``gz``)."""
    for name, content in contents.items():
        write(folder / (name if gz else name.removesuffix(".gz")), content, gz=gz)
    return folder


def table(contents: dict) -> dict:
    """{file name: SHA-256 of the decompressed content}."""
    return {name: sha256(content) for name, content in contents.items()}


class Server:
    """An HTTP server on 127.0.0.1 (a free port) serving ``files`` ({url path: bytes}) from a thread.

    ``cut`` ({url path: n}) sends only the first n bytes of a file while announcing its full length.
    ``requests`` lists the paths asked for.
    """

    def __init__(self, files: dict, cut: dict | None = None):
        self.files, self.cut, self.requests = dict(files), dict(cut or {}), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append(name)
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body = server.files[name]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:server.cut.get(name, len(body))])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
