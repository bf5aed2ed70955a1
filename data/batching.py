"""Mini-batches, per-batch conversion, one-hot targets and random splits of (x, y) data sets."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.data.checks import check_inputs
from lamina.layers.settings import fraction_open, positive_int, positive_number, validator


def _as_array(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else np.asarray(a)


def _as_data(a, name: str, who: str):
    """An array, or a tuple of arrays (several inputs or targets) with the same number of samples."""
    if type(a) is list and a and all(isinstance(p, np.ndarray) for p in a):
        raise TypeError(f"{who}: {name} is a list of {len(a)} arrays; for several inputs "
                        f"pass a tuple: (x0, x1)")
    if type(a) is not tuple:
        a = _as_array(a)
        if a.ndim == 0:
            raise ValueError(f"{who}: {name} must be an array with samples along axis 0, got a scalar")
        return a
    if not a:
        raise ValueError(f"{who}: {name} is an empty tuple; expected at least one array")
    parts = tuple(_as_data(p, f"{name}[{i}]", who) for i, p in enumerate(a))
    for i, p in enumerate(parts):
        if len(p) != len(parts[0]):
            raise ValueError(f"{who}: {name}[{i}] has {len(p)} samples but {name}[0] has {len(parts[0])}; "
                             f"expected the same number (axis 0)")
    return parts


def _n(a) -> int:
    return len(a[0]) if type(a) is tuple else len(a)


def _take(a, rows):
    """Rows of an array or of every array of a tuple (a slice gives views)."""
    return tuple(p[rows] for p in a) if type(a) is tuple else a[rows]


def _check_pair(x, y, who: str):
    """x and y as arrays (or tuples of them) with samples along axis 0, the same number of them, at least
    one."""
    x, y = _as_data(x, "x", who), _as_data(y, "y", who)
    if _n(x) != _n(y):
        raise ValueError(f"{who}: x has {_n(x)} samples but y has {_n(y)}; "
                         "expected the same number (axis 0)")
    if _n(x) == 0:
        raise ValueError(f"{who}: x has no samples; expected at least one")
    return x, y


def _check_rng(rng, who: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")


def batches(x, y, batch_size: int, rng: np.random.Generator | None = None, *, transform=None):
    """Mini-batches (xb, yb) of ``batch_size`` samples (the last may be smaller), every sample once; a tuple
    x or y (several inputs or targets) gives tuples, every array shuffled and sliced alike.

    With ``rng`` the order is one ``rng.permutation(n)``, drawn when ``batches`` is called (so the
    Generator advances then); without it the order is 0..n-1 and the batches are views of x and y.
    ``transform`` converts each ``xb`` as it is yielded (``Rescale``), so x can be a uint8 memmap.
    """
    x, y = _check_pair(x, y, "batches")
    for i, part in enumerate(x if type(x) is tuple else (x,)):
        check_inputs(part, f"batches: x[{i}]" if type(x) is tuple else "batches: x")
    positive_int("batches", "batch_size", batch_size)
    if rng is not None:
        _check_rng(rng, "batches")
    if transform is not None and not callable(transform):
        raise TypeError(f"batches: transform must be callable (xb -> xb), got {type(transform).__name__}")
    order = rng.permutation(_n(x)) if rng is not None else None
    return _batches(x, y, int(batch_size), order, transform)


def _batches(x, y, batch_size, order, transform):
    for start in range(0, _n(x), batch_size):
        rows = slice(start, start + batch_size) if order is None else order[start:start + batch_size]
        xb, yb = _take(x, rows), _take(y, rows)
        yield (xb if transform is None else transform(xb)), yb


def _float_dtype(instance, attribute, value: np.dtype) -> None:
    if value.kind != "f":
        raise TypeError(f"Rescale: dtype must be a float dtype, got {value}")


@attrs.frozen
class Rescale:
    """xb -> xb * scale in ``dtype``, one batch at a time, with no float64 step (uint8 (n, ...) -> float32 (n,
    ...)).

    A scale whose inverse is a whole number in floating point (1/255, 1/256, ...) is applied as a
    division by it, so ``Rescale(np.float32, 1/255)`` gives exactly ``x.astype(np.float32) /
    np.float32(255)``; any other scale multiplies.
    """

    dtype: np.dtype = attrs.field(default=np.float32, converter=np.dtype, validator=_float_dtype)
    scale: float = attrs.field(default=1.0, validator=validator(positive_number))

    def __call__(self, xb) -> np.ndarray:
        xb = _as_array(xb)
        divisor = 1.0 / self.scale
        if divisor == round(divisor):
            return np.divide(xb, self.dtype.type(divisor), dtype=self.dtype)
        return np.multiply(xb, self.dtype.type(self.scale), dtype=self.dtype)


def _check_labels(labels, n_classes: int, who: str) -> np.ndarray:
    """Int labels (n,) in [0, n_classes); ValueError naming the first bad one and its index."""
    labels = _as_array(labels)
    if labels.ndim != 1:
        raise ValueError(f"{who}: labels must be 1-D (n,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        i = 0
        if labels.dtype.kind == "f" and len(labels):
            fractional = labels != np.round(labels)
            i = int(np.argmax(fractional)) if fractional.any() else 0
        first = f"labels[{i}] is {labels[i].item()!r}" if len(labels) else "no labels"
        raise ValueError(f"{who}: labels must be integers in [0, {n_classes}), got dtype {labels.dtype} "
                         f"({first})")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        i = int(np.argmax((labels < 0) | (labels >= n_classes)))
        raise ValueError(f"{who}: labels must be in [0, {n_classes}), but labels[{i}] is {int(labels[i])}")
    return labels


def one_hot(labels, n_classes: int) -> np.ndarray:
    """Int labels (n,) -> float32 (n, n_classes) with a 1 at each label and 0 elsewhere."""
    positive_int("one_hot", "n_classes", n_classes)
    labels = _check_labels(labels, n_classes, "one_hot")
    out = np.zeros((len(labels), n_classes), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1
    return out


def split(x, y, fraction: float, rng: np.random.Generator):
    """(x, y) -> ((x_train, y_train), (x_held, y_held)), as scikit-learn's ``train_test_split`` orders them:
    the held-out part holds round(fraction * n) samples drawn at random (one ``rng.permutation(n)``), the
    training part the rest; each part keeps the samples' original order."""
    x, y = _check_pair(x, y, "split")
    fraction_open("split", "fraction", fraction)
    _check_rng(rng, "split")
    n = _n(x)
    n_held = round(fraction * n)
    if not 0 < n_held < n:
        raise ValueError(f"split: fraction {fraction} of {n} samples holds out {n_held} and leaves "
                         f"{n - n_held} for training; expected at least one sample in each part")
    order = rng.permutation(n)
    held, train = np.sort(order[:n_held]), np.sort(order[n_held:])
    return (_take(x, train), _take(y, train)), (_take(x, held), _take(y, held))
