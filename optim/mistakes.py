"""Mistakes that would otherwise pass silently, caught by fit before the first batch: each a TrainingWarning
or an error that says what to do instead."""

from __future__ import annotations

import collections.abc
import warnings

import attrs
import numpy as np
from lamina.layers.activations import Sigmoid
from lamina.layers.errors import ShapeError
from lamina.layers.layer import forward_of, input_dtype
from lamina.layers.mode import EVAL
from lamina.layers.records.parameter import field_kind
from lamina.optim.errors import TrainingWarning

from lamina import losses

PROBE_ROWS = 8


def check_arguments(loss, optimizer, x, who: str = "fit") -> None:
    """A loss or optimizer class for an instance, or an iterator as x: TypeError saying what to do."""
    for name, value, example in (("loss", loss, "losses.MSE()"), ("optimizer", optimizer, "optim.SGD(0.1)")):
        if isinstance(value, type):
            raise TypeError(f"{who}: {name} is the class {value.__name__}, not an instance: call it, "
                            f"{value.__name__}(...) (e.g. {example})")
    if isinstance(x, collections.abc.Iterator):
        raise TypeError(f"{who}: x is a {type(x).__name__} (an iterator); fit takes arrays: "
                        f"np.asarray(list(x)), or np.stack(...) of its items")


def undeclared_arrays(record, path: str = "model") -> list[str]:
    """Paths of the float array fields declared with none of param(), buffer(), constant()."""
    found = []
    for field in attrs.fields(type(record)):
        value = getattr(record, field.name)
        where = f"{path}.{field.name}"
        if field_kind(field) is None and isinstance(value, np.ndarray) and value.dtype.kind == "f":
            found.append(f"{where} ({type(record).__name__})")
        children = value if type(value) is tuple else (value,)
        for i, child in enumerate(children):
            if attrs.has(type(child)) and not isinstance(child, type):
                found += undeclared_arrays(child, f"{where}[{i}]" if type(value) is tuple else where)
    return found


def warn_undeclared_arrays(model) -> None:
    found = undeclared_arrays(model)
    if found:
        warnings.warn(f"fit: {', '.join(found[:5])} holds a float array declared with none of layers.param() "
                      f"(trained), layers.buffer() (updated by training) or layers.constant() (fixed, saved "
                      f"in files): it is never trained; declare the field with one of them", TrainingWarning,
                      stacklevel=3)


def last_layer(model):
    """The last layer applied (inside nested Sequences)."""
    while hasattr(model, "layers") and type(model.layers) is tuple and model.layers:
        model = model.layers[-1]
    return model


def check_prediction(model, loss, x, y, transform) -> None:
    """The model's prediction on a few rows against the loss and the targets' shape (before any batch)."""
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)) or transform is not None:
        return                  # (a transform is called on the batches only, as a user counts its calls)
    rows = x[:PROBE_ROWS]
    pred = forward_of(model)(rows.astype(input_dtype(model, rows) or rows.dtype, copy=False), EVAL)[0]
    if not isinstance(pred, np.ndarray):
        return
    name = type(loss).__name__
    if isinstance(loss, losses.BinaryCrossEntropy) and isinstance(last_layer(model), Sigmoid):
        warnings.warn(f"fit: the model ends with Sigmoid() before {name}, but this loss takes logits (it "
                      f"applies the sigmoid itself): remove the last Sigmoid(); use losses.sigmoid(model(x)) "
                      f"for probabilities", TrainingWarning, stacklevel=3)
    probabilities = pred.ndim == 2 and pred.shape[1] > 1 and ((pred >= 0) & (pred <= 1)).all() and \
        np.allclose(pred.sum(axis=1), 1, atol=1e-4)
    if isinstance(loss, losses.SoftmaxCrossEntropy) and probabilities:
        warnings.warn(f"fit: every row of the model's prediction lies in [0, 1] and sums to 1, but {name} "
                      f"takes logits (it applies the softmax itself): remove the model's last softmax; use "
                      f"losses.softmax(model(x)) for probabilities", TrainingWarning, stacklevel=3)
    labels = y.dtype.kind in "iu" and isinstance(loss, losses.SoftmaxCrossEntropy)
    if pred.ndim > y.ndim + labels and pred.ndim > 2:
        raise ShapeError("fit", f"a prediction with the targets' axes for y of shape {y.shape}; add "
                         f"layers.Flatten() or a global pooling (layers.GlobalAvgPool2D()) before the last "
                         f"Dense",
                         (None, *pred.shape[1:]), source="the model")
    if y.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1 and not labels:
        raise ValueError(f"fit: y has shape {y.shape}, but the model's prediction is (n, 1) and {name} "
                         f"compares them element by element: pass y[:, None] (shape (n, 1))")
