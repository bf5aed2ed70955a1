"""Text data: the Tiny Shakespeare corpus (shipped) and next-token windows over ids."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lamina.data.errors import ChecksumError
from lamina.layers.settings import positive_int

TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def tiny_shakespeare() -> str:
    """The Tiny Shakespeare corpus (1,115,394 characters), from the gzip copy shipped with lamina, checked."""
    file = importlib.resources.files("lamina.data") / "tinyshakespeare" / "input.txt.gz"
    with file.open("rb") as compressed:
        raw = gzip.decompress(compressed.read())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != TINY_SHAKESPEARE_SHA256:
        raise ChecksumError(str(file), TINY_SHAKESPEARE_SHA256, digest,
                            "the shipped copy of Tiny Shakespeare is damaged; reinstall lamina")
    return raw.decode("utf-8")


def windows(ids, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) with x[i] = ids[i:i+length] and y[i] = ids[i+1:i+length+1]: read-only views (n - length, length)
    of the 1-D ``ids``, no copy whatever its size."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"windows: ids must be 1-D (a corpus as one sequence), got shape {ids.shape}")
    positive_int("windows", "length", length)
    count = len(ids) - length
    if count < 1:
        raise ValueError(f"windows: {len(ids)} ids make no window of {length} with its next-token target "
                         f"(they need at least {length + 1})")
    step = ids.strides[0]
    x = as_strided(ids, (count, length), (step, step), writeable=False)
    y = as_strided(ids[1:], (count, length), (step, step), writeable=False)
    return x, y
