"""Learning-rate schedules: small records, each a function of the step count (0 for the first update)."""

from __future__ import annotations

import math

import attrs

from lamina.layers.settings import fraction_left_open, non_negative_number, positive_number, validator

_positive = validator(positive_number)
_non_negative = validator(non_negative_number)
_fraction = validator(fraction_left_open)   # a decay factor: (0, 1]


@attrs.frozen
class Constant:
    """lr(t) = value."""

    value: float = attrs.field(validator=_positive)

    def __call__(self, step: int) -> float:
        return float(self.value)


@attrs.frozen
class Exponential:
    """lr(t) = initial * factor ** t."""

    initial: float = attrs.field(validator=_positive)
    factor: float = attrs.field(validator=_fraction)

    def __call__(self, step: int) -> float:
        return float(self.initial * self.factor ** step)


@attrs.frozen
class StepDecay(Exponential):
    """lr(t) = initial * factor ** (t // every): the exponential decay, held for ``every`` steps at a time."""

    every: int = attrs.field(validator=_positive)

    def __call__(self, step: int) -> float:
        return super().__call__(step // self.every)


@attrs.frozen
class Cosine:
    """lr(t) = final + (initial - final) (1 + cos(pi min(t, total) / total)) / 2, after ``warmup`` steps.

    The warm-up goes linearly up from 0.
    """

    initial: float = attrs.field(validator=_positive)
    total: int = attrs.field(validator=_positive)
    final: float = attrs.field(default=0.0, validator=_non_negative)
    warmup: int = attrs.field(default=0, validator=_non_negative)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return float(self.initial * (step + 1) / self.warmup)
        t = min(step - self.warmup, self.total) / self.total
        return float(self.final + (self.initial - self.final) * (1 + math.cos(math.pi * t)) / 2)


@attrs.frozen
class Linear:
    """lr(t) = initial + (final - initial) min(t, total) / total: a straight line, then flat at ``final``."""

    initial: float = attrs.field(validator=_non_negative)
    final: float = attrs.field(validator=_non_negative)
    total: int = attrs.field(validator=_positive)

    def __call__(self, step: int) -> float:
        return float(self.initial + (self.final - self.initial) * min(step, self.total) / self.total)


@attrs.frozen
class Warmup:
    """``steps`` linear steps up to ``then(0)`` (lr(t) = then(0) (t + 1) / steps), then ``then(t - steps)``.

    ``then`` is any schedule or a float: ``Warmup(StepDecay(0.1, 0.5, 1000), steps=500)``.
    """

    then: object = attrs.field()
    steps: int = attrs.field(validator=_positive)

    @then.validator
    def _schedule(self, attribute, value) -> None:
        if not callable(value):
            _positive(self, attribute, value)

    def rate(self, step: int) -> float:
        return float(self.then(step) if callable(self.then) else self.then)

    def __call__(self, step: int) -> float:
        if step < self.steps:
            return self.rate(0) * (step + 1) / self.steps
        return self.rate(step - self.steps)
