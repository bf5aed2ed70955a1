"""The training step: forward, loss, backward, update; and its parts, which fit runs on arrays it owns."""

from __future__ import annotations

import functools
import math

import attrs
import numpy as np

from lamina.layers.layer import check_layer, entry, forward_of
from lamina.layers.mode import Mode
from lamina.layers.records.finite import first_nonfinite
from lamina.optim.errors import NonFiniteLossError


@functools.lru_cache(maxsize=16)
def without_input_grad(mode: Mode) -> Mode:
    """The mode with ``input_grad=False``: the data needs no gradient."""
    return mode if not mode.input_grad else attrs.evolve(mode, input_grad=False)


def gradients(forward, model, loss, xb, yb, mode: Mode):
    """(prediction, loss value, gradients) of one batch; ``forward`` is the model's (unchecked) forward.

    A prediction that went NaN or inf (the model diverged), which the loss refuses, gives the loss
    NaN and no gradients.
    """
    pred, cache = forward(xb, mode)
    try:
        value, loss_cache = loss.forward(pred, yb)
    except ValueError:
        if np.isfinite(pred).all():
            raise
        return pred, math.nan, None
    _, grads = model.backward(cache, loss.backward(loss_cache), mode)
    return pred, value, grads


def first_nonfinite_output(model, xb, mode: Mode) -> str | None:
    """The path of the first layer whose output is NaN or inf, found by running the forward again with an observer."""
    found = []

    def observe(path, layer, y):
        if not found and np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
            found.append(path)

    rng = None
    if mode.rng is not None:  # a copy: the run's own generator is not advanced by the search
        rng = np.random.Generator(type(mode.rng.bit_generator)())
        rng.bit_generator.state = mode.rng.bit_generator.state
    with np.errstate(all="ignore"):
        forward_of(model)(xb, attrs.evolve(mode, rng=rng, observe=observe))
    return found[0] if found else None


def diverged(epoch, batch, value, model, pred, grads, xb, mode, checkpoint=None) -> NonFiniteLossError:
    """The error for a non-finite loss: the first layer whose output is not finite when the prediction is not,
    else the first non-finite gradient."""
    if grads is not None and np.isfinite(pred).all():
        return NonFiniteLossError(epoch, batch, value, first_nonfinite(grads), checkpoint=checkpoint)
    return NonFiniteLossError(epoch, batch, value, first_nonfinite_output(model, xb, mode), output=True,
                              checkpoint=checkpoint)


def train_step(model, loss, optimizer, state, xb, yb, mode: Mode):
    """One step -> (model, state, loss value, prediction); pure: nothing given is changed.

    The batch is cast to the model's dtype and checked; the backward pass skips the input's
    gradient. A non-finite loss, gradient or new buffer raises ``NonFiniteLossError`` before
    anything is updated.
    """
    check_layer(model, "train_step: the model")
    if not isinstance(mode, Mode):
        raise TypeError(f"train_step: mode must be a layers.Mode (e.g. layers.Mode(train=True, rng=rng)), "
                        f"got {type(mode).__name__}")
    xb = entry(model, xb)
    pred, value, grads = gradients(forward_of(model), model, loss, xb, yb, without_input_grad(mode))
    if not math.isfinite(value):
        raise diverged(None, None, value, model, pred, grads, xb, without_input_grad(mode))
    bad = first_nonfinite(grads)
    if bad is not None:
        raise NonFiniteLossError(None, None, value, bad)
    model, state = optimizer.update(model, grads, state)
    return model, state, value, pred
