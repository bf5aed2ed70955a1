"""The per-array transforms, named as optax names them; each written for one array, its needs declared.

In the maths, ``g`` is what comes in (the gradient, or the previous transform's update) and
the returned update is added to the parameter at the end of the chain.
"""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import numpy as np

from lamina.layers.settings import is_real
from lamina.optim import hyper
from lamina.optim.transform import Needs, Transform


@attrs.frozen(repr=False)
class AddDecayedWeights(Transform):
    """u = g + weight_decay * p (L2 decay when it comes before the scaling, decoupled after it)."""

    name: ClassVar[str] = "add_decayed_weights"
    needs: ClassVar[Needs] = Needs(elementwise=True, writes_grad=False)
    weight_decay: float = attrs.field(validator=hyper.non_negative)

    def update(self, g, state, p, step):
        u = p * self.weight_decay
        u += g
        return u, state


@attrs.frozen(repr=False)
class Trace(Transform):
    """Momentum as torch's SGD (dampening 0): t = decay t + g; u = t, or g + decay t with nesterov."""

    name: ClassVar[str] = "trace"
    decay: float = attrs.field(validator=hyper.fraction_right_open)
    nesterov: bool = attrs.field(default=False, validator=hyper.boolean)

    @property
    def needs(self) -> Needs:
        return Needs(state=("trace",), elementwise=True, writes_grad=self.nesterov)

    def update(self, g, state, p, step):
        (t,) = state
        t *= self.decay
        t += g                          # t = decay t + g
        if self.nesterov:
            g += self.decay * t         # u = g + decay t
            return g, state
        return t, state                 # u = t (the chain copies it before anything overwrites it)


@attrs.frozen(repr=False)
class ScaleByAdam(Transform):
    """Adam's direction as torch computes it: m̂ / (√v̂ + eps), with m, v the bias-corrected moments.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²;  u = (m / c1) / (√v / √c2 + eps),
    c = 1 - b^(step + 1).
    """

    name: ClassVar[str] = "scale_by_adam"
    needs: ClassVar[Needs] = Needs(state=("mu", "nu"), elementwise=True, writes_grad=False)
    b1: float = attrs.field(default=0.9, validator=hyper.fraction_right_open)
    b2: float = attrs.field(default=0.999, validator=hyper.fraction_right_open)
    eps: float = attrs.field(default=1e-8, validator=hyper.positive)

    def update(self, g, state, p, step):
        m, v = state
        b1, b2, t = float(self.b1), float(self.b2), step + 1
        c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        s = np.multiply(g, g)           # g is only read: s is the one work array
        s *= 1.0 - b2
        v *= b2
        v += s                          # v = b2 v + (1 - b2) g²
        m *= b1
        np.multiply(g, 1.0 - b1, out=s)
        m += s                          # m = b1 m + (1 - b1) g
        # (m / c1) / (√v / √c2 + eps) = m / (√v (c1 / √c2) + eps c1): one pass fewer
        np.sqrt(v, out=s)
        s *= c1 / math.sqrt(c2)
        s += self.eps * c1
        np.divide(m, s, out=s)
        return s, state


@attrs.frozen(repr=False)
class ScaleByRms(Transform):
    """RMSprop's scaling as torch's (no bias correction, eps outside the root): u = g / (√(v - mean²) + eps).

    v = alpha v + (1 - alpha) g²; centered: mean = alpha mean + (1 - alpha) g, else mean = 0.
    """

    name: ClassVar[str] = "scale_by_rms"
    alpha: float = attrs.field(default=0.99, validator=hyper.fraction_right_open)
    eps: float = attrs.field(default=1e-8, validator=hyper.positive)
    centered: bool = attrs.field(default=False, validator=hyper.boolean)

    @property
    def needs(self) -> Needs:
        return Needs(state=("nu", "mean") if self.centered else ("nu",), elementwise=True, writes_grad=False)

    def update(self, g, state, p, step):
        a = float(self.alpha)
        v = state[0]
        s = np.multiply(g, g)
        s *= 1.0 - a
        v *= a
        v += s                          # v = a v + (1 - a) g²
        if self.centered:
            mean = state[1]
            mean *= a
            np.multiply(g, 1.0 - a, out=s)
            mean += s                   # mean = a mean + (1 - a) g
            np.multiply(mean, mean, out=s)
            np.subtract(v, s, out=s)
            np.sqrt(s, out=s)
        else:
            np.sqrt(v, out=s)
        s += self.eps
        np.divide(g, s, out=s)
        return s, state


@attrs.frozen(repr=False)
class ScaleByLearningRate(Transform):
    """u = -lr(step) g: the descent step. ``learning_rate``: a float or a schedule (a function of step)."""

    name: ClassVar[str] = "scale_by_learning_rate"
    needs: ClassVar[Needs] = Needs(elementwise=True, scales=True, rate=True)
    learning_rate: object = attrs.field(validator=hyper.learning_rate)

    def rate(self, step: int) -> float:
        """The learning rate for update number ``step`` (0-based)."""
        if not callable(self.learning_rate):
            return float(self.learning_rate)
        lr = self.learning_rate(step)
        if not (is_real(lr) and math.isfinite(lr) and lr >= 0):
            raise ValueError(f"scale_by_learning_rate: the learning-rate schedule gave {lr!r} at step "
                             f"{step}; expected a finite number >= 0")
        return float(lr)

    def factor(self, step: int) -> float:
        return -self.rate(step)

    def update(self, g, state, p, step):
        g *= self.factor(step)
        return g, state


@attrs.frozen(repr=False)
class Scale(Transform):
    """u = by * g."""

    name: ClassVar[str] = "scale"
    needs: ClassVar[Needs] = Needs(elementwise=True, scales=True)
    by: float = attrs.field(validator=hyper.non_negative)

    def factor(self, step: int) -> float:
        return float(self.by)

    def update(self, g, state, p, step):
        g *= float(self.by)
        return g, state


@attrs.frozen(repr=False)
class SetToZero(Transform):
    """u = 0: with ``masked``, a frozen layer (put it last, so that nothing after it moves the weights)."""

    name: ClassVar[str] = "set_to_zero"
    needs: ClassVar[Needs] = Needs(elementwise=True, writes_grad=False)

    def update(self, g, state, p, step):
        return np.zeros_like(g), state


add_decayed_weights = AddDecayedWeights
trace = Trace
scale_by_adam = ScaleByAdam
scale_by_rms = ScaleByRms
scale_by_learning_rate = ScaleByLearningRate
scale = Scale
set_to_zero = SetToZero
