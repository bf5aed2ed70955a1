"""fashion_mnist: Zalando's Fashion-MNIST, found on disk or downloaded once into the cache, as float32
arrays."""

from __future__ import annotations

import os
from pathlib import Path

from lamina.data import cache, loader, sources

URL_VARIABLE = "LAMINA_FASHION_MNIST_URL"


def _mirrors(base_url, source) -> tuple:
    """The base URLs to try: ``base_url`` (one or several), else $LAMINA_FASHION_MNIST_URL (space-separated),
    else the published ones."""
    if base_url is None:
        base_url = os.environ.get(URL_VARIABLE, "").split() or source.mirrors
    urls = (base_url,) if isinstance(base_url, str) else tuple(base_url)
    if not urls or not all(isinstance(url, str) and url for url in urls):
        raise ValueError(f"fashion_mnist: base_url must be a URL or a sequence of URLs, got {base_url!r}")
    return urls


def fashion_mnist(path=None, *, flatten: bool = True, download: bool = True, base_url=None,
                  verify: bool = True, progress: bool = True):
    """Fashion-MNIST -> ((x_train, y_train), (x_test, y_test)): float32 images in [0, 1], (n, 784) or
    (n, 28, 28) with ``flatten=False``; int64 labels 0..9 (n,). n is 60000 for train, 10000 for test.

    Reads ``path`` if given (the four IDX files, directly or in a subfolder ``fashion-mnist/``).
    Else looks in $LAMINA_DATA/fashion-mnist, the user cache ($XDG_CACHE_HOME/lamina/fashion-mnist,
    else ~/.cache/lamina/fashion-mnist) and /usr/share/datasets/fashion-mnist (Debian's
    dataset-fashion-mnist); else, with ``download``, fetches the missing files from ``base_url``
    (default: $LAMINA_FASHION_MNIST_URL, else the project's published addresses) into
    $LAMINA_DATA/fashion-mnist or the user cache, each verified before it counts. Files are checked
    against the official SHA-256 as they are read (``verify=False``: not, for a copy that differs on
    purpose). Raises DatasetNotFoundError saying where it looked and how to fix it.
    """
    source = sources.FASHION_MNIST
    user = cache.user_folder()
    places = [
        ("$LAMINA_DATA/fashion-mnist", user / source.name if user is not None else None),
        ("the user cache", cache.cache_folder() / source.name),
        (f"Debian's {source.debian_package}", Path(source.system_folder) if source.system_folder else None),
    ]
    mirrors = _mirrors(base_url, source) if download else ()
    return loader.load(source, places, path=path, verify=verify, flatten=flatten,
                       download_to=cache.data_home() / source.name if download else None,
                       mirrors=mirrors, progress=progress,
                       note="" if download else "(downloading is off: download=False)")
