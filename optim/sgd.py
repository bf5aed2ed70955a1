"""SGD: the update of torch.optim.SGD with dampening 0.

With g = grad + weight_decay * p, and velocity v (zero before the first step):
    v <- momentum * v + g
    d = g + momentum * v   (nesterov)   or   d = v   (momentum)   or   d = g   (plain)
    p <- p - lr(t) * d
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers.param import readonly
from lamina.layers.tree import check_same_structure, map_parameters, parameters, replace_parameters


def _check_rate(instance, attribute, value) -> None:
    if callable(value):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"SGD: learning_rate must be a positive finite number or a schedule "
                         f"(a callable of the step), got {value!r}")


def _check_momentum(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"SGD: momentum must be in [0, 1), got {value!r}")


def _check_nesterov(instance, attribute, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"SGD: nesterov must be True or False, got {value!r}")
    if value and instance.momentum == 0:
        raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")


def _check_decay(instance, attribute, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"SGD: weight_decay must be a finite number >= 0, got {value!r}")


@attrs.frozen
class SGDState:
    """Optimizer state: the number of updates done, and the velocity (a record shaped like the model; None without momentum)."""

    step: int = 0
    velocity: object = None


@attrs.frozen
class SGD:
    """Stochastic gradient descent, optionally with (Nesterov) momentum and L2 weight decay."""

    learning_rate: object = attrs.field(validator=_check_rate)
    momentum: float = attrs.field(default=0.0, validator=_check_momentum)
    nesterov: bool = attrs.field(default=False, validator=_check_nesterov)
    weight_decay: float = attrs.field(default=0.0, validator=_check_decay)

    def rate(self, step: int) -> float:
        """The learning rate for update number ``step`` (0-based)."""
        lr = self.learning_rate(step) if callable(self.learning_rate) else self.learning_rate
        if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"SGD: the learning-rate schedule gave {lr!r} at step {step}; expected a finite number >= 0")
        return float(lr)

    def init(self, model) -> SGDState:
        """Step 0 and, with momentum, a zero velocity shaped like the model."""
        if self.momentum == 0:
            return SGDState(step=0, velocity=None)
        return SGDState(step=0, velocity=map_parameters(lambda p: readonly(np.zeros_like(p)), model))

    def update(self, model, grads, state: SGDState):
        """(model, gradients, state) -> (new model, new state); nothing given is changed."""
        check_same_structure(model, grads)
        if self.momentum and state.velocity is not None:
            check_same_structure(model, state.velocity, names=("model", "optimizer state"))
        lr = self.rate(state.step)
        ps, gs = parameters(model), parameters(grads)
        if self.weight_decay:
            gs = [g + self.weight_decay * p for p, g in zip(ps, gs)]
        if self.momentum:
            if state.velocity is None:
                raise ValueError("SGD: this optimizer has momentum but the state has no velocity; "
                                 "make the state with opt.init(model)")
            vs = [self.momentum * v + g for v, g in zip(parameters(state.velocity), gs)]
            directions = [g + self.momentum * v for g, v in zip(gs, vs)] if self.nesterov else vs
            velocity = replace_parameters(state.velocity, iter([readonly(v) for v in vs]))
        else:
            directions, velocity = gs, None
        new = [readonly(p - lr * d) for p, d in zip(ps, directions)]
        return replace_parameters(model, iter(new)), SGDState(step=state.step + 1, velocity=velocity)
