"""The training step: forward, loss, backward, the non-finite guard, update; and fit's twin of it on arrays it
owns."""

from __future__ import annotations

import functools
import math

import attrs
import numpy as np
from lamina.layers.layer import check_layer, entry, forward_of, wrong_gradients
from lamina.layers.mode import Mode
from lamina.layers.records.finite import all_finite, first_nonfinite
from lamina.layers.records.parameter import owning
from lamina.layers.records.tree import buffers, fold_gradients, parameters, shared
from lamina.optim.chain import Chain
from lamina.optim.errors import NonFiniteLossError
from lamina.optim.executor import along, leaf_keys
from lamina.optim.in_place import owned, update_in_place
from lamina.optim.optimizer import Optimizer
from lamina.optim.tuples import finite, n_samples


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
        if finite(pred):
            raise
        return pred, math.nan, None
    _, grads = model.backward(cache, loss.backward(loss_cache), mode)
    if type(grads) is not type(model):
        raise TypeError(wrong_gradients(model, grads))
    return pred, value, grads


@attrs.frozen
class Reach:
    """How fit's step reaches a model's gradients (made once per model): its forward, its ``leaf_keys`` and
    whether its gradients need folding (a record shared at several paths)."""

    forward: object
    keys: tuple
    folds: bool

    @classmethod
    def of(cls, model) -> Reach:
        return cls(forward_of(model), leaf_keys(model), bool(shared(model)))


def gradient_leaves(grads, keys: tuple | None) -> tuple[list, bool]:
    """(every param and buffer array of ``grads``, whether they were reached along ``keys``): along ``keys``
    (the model's ``leaf_keys``), else walked."""
    if keys is not None:
        try:
            return along(grads, keys), True
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
    return parameters(grads) + buffers(grads), False


def checked_gradients(model, loss, xb, yb, mode: Mode, where=(None, None, None), reach: Reach | None = None):
    """``gradients`` of one batch and their arrays along the model's leaf keys (None when not reached so),
    refused with NonFiniteLossError when the loss, a gradient or a new buffer value is NaN or inf (before
    anything is updated: the one guard of train_step and fit). ``where``: (epoch, batch, checkpoint) for the
    message; ``reach``: ``Reach.of(model)``, to reach the arrays without a walk.

    -> (prediction, loss value, gradients, leaves)
    """
    forward = forward_of(model) if reach is None else reach.forward
    pred, value, grads = gradients(forward, model, loss, xb, yb, mode)
    if grads is not None and (reach is None or reach.folds):
        grads = fold_gradients(model, grads)   # a shared record's parts summed
    if not math.isfinite(value):
        raise diverged(*where[:2], value, model, pred, grads, xb, mode, where[2])
    leaves, along_keys = gradient_leaves(grads, None if reach is None else reach.keys)
    if not all_finite(leaves):
        raise NonFiniteLossError(*where[:2], value, first_nonfinite(grads), checkpoint=where[2])
    return pred, value, grads, (leaves if along_keys else None)


def first_nonfinite_output(model, xb, mode: Mode) -> str | None:
    """The path of the first layer whose output is NaN or inf, found by running the forward again with an
    observer."""
    found = []

    def observe(path, layer, y):
        if not found and not finite(y):
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
    if grads is not None and finite(pred):
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
    pred, value, grads, _ = checked_gradients(model, loss, entry(model, xb), yb, without_input_grad(mode))
    model, state = optimizer.update(model, grads, state)
    return model, state, value, pred


@attrs.define
class OwnedStep:
    """``train_step``'s twin in fit: the same maths and guard on the records the loop owns, which ``update``
    (the optimizer's in-place update) changes in place; the batch comes checked and cast by the loop."""

    loss: object
    update: object          # (model, grads, state, leaves=...) -> (model, state)   (``in_place``)
    blas: object            # the loop's BlasThreads: ``batch(n)`` times the step
    _known: tuple = attrs.field(default=(None, None), init=False)   # (the last model, its Reach)

    def __call__(self, model, state, xb, yb, mode: Mode, where):
        """-> (model, state, loss value, prediction, gradients); ``where``: (epoch, batch, checkpoint)."""
        if self._known[0] is not model:   # (the in-place update hands back the same model: looked at once)
            self._known = (model, Reach.of(model))
        with owning(), self.blas.batch(n_samples(xb)):
            pred, value, grads, leaves = checked_gradients(model, self.loss, xb, yb, mode, where,
                                                           self._known[1])
            model, state = self.update(model, grads, state, leaves=leaves)
        return model, state, value, pred, grads


def owned_copy(value, model):
    """``value`` (a record, an optimizer state) copied into buffers the loop owns and updates in place (a
    record shared at several paths stays one record: its gradients reach the update folded)."""
    return owned(value)


def in_place(optimizer, reuse_gradients: bool):
    """The optimizer's update for records the loop owns (bit for bit its pure update), ``(model, grads, state,
    leaves=None) -> (model, state)`` (``leaves``: the gradients' arrays along the model's leaf keys); a user's
    own optimizer: its update.

    ``reuse_gradients``: no callback can ask for the gradients after the update, so the update may
    work in their buffers.
    """
    chain = optimizer if isinstance(optimizer, Chain) else getattr(optimizer, "chain", None)
    if not isinstance(optimizer, (Chain, Optimizer)) or not isinstance(chain, Chain):
        return lambda model, grads, state, leaves=None: optimizer.update(model, grads, state)
    return functools.partial(update_in_place, chain, reuse_gradients=reuse_gradients)
