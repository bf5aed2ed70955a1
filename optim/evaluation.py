"""evaluate: the mean loss (and accuracy) of a model on a data set, in batches."""

from __future__ import annotations

import math

import numpy as np
from lamina.layers.layer import check_layer, chunks, forward_of, input_dtype
from lamina.layers.mode import EVAL
from lamina.optim.checks import check_inputs, check_targets, positive_int
from lamina.optim.metrics import accuracy_rule
from lamina.optim.threads import AUTO, BlasThreads
from lamina.losses import SoftmaxCrossEntropy

DEFAULT_THREADS = AUTO
"""BLAS threads for fit and evaluate: "auto" chooses by timing the batches and keeps choosing as the machine's
load changes (optim/threads.py); $LAMINA_THREADS replaces it."""


def n_outputs(model, x: np.ndarray, transform) -> int:
    """The model's number of outputs for samples like x's: from ``output_shape``, else from one sample."""
    first = x[:1] if transform is None else transform(x[:1])
    shape = model.output_shape(first.shape[1:]) if hasattr(model, "output_shape") else None
    if shape and shape[-1] is not None:
        return shape[-1]
    first = first.astype(input_dtype(model, first) or first.dtype, copy=False)
    return forward_of(model)(first, EVAL)[0].shape[-1]


def evaluate(model, loss, x, y, batch_size: int = 1000, *, transform=None, threads=DEFAULT_THREADS) -> dict:
    """{"loss": mean loss over the samples, "accuracy": where the targets decide one} of ``model`` on (x, y),
    in batches."""
    positive_int("batch_size", batch_size, who="evaluate")
    check_layer(model, "evaluate: the model")
    x = check_inputs(x)
    y = check_targets(y, len(x), n_outputs(model, x, transform), loss, who="evaluate")
    return scores(model, loss, x, y, batch_size, transform, BlasThreads(threads, who="evaluate"))


def _counted(loss, yb) -> float:
    """What the loss's mean divides by on this batch (torch's weighted mean: the summed class weights of the
    counted labels), so that batches combine into the mean over the whole set."""
    if not (isinstance(loss, SoftmaxCrossEntropy) and isinstance(yb, np.ndarray) and yb.dtype.kind in "iu"):
        return float(len(yb))
    labels = yb if loss.ignore_index is None else yb[yb != loss.ignore_index]
    return float(labels.size if loss.class_weights is None else loss.class_weights[labels].sum())


def scores(model, loss, x, y, batch_size, transform, threads) -> dict:
    """{"loss": ..., "accuracy": ...} of ``model`` on checked (x, y), in batches of ``batch_size`` under
    ``threads``."""
    total, counted, correct, seen = 0.0, 0.0, 0, 0
    forward, dtype, accuracy = forward_of(model), input_dtype(model, x), accuracy_rule(loss, y)
    with threads as blas:
        for part in chunks(len(x), batch_size):
            xb, yb = x[part], y[part]
            xb = xb if transform is None else transform(xb)
            with blas.batch(len(xb)):
                pred = forward(xb.astype(dtype, copy=False) if dtype is not None else xb, EVAL)[0]
            try:
                value, _ = loss.forward(pred, yb)  # a NaN loss is a result here
            except ValueError:
                if np.isfinite(pred).all():
                    raise
                value = math.nan
            total, counted = total + value * _counted(loss, yb), counted + _counted(loss, yb)
            if accuracy is not None:
                right, count = accuracy(pred, yb)
                correct, seen = correct + right, seen + count
    result = {"loss": total / counted if counted else 0.0}
    if accuracy is not None:
        result["accuracy"] = correct / seen
    return result
