"""Adam (L2 decay added to the gradient, as torch.optim.Adam) and AdamW (decoupled, as torch.optim.AdamW).

m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²;  p <- p - lr(t) m̂ / (√v̂ + eps), m̂ and v̂ bias-corrected.
Adam: g = grad + weight_decay * p.  AdamW: p <- p (1 - lr(t) weight_decay) as well.
"""

from __future__ import annotations

import attrs

from lamina.optim import hyper
from lamina.optim.optimizer import Optimizer
from lamina.optim.transforms import scale_by_adam


@attrs.frozen(repr=False)
class Adam(Optimizer):
    """Adam with L2 weight decay added to the gradient (torch's Adam), optionally clipped.

    ``decay``: which parameters the weight decay reaches, ``where(path, param) -> bool`` (None: all).
    """

    learning_rate: object = attrs.field(default=1e-3, validator=hyper.learning_rate)
    betas: tuple = attrs.field(default=(0.9, 0.999), converter=hyper.pair, validator=hyper.betas)
    eps: float = attrs.field(default=1e-8, validator=hyper.positive)
    weight_decay: float = attrs.field(default=0.0, validator=hyper.non_negative)
    clip_norm: float | None = attrs.field(default=None, validator=hyper.optional_positive)

    def scaling(self):
        return self.decayed(), scale_by_adam(*self.betas, self.eps)


@attrs.frozen(repr=False)
class AdamW(Optimizer):
    """Adam with decoupled weight decay (torch's AdamW): p - lr (adam + weight_decay p), maybe clipped.

    ``decay``: which parameters the weight decay reaches (nanoGPT: ``lambda path, p: p.ndim >= 2``).
    """

    learning_rate: object = attrs.field(default=1e-3, validator=hyper.learning_rate)
    betas: tuple = attrs.field(default=(0.9, 0.999), converter=hyper.pair, validator=hyper.betas)
    eps: float = attrs.field(default=1e-8, validator=hyper.positive)
    weight_decay: float = attrs.field(default=1e-2, validator=hyper.non_negative)
    clip_norm: float | None = attrs.field(default=None, validator=hyper.optional_positive)

    def scaling(self):
        return scale_by_adam(*self.betas, self.eps), self.decayed()
