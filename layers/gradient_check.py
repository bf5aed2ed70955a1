"""Gradient checks: backward against central finite differences, in float64.

For a layer f and a fixed random projection r, the scalar L(x, params) = sum(f(x) * r) has
d L / d x = backward(cache, r)[0] and d L / d params = backward(cache, r)[1]; each is compared
with (L(v + eps) - L(v - eps)) / (2 eps), element by element. Errors are relative to the size
of the gradient: ||analytic - numeric|| / max(||analytic|| + ||numeric||, tiny).
"""

from __future__ import annotations

import numpy as np

from lamina.layers.layer import check_layer, takes_ids
from lamina.layers.mode import Mode
from lamina.layers.records.tree import (fold_gradients, map_arrays, named_parameters, parameters,
                                        replace_parameters)


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with finite differences; the message lists each place and its error."""


def as_float64(record):
    """The same record with every parameter and buffer cast to float64."""
    return map_arrays(lambda a: a.astype(np.float64), record)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    scale = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / max(scale, 1e-300))


def _numeric_gradient(f, value: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of the scalar f(v) at v = value, one element at a time."""
    grad = np.zeros(value.shape)  # C order, so that out below is a view whatever the layout of value
    flat, out = value.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        # a step that v + step and v - step both take exactly, so the two points sit symmetric about v
        step = (abs(flat[k]) + eps) - abs(flat[k])
        plus, minus = flat.copy(), flat.copy()
        plus[k] += step
        minus[k] -= step
        out[k] = (f(plus.reshape(value.shape)) - f(minus.reshape(value.shape))) / (2 * step)
    return grad


def _mode(train: bool, seed: int) -> Mode:
    """A fresh mode for every evaluation: the same seed draws the same dropout mask each time."""
    return Mode(train=train, rng=np.random.default_rng(seed))


def _projection(y, rng):
    """A fixed random array shaped like y (a tuple for a tuple output)."""
    if type(y) is tuple:
        return tuple(_projection(part, rng) for part in y)
    return rng.standard_normal(np.shape(y))


def _dot(y, r) -> float:
    return sum(_dot(a, b) for a, b in zip(y, r)) if type(y) is tuple else float(np.sum(y * r))


def _with_part(x: tuple, i: int, v) -> tuple:
    return x[:i] + (v,) + x[i + 1:]


def gradient_errors(layer, x, *, train: bool = False, seed: int = 0, eps: float = 1e-6) -> dict[str, float]:
    """Relative error of ``layer.backward`` for the input ("input"; "input[i]" for each part of a tuple input)
    and
    each parameter (by path), in float64.

    ``train`` runs both in training mode (batch statistics, dropout with the mask ``seed`` draws);
    buffers are not checked (training updates them, no gradient does). A shared record is checked
    once, against its summed (folded) gradient.
    """
    check_layer(layer)
    layer = as_float64(layer)
    parts = tuple(np.asarray(part) for part in (x if type(x) is tuple else (x,)))
    ids = [part.dtype.kind in "iu" and takes_ids(layer) for part in parts]   # ids have no gradient
    parts = tuple(part if is_ids else part.astype(np.float64) for part, is_ids in zip(parts, ids))
    x = parts if type(x) is tuple else parts[0]
    y, cache = layer.forward(x, _mode(train, seed))
    r = _projection(y, np.random.default_rng(seed + 1))
    dx, grads = layer.backward(cache, r, _mode(train, seed))
    grads = fold_gradients(layer, grads)

    def loss_at(record, x_):
        return _dot(record.forward(x_, _mode(train, seed))[0], r)

    names, dxs = (["input"], (dx,)) if type(x) is not tuple else ([f"input[{i}]" for i in range(len(x))], dx)
    errors = {}
    for i, name in enumerate(names):
        if not ids[i]:   # (a part of ids: the parameters' gradients only)
            errors[name] = relative_error(dxs[i], _numeric_gradient(
                lambda v, i=i: loss_at(layer, _with_part(x, i, v) if type(x) is tuple else v), parts[i], eps))
    arrays = parameters(layer)
    analytic = dict(named_parameters(grads))
    for k, (path, p) in enumerate(named_parameters(layer)):
        def loss_of_param(v, k=k):
            return loss_at(replace_parameters(layer, iter(arrays[:k] + [v] + arrays[k + 1:])), x)
        errors[path] = relative_error(analytic[path], _numeric_gradient(loss_of_param, p, eps))
    return errors


def loss_gradient_error(loss, pred, target, *, eps: float = 1e-6) -> float:
    """Relative error of ``loss.backward`` (d value / d pred) against finite differences, in float64."""
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target)
    if target.dtype.kind == "f":
        target = target.astype(np.float64)
    _, cache = loss.forward(pred, target)
    analytic = loss.backward(cache)
    numeric = _numeric_gradient(lambda v: loss.forward(v, target)[0], pred, eps)
    return relative_error(analytic, numeric)


def check_gradients(layer, x, *, train: bool = False, seed: int = 0, tol: float = 1e-6,
                    eps: float = 1e-6) -> dict[str, float]:
    """``gradient_errors``, raising ``GradientCheckError`` if any error exceeds ``tol``."""
    errors = gradient_errors(layer, x, train=train, seed=seed, eps=eps)
    bad = {k: v for k, v in errors.items() if not v <= tol}
    if bad:
        lines = ", ".join(f"{k}: {v:.2e}" for k, v in bad.items())
        raise GradientCheckError(f"{type(layer).__name__} gradients disagree with finite differences "
                                 f"(tolerance {tol:.0e}): {lines}")
    return errors


def check_loss_gradient(loss, pred, target, *, tol: float = 1e-6, eps: float = 1e-6) -> float:
    """``loss_gradient_error``, raising ``GradientCheckError`` above ``tol``."""
    error = loss_gradient_error(loss, pred, target, eps=eps)
    if not error <= tol:
        raise GradientCheckError(f"{type(loss).__name__} gradient disagrees with finite differences: "
                                 f"{error:.2e} > {tol:.0e}")
    return error
