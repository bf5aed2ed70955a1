"""Mini-batches, per-batch conversion, one-hot targets and random splits of (x, y) data sets."""

from __future__ import annotations

import attrs
import numpy as np

from lamina.data.checks import check_inputs
from lamina.layers.settings import fraction_open, positive_int, positive_number, validator


def _as_array(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else np.asarray(a)


def _check_pair(x, y, who: str):
    """x and y as arrays with samples along axis 0, the same number of them, at least one."""
    x, y = _as_array(x), _as_array(y)
    for name, a in (("x", x), ("y", y)):
        if a.ndim == 0:
            raise ValueError(f"{who}: {name} must be an array with samples along axis 0, got a scalar")
    if len(x) != len(y):
        raise ValueError(f"{who}: x has {len(x)} samples but y has {len(y)}; "
                         "expected the same number (axis 0)")
    if len(x) == 0:
        raise ValueError(f"{who}: x has no samples; expected at least one")
    return x, y


def _check_rng(rng, who: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")


def batches(x, y, batch_size: int, rng: np.random.Generator | None = None, *, transform=None):
    """Mini-batches (xb, yb) of ``batch_size`` samples (the last may be smaller), every sample once.

    With ``rng`` the order is one ``rng.permutation(n)``, drawn when ``batches`` is called (so the
    Generator advances then); without it the order is 0..n-1 and the batches are views of x and y.
    ``transform`` converts each ``xb`` as it is yielded (``Rescale``), so x can be a uint8 memmap.
    """
    x, y = _check_pair(x, y, "batches")
    check_inputs(x, "batches: x")
    positive_int("batches", "batch_size", batch_size)
    if rng is not None:
        _check_rng(rng, "batches")
    if transform is not None and not callable(transform):
        raise TypeError(f"batches: transform must be callable (xb -> xb), got {type(transform).__name__}")
    order = rng.permutation(len(x)) if rng is not None else None
    return _batches(x, y, int(batch_size), order, transform)


def _batches(x, y, batch_size, order, transform):
    for start in range(0, len(x), batch_size):
        if order is None:
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        else:
            rows = order[start:start + batch_size]
            xb, yb = x[rows], y[rows]
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
    n = len(x)
    n_held = round(fraction * n)
    if not 0 < n_held < n:
        raise ValueError(f"split: fraction {fraction} of {n} samples holds out {n_held} and leaves "
                         f"{n - n_held} for training; expected at least one sample in each part")
    order = rng.permutation(n)
    held, train = np.sort(order[:n_held]), np.sort(order[n_held:])
    return (x[train], y[train]), (x[held], y[held])
