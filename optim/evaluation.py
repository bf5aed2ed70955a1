"""evaluate: the mean loss (and accuracy) of a model on a data set, in batches."""

from __future__ import annotations

import math
import time

import numpy as np

from lamina.layers.layer import check_layer, chunks, forward_of, input_dtype, output_shape_of, rows_per_chunk
from lamina.layers.mode import EVAL, INFER
from lamina.layers.settings import positive_int
from lamina.optim.checks import check_targets
from lamina.optim.metrics import accuracy_rule, part_rules
from lamina.optim.threads import AUTO, Blas, BlasThreads, most_threads, resolve, settings
from lamina.losses import SoftmaxCrossEntropy
from lamina.optim.tuples import (add_scores, cast, check_x, check_y, count_of, finite, first_rows, n_samples,
                                 part_means, part_scores, per_sample_shape, rows)

DEFAULT_THREADS = AUTO
"""BLAS threads for fit and evaluate: "auto" chooses by timing the batches and keeps choosing as the machine's
load changes (optim/threads.py); $LAMINA_THREADS replaces it."""


def n_outputs(model, x, transform):
    """The model's number of outputs for samples like x's: from ``output_shape``, else from one sample; a
    tuple of them for a tuple output."""
    first = first_rows(x, transform)
    shape = output_shape_of(model, per_sample_shape(first))
    if type(shape) is list and all(count_of(s) is not None for s in shape):
        return tuple(map(count_of, shape))
    if shape and type(shape) is not list and shape[-1] is not None:
        return shape[-1]
    y = forward_of(model)(cast(first, input_dtype(model, first)), EVAL)[0]
    return tuple(part.shape[-1] for part in y) if type(y) is tuple else y.shape[-1]


def evaluate(model, loss, x, y, batch_size: int = 1000, *, transform=None, threads=DEFAULT_THREADS) -> dict:
    """{"loss": mean loss over the samples, "accuracy": where the targets decide one} of ``model`` on (x, y),
    in batches."""
    positive_int("evaluate", "batch_size", batch_size)
    check_layer(model, "evaluate: the model")
    x = check_x(x, who="evaluate")
    y = check_y(check_targets, y, n_samples(x), n_outputs(model, x, transform), loss, who="evaluate")
    return scores(model, loss, x, y, batch_size, transform, evaluation_threads(threads, model, x, transform,
                                                                            batch_size))


_CHOSEN: dict = {}
"""The candidate "auto" chose for evaluate in this process (once, on the first call of several batches)."""


def evaluation_threads(threads, model, x, transform, batch_size) -> BlasThreads:
    """evaluate's BLAS threads: a pin or None as given; "auto" the fastest count for one batch of ``x``,
    timed on the first call of several batches and kept for the process, so repeated calls give the same
    bits."""
    setting = resolve(threads, "evaluate")
    if setting != AUTO:
        return BlasThreads(setting, who="evaluate")
    if "count" not in _CHOSEN:
        if n_samples(x) < 4 * batch_size:
            return BlasThreads(1, who="evaluate")
        _CHOSEN["count"] = _fastest(model, rows(x, slice(0, batch_size)), transform)
    return BlasThreads(_CHOSEN["count"], who="evaluate")


def _fastest(model, xb, transform):
    """The candidate of ``settings`` (1, (1, 2), 2, ...) that runs the forward of ``xb`` fastest (best of
    two)."""
    forward, times = forward_of(model), {}
    xb = cast(xb if transform is None else transform(xb), input_dtype(model, xb))
    for candidate in settings(most_threads(Blas())):
        with BlasThreads(candidate, who="evaluate"):
            for _ in range(2):
                started = time.perf_counter()
                forward(xb, INFER)
                times[candidate] = min(times.get(candidate, math.inf), time.perf_counter() - started)
    return min(times, key=times.get)


def _counted(loss, yb) -> float:
    """What the loss's mean divides by on this batch (torch's weighted mean: the summed class weights of the
    counted labels), so that batches combine into the mean over the whole set."""
    if not (isinstance(loss, SoftmaxCrossEntropy) and isinstance(yb, np.ndarray) and yb.dtype.kind in "iu"):
        return float(n_samples(yb))
    labels = yb if loss.ignore_index is None else yb[yb != loss.ignore_index]
    return float(labels.size if loss.class_weights is None else loss.class_weights[labels].sum())


def scores(model, loss, x, y, batch_size, transform, threads) -> dict:
    """{"loss": ..., "accuracy": ...} of ``model`` on checked (x, y), in batches of ``batch_size`` under
    ``threads``."""
    total, counted, correct, seen, sums, n = 0.0, 0.0, 0, 0, [], n_samples(x)
    forward, dtype, accuracy = forward_of(model), input_dtype(model, x), accuracy_rule(loss, y)
    rules = part_rules(loss, y)
    with threads as blas:
        for part in chunks(n, rows_per_chunk(x, batch_size)):
            xb, yb = rows(x, part), rows(y, part)
            xb = xb if transform is None else transform(xb)
            with blas.batch(n_samples(xb)):
                pred = forward(cast(xb, dtype), INFER)[0]
            try:
                value, _ = loss.forward(pred, yb)  # a NaN loss is a result here
            except ValueError:
                if finite(pred):
                    raise
                value = math.nan
            total, counted = total + value * _counted(loss, yb), counted + _counted(loss, yb)
            if accuracy is not None:
                right, count = accuracy(pred, yb)
                correct, seen = correct + right, seen + count
            if rules is not None and math.isfinite(value):   # losses.Multi: each part's loss and accuracy
                sums = add_scores(sums, part_scores(loss, rules, pred, yb), n_samples(yb))
    result = {"loss": total / counted if counted else 0.0}
    if accuracy is not None:
        result["accuracy"] = correct / seen
    return {**result, **part_means(sums, n)}
