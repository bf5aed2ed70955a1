"""mnist: the MNIST digits, from the copy shipped with lamina (or a user's copy), as float32 arrays."""

from __future__ import annotations

import importlib.resources

from lamina.data import cache, loader, sources


def package_folder():
    """The folder of the MNIST files shipped as package data of lamina.data (editable and normal installs)."""
    return importlib.resources.files("lamina.data") / "mnist-idx"


def mnist(path=None, *, flatten: bool = True, verify: bool = True):
    """MNIST -> ((x_train, y_train), (x_test, y_test)): float32 images in [0, 1], (n, 784) or (n, 28, 28)
    with ``flatten=False``; int64 labels 0..9 (n,). n is 60000 for train, 10000 for test.

    Reads ``path`` if given (a folder holding the four IDX files, gzipped or not, directly or in a
    subfolder ``mnist/``), else $LAMINA_DATA (the same way), else the copy shipped with lamina.
    Every file is checked against the official SHA-256 as it is read, a user's copy too;
    ``verify=False`` skips that check for a copy that differs on purpose (the IDX structure and
    the labels are always checked).
    """
    user = cache.user_folder()
    places = [
        ("$LAMINA_DATA", user),
        ("$LAMINA_DATA/mnist", user / "mnist" if user is not None else None),
        ("lamina's package data", package_folder()),
    ]
    return loader.load(sources.MNIST, places, path=path, verify=verify, flatten=flatten)
