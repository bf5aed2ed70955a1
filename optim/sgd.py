"""SGD: the update of torch.optim.SGD with dampening 0.

With g = grad + weight_decay * p, and velocity v (zero before the first step):
    v <- momentum * v + g
    d = g + momentum * v   (nesterov)   or   d = v   (momentum)   or   d = g   (plain)
    p <- p - lr(t) * d
"""

from __future__ import annotations

import math
import numbers

import attrs
import numpy as np

from lamina.layers.parameter import readonly
from lamina.layers.registry import register
from lamina.layers.tree import check_same_structure, flatten, map_parameters, replace_parameters


def _is_number(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_rate(instance, attribute, value) -> None:
    if callable(value):
        return
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"SGD: learning_rate must be a positive finite number or a schedule "
                         f"(a callable of the step), got {value!r}")


def _check_momentum(instance, attribute, value) -> None:
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"SGD: momentum must be in [0, 1), got {value!r}")


def _check_nesterov(instance, attribute, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"SGD: nesterov must be True or False, got {value!r}")
    if value and instance.momentum == 0:
        raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")


def _check_decay(instance, attribute, value) -> None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"SGD: weight_decay must be a finite number >= 0, got {value!r}")


@register
@attrs.frozen
class SGDState:
    """Optimizer state: the number of updates done, and the velocity (a record shaped like the model; None without momentum)."""

    step: int = 0
    velocity: object = None
    # (model, its leaves and structure, velocity leaves) left by a donated update, so the next
    # donated update of that same model need not walk it again; never saved, never compared
    flat: tuple | None = attrs.field(default=None, init=False, eq=False, repr=False)


@attrs.frozen
class SGD:
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay."""

    learning_rate: object = attrs.field(validator=_check_rate)
    momentum: float = attrs.field(default=0.0, validator=_check_momentum)
    nesterov: bool = attrs.field(default=False, validator=_check_nesterov)
    weight_decay: float = attrs.field(default=0.0, validator=_check_decay)

    def rate(self, step: int) -> float:
        """The learning rate for update number ``step`` (0-based)."""
        if not callable(self.learning_rate):
            return float(self.learning_rate)  # checked when the optimizer was made
        lr = self.learning_rate(step)
        if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"SGD: the learning-rate schedule gave {lr!r} at step {step}; expected a finite number >= 0")
        return float(lr)

    def init(self, model) -> SGDState:
        """Step 0 and, with momentum, a zero velocity shaped like the model."""
        if self.momentum == 0:
            return SGDState(step=0, velocity=None)
        return SGDState(step=0, velocity=map_parameters(lambda p: readonly(np.zeros_like(p)), model))

    def update(self, model, grads, state: SGDState, *, donate: bool = False):
        """(model, gradients, state) -> (new model, new state); nothing given is changed.

        ``donate=True`` is the caller's promise that ``model``, ``grads`` and ``state`` are dead
        after this call (as JAX's donated arguments): their buffers are then updated in place and
        become the new model's and state's. The values are bit-identical either way. ``fit`` uses
        it for the arrays it allocated itself, never for the caller's.
        """
        cached = state.flat if donate else None
        if cached is not None and cached[0] is model:
            ps, structure, vs = cached[1], cached[2], cached[3]
        else:
            ps, structure = flatten(model)
            vs = None
            if self.momentum:
                if state.velocity is None:
                    raise ValueError("SGD: this optimizer has momentum but the state has no velocity; "
                                     "make the state with opt.init(model)")
                vs, velocity_structure = flatten(state.velocity)
                if velocity_structure != structure:
                    check_same_structure(model, state.velocity, names=("model", "optimizer state"))
        gs, grads_structure = flatten(grads)
        if grads_structure != structure:
            check_same_structure(model, grads)
        lr = self.rate(state.step)
        if donate and _make_writable([*ps, *gs, *(vs or [])]):
            self._step_in_place(lr, ps, gs, vs)
            for a in [*ps, *(vs or [])]:
                a.setflags(write=False)
            next_state = SGDState(step=state.step + 1, velocity=state.velocity)
            object.__setattr__(next_state, "flat", (model, ps, structure, vs))
            return model, next_state  # the same records now hold the new values
        new_ps, new_vs = self._step(lr, ps, gs, vs)
        velocity = replace_parameters(state.velocity, iter(new_vs)) if self.momentum else None
        return replace_parameters(model, iter(new_ps)), SGDState(step=state.step + 1, velocity=velocity)

    def _step(self, lr, ps, gs, vs):
        """The update on fresh arrays: returns (new parameters, new velocities)."""
        m, wd = self.momentum, self.weight_decay
        if wd:
            gs = [g + wd * p for p, g in zip(ps, gs)]
        if m:
            vs = [readonly(m * v + g) for v, g in zip(vs, gs)]
            directions = [g + m * v for g, v in zip(gs, vs)] if self.nesterov else vs
        else:
            directions = gs
        return [readonly(p - lr * d) for p, d in zip(ps, directions)], vs

    def _step_in_place(self, lr, ps, gs, vs):
        """The same arithmetic as ``_step``, written into the donated p, g and v (g is scratch)."""
        m, wd = self.momentum, self.weight_decay
        for k, (p, g) in enumerate(zip(ps, gs)):
            if wd:
                g += wd * p
            if m:
                v = vs[k]
                v *= m
                v += g                      # v = m v + g
                if self.nesterov:
                    g += m * v              # d = g + m v
                    g *= lr
                else:
                    np.multiply(v, lr, out=g)   # d = v, and g is scratch for lr d
            else:
                g *= lr
            p -= g                          # p = p - lr d


def _make_writable(arrays) -> bool:
    """Make donated arrays writable again; False (and nothing changed) if one does not own its buffer."""
    flipped = []
    try:
        for array in arrays:
            if not array.flags.writeable:
                array.setflags(write=True)
                flipped.append(array)
    except ValueError:
        for array in flipped:
            array.setflags(write=False)
        return False
    return True
