"""Saliency: which input values decide a prediction, as the gradient of the class's score with respect to the
input."""

from __future__ import annotations

import numpy as np

from lamina import layers
from lamina.diagnostics.classification import check_data

ROWS_PER_CHUNK = 256
"""Samples per forward and backward pass (the caches of a pass are kept until its backward)."""

_INPUT_GRAD = layers.Mode(input_grad=True)


def saliency(model, x, classes=None) -> np.ndarray:
    """d score[i, classes[i]] / d x[i] for each sample: an array shaped like x (in the model's dtype).

    ``score`` is the model's output (the logit, before softmax); ``classes`` is one class per
    sample or one for all, by default each sample's predicted class. Computed in inference
    (``layers.EVAL``: no dropout, running statistics), by the model's own backward.
    """
    x, _ = check_data(model, x, who="saliency")
    maps = np.empty_like(x)
    for start in range(0, len(x), ROWS_PER_CHUNK):
        xb = x[start:start + ROWS_PER_CHUNK]
        scores, cache = model.forward(xb, layers.EVAL)
        if scores.ndim != 2:
            raise ValueError(f"saliency: the model's outputs must be (n, classes), got {scores.shape}")
        chosen = _classes(classes, scores, start, len(x))
        dy = np.zeros_like(scores)
        dy[np.arange(len(xb)), chosen] = 1
        maps[start:start + len(xb)], _ = model.backward(cache, dy, _INPUT_GRAD)
    return maps


def _classes(classes, scores, start: int, n: int) -> np.ndarray:
    """This chunk's chosen classes: the argmax, or the given ones checked against the number of outputs."""
    if classes is None:
        return scores.argmax(axis=1)
    chosen = np.asarray(classes)
    if chosen.ndim == 0:
        chosen = np.full(len(scores), chosen)
    elif chosen.shape != (n,):
        raise ValueError(f"saliency: classes must be one int or one per sample ({n},), got shape "
                         f"{chosen.shape}")
    else:
        chosen = chosen[start:start + len(scores)]
    if not np.issubdtype(chosen.dtype, np.integer) or ((chosen < 0) | (chosen >= scores.shape[1])).any():
        raise ValueError(f"saliency: classes must be ints from 0 to {scores.shape[1] - 1}, got {classes!r}")
    return chosen
