"""The shared loader of MNIST-like sets: find the four IDX files, download missing ones, read them into
arrays."""

from __future__ import annotations

import http.client
from pathlib import Path

import numpy as np

from lamina.data.batching import Rescale
from lamina.data.download import download
from lamina.data.errors import ChecksumError, DatasetNotFoundError, IDXError
from lamina.data.idx import read_idx

CHECKSUM_HINT = ("delete or replace the file (a downloaded file is fetched again), or pass verify=False "
                 "to read a copy that differs from the official one on purpose")


def find_file(folder, name: str):
    """``folder``/NAME.gz or ``folder``/NAME (without .gz), whichever is a file; None if neither is."""
    for candidate in (name, name.removesuffix(".gz")):
        file = folder.joinpath(candidate)
        if file.is_file():
            return file
    return None


def find_files(folder, source) -> tuple | None:
    """The paths of the four files of ``source`` in ``folder``, or None unless all four are there."""
    if folder is None:
        return None
    files = tuple(find_file(folder, name) for name in source.files)
    return None if any(file is None for file in files) else files


def _pair(images_path, images: np.ndarray, labels_path, labels: np.ndarray, n_classes: int, flatten: bool):
    """Checked ubyte images (n, rows, cols) and labels (n,) -> float32 images in [0, 1] and int64 labels."""
    if images.dtype != np.uint8:
        raise IDXError(images_path, "type code", f"expected ubyte images, got {images.dtype}")
    if images.ndim != 3:
        raise IDXError(images_path, "dims", f"expected images of dims (n, rows, cols), got {images.shape}")
    if labels.dtype != np.uint8:
        raise IDXError(labels_path, "type code", f"expected ubyte labels, got {labels.dtype}")
    if labels.ndim != 1:
        raise IDXError(labels_path, "dims", f"expected labels of dims (n,), got {labels.shape}")
    if len(labels) != len(images):
        raise IDXError(labels_path, "dims", f"holds {len(labels)} labels, but {images_path} holds "
                                            f"{len(images)} images; expected one label per image")
    if len(labels) and labels.max() >= n_classes:
        i = int(np.argmax(labels >= n_classes))
        raise IDXError(labels_path, "data", f"labels must be in 0..{n_classes - 1}, but labels[{i}] is "
                                            f"{labels[i]}")
    if flatten:
        images = images.reshape(len(images), -1)
    return Rescale(np.float32, 1 / 255)(images), labels.astype(np.int64)


def read_set(files, source, *, verify: bool, flatten: bool):
    """The four files -> ((x_train, y_train), (x_test, y_test)), each checked against the official SHA-256 if
    ``verify``."""
    arrays = []
    for name, file in zip(source.files, files):
        try:
            arrays.append(read_idx(file, expected_sha256=source.checksum(name) if verify else None))
        except ChecksumError as error:
            raise ChecksumError(error.path, error.expected, error.actual,
                                f"not the official {source.title} file {name}; {CHECKSUM_HINT}") from None
    train = _pair(files[0], arrays[0], files[1], arrays[1], source.n_classes, flatten)
    test = _pair(files[2], arrays[2], files[3], arrays[3], source.n_classes, flatten)
    return train, test


def _reason(error: BaseException) -> str:
    """What went wrong with one download, for the not-found message (the URL is shown beside it)."""
    if isinstance(error, IDXError):
        return f"{error.field}: {error.problem}"
    return str(error) or type(error).__name__


def download_missing(source, folder: Path, mirrors, *, progress: bool) -> list:
    """Download the files of ``source`` missing from ``folder``, each from the first mirror that gives a
    verified copy.

    Returns [] when all four are there, else the (url, reason) of every failed try for the first
    file that no mirror could give (``mirrors`` must not be empty).
    """
    for name in source.files:
        if find_file(folder, name) is not None:
            continue
        failed = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                download(url, folder / name, source.checksum(name), progress=progress)
                break
            except (OSError, ValueError, http.client.HTTPException) as error:
                failed.append((url, _reason(error)))
        else:
            return failed
    return []


def not_found(source, looked, *, attempts=(), download_to=None, note: str = "",
              path_given: bool = False) -> DatasetNotFoundError:
    """The error for a set found nowhere: where lamina looked, what the download gave, and the ways to fix
    it."""
    names = ", ".join(source.files)
    lines = [f"{source.title} not found. Looked for {names} (each also taken without .gz) in:"]
    for label, folder in looked:
        lines.append(f"  {label}: {folder if folder is not None else '(not set)'}")
    if note:
        lines.append(note)
    if attempts:
        lines.append(f"Downloading into {download_to} failed:")
        lines.extend(f"  {url}: {reason}" for url, reason in attempts)
    fixes = []
    if source.debian_package:
        fixes.append(f"install Debian's package {source.debian_package} (apt-get install "
                     f"{source.debian_package}), which puts the files in {source.system_folder}")
    fixes.append(f"put the four files into $LAMINA_DATA/{source.name}, or into any folder and pass "
                 "path=FOLDER")
    if source.shipped:
        fixes.append("leave out path= to read the copy shipped with lamina" if path_given else
                     "reinstall lamina (pip install -e . in its clone): the copy shipped with it is missing")
    lines.append("To fix it, do one of:")
    lines.extend(f"  - {fix}" for fix in fixes)
    return DatasetNotFoundError("\n".join(lines), looked=[folder for _, folder in looked], attempts=attempts)


def load(source, places, *, path=None, verify: bool = True, flatten: bool = True,
         download_to: Path | None = None, mirrors=(), progress: bool = True, note: str = ""):
    """``source`` from ``path`` if given (the folder or its subfolder ``source.name``), else from the
    first of ``places`` ((label, folder) pairs) holding all four files, else downloaded into
    ``download_to`` (None: no download). ``note`` goes into the not-found message."""
    path_given = path is not None
    if path_given:
        folder = Path(path).expanduser()
        places = [("path=", folder), ("path=, subfolder", folder / source.name)]
        download_to, note = None, "(with path= given, lamina looks only there)"
    for _, folder in places:
        files = find_files(folder, source)
        if files is not None:
            return read_set(files, source, verify=verify, flatten=flatten)
    if download_to is None or not mirrors:
        raise not_found(source, places, note=note, path_given=path_given)
    attempts = download_missing(source, download_to, mirrors, progress=progress)
    files = find_files(download_to, source)
    if attempts or files is None:
        raise not_found(source, places, attempts=attempts, download_to=download_to)
    return read_set(files, source, verify=verify, flatten=flatten)
