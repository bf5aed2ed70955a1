"""SGD: the update of torch.optim.SGD with dampening 0.

With g = grad + weight_decay * p, and velocity v (zero before the first step):
    v <- momentum * v + g
    d = g + momentum * v   (nesterov)   or   d = v   (momentum)   or   d = g   (plain)
    p <- p - lr(t) * d
"""

from __future__ import annotations

import attrs

from lamina.optim import hyper
from lamina.optim.optimizer import Optimizer
from lamina.optim.transforms import trace


def _check_nesterov(instance, attribute, value) -> None:
    hyper.boolean(instance, attribute, value)
    if value and instance.momentum == 0:
        raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")


@attrs.frozen(repr=False)
class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, L2 weight decay and clipping.

    ``decay``: which parameters the weight decay reaches, ``where(path, param) -> bool`` (None: all).
    """

    learning_rate: object = attrs.field(validator=hyper.learning_rate)
    momentum: float = attrs.field(default=0.0, validator=hyper.fraction_right_open)
    nesterov: bool = attrs.field(default=False, validator=_check_nesterov)
    weight_decay: float = attrs.field(default=0.0, validator=hyper.non_negative)
    clip_norm: float | None = attrs.field(default=None, validator=hyper.optional_positive)

    def scaling(self):
        return self.decayed(), trace(self.momentum, self.nesterov) if self.momentum else None
