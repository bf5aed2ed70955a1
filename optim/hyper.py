"""Checks of hyper-parameters, run when an optimizer or transform is made: errors name it and the argument."""

from __future__ import annotations

import math

from lamina.layers import settings
from lamina.optim.transform import Transform


def owner(instance) -> str:
    """How an error names what was being made: a transform by its optax name, an optimizer by its class."""
    return type(instance).name if isinstance(instance, Transform) else type(instance).__name__


positive = settings.validator(settings.positive_number, who=owner)
non_negative = settings.validator(settings.non_negative_number, who=owner)
fraction_right_open = settings.validator(settings.fraction_right_open, who=owner)   # a decay rate: [0, 1)
optional_positive = settings.validator(settings.positive_number, who=owner, allow_none=True)
boolean = settings.validator(settings.boolean, who=owner)


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
