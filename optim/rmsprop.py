"""RMSprop as torch.optim.RMSprop: no bias correction, eps outside the root.

g = grad + weight_decay * p;  v = alpha v + (1 - alpha) g²;  centered: mean = alpha mean + (1 - alpha) g,
s = √(v - mean²) + eps (mean = 0 when not centered);  momentum: b = momentum b + g / s, p <- p - lr(t) b;
else p <- p - lr(t) g / s.
"""

from __future__ import annotations

import attrs

from lamina.optim import hyper
from lamina.optim.optimizer import Optimizer
from lamina.optim.transforms import scale_by_rms, trace


@attrs.frozen(repr=False)
class RMSprop(Optimizer):
    """RMSprop (torch's), optionally centered, with momentum, L2 weight decay and clipping.

    ``decay``: which parameters the weight decay reaches, ``where(path, param) -> bool`` (None: all).
    """

    learning_rate: object = attrs.field(default=1e-2, validator=hyper.learning_rate)
    alpha: float = attrs.field(default=0.99, validator=hyper.fraction_right_open)
    eps: float = attrs.field(default=1e-8, validator=hyper.positive)
    weight_decay: float = attrs.field(default=0.0, validator=hyper.non_negative)
    momentum: float = attrs.field(default=0.0, validator=hyper.fraction_right_open)
    centered: bool = attrs.field(default=False, validator=hyper.boolean)
    clip_norm: float | None = attrs.field(default=None, validator=hyper.optional_positive)

    def scaling(self):
        return (self.decayed(), scale_by_rms(self.alpha, self.eps, self.centered),
                trace(self.momentum) if self.momentum else None)
