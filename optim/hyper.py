"""Checks of hyper-parameters, run when an optimizer or transform is made: errors name it and the argument."""

from __future__ import annotations

import math

from lamina.layers import settings
from lamina.optim.transform import Transform


def owner(instance) -> str:
    """How an error names what was being made: a transform by its optax name, an optimizer by its class."""
    return type(instance).name if isinstance(instance, Transform) else type(instance).__name__


def _checked(check, **options):
    """An attrs validator: ``check`` (one of ``layers.settings``) naming the optimizer or transform."""
    def validate(instance, attribute, value) -> None:
        check(owner(instance), attribute.name, value, **options)
    return validate


positive = _checked(settings.positive_number)
non_negative = _checked(settings.non_negative_number)
fraction_right_open = _checked(settings.fraction_right_open)   # a decay rate, a momentum: [0, 1)
optional_positive = _checked(settings.positive_number, allow_none=True)
boolean = _checked(settings.boolean)


def learning_rate(instance, attribute, value) -> None:
    """A positive finite number, or a schedule (a callable of the step count)."""
    if not callable(value) and not (settings.is_real(value) and math.isfinite(value) and value > 0):
        settings.refuse(owner(instance), attribute.name,
                        "a positive finite number or a schedule (a callable of the step)", value)


def betas(instance, attribute, value) -> None:
    """A pair (b1, b2), each in [0, 1)."""
    if type(value) not in (tuple, list) or len(value) != 2:
        settings.refuse(owner(instance), attribute.name, "a pair (beta1, beta2)", value)
    for i, beta in enumerate(value):
        settings.fraction_right_open(owner(instance), f"{attribute.name}[{i}]", beta)


def optional_predicate(instance, attribute, value) -> None:
    """None, or a callable of a parameter's path and value (or of its path alone)."""
    if value is not None and not callable(value):
        real = settings.is_real(value)
        amount = " (how much is weight_decay=; decay= chooses the parameters)" if real else ""
        what = f"None or a callable where(path, param) -> bool{amount}"
        settings.refuse(owner(instance), attribute.name, what, value)


def pair(value):
    """A list given for a pair becomes a tuple (so the record stays hashable and prints as it was meant)."""
    return tuple(value) if type(value) is list else value
