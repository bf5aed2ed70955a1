"""Checks of hyper-parameters, run when an optimizer or transform is made: errors name it and the argument."""

from __future__ import annotations

import math

from lamina.optim.schedules import is_number
from lamina.optim.transform import Transform


def owner(instance) -> str:
    """How an error names what was being made: a transform by its optax name, an optimizer by its class."""
    return type(instance).name if isinstance(instance, Transform) else type(instance).__name__


def _refuse(instance, attribute, what: str, value) -> None:
    raise ValueError(f"{owner(instance)}: {attribute.name} must be {what}, got {value!r}")


def learning_rate(instance, attribute, value) -> None:
    """A positive finite number, or a schedule (a callable of the step count)."""
    if callable(value):
        return
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        _refuse(instance, attribute, "a positive finite number or a schedule (a callable of the step)", value)


def positive(instance, attribute, value) -> None:
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        _refuse(instance, attribute, "a positive finite number", value)


def non_negative(instance, attribute, value) -> None:
    if not is_number(value) or not math.isfinite(value) or value < 0:
        _refuse(instance, attribute, "a finite number >= 0", value)


def fraction(instance, attribute, value) -> None:
    """A decay rate in [0, 1)."""
    if not is_number(value) or not 0 <= value < 1:
        _refuse(instance, attribute, "in [0, 1)", value)


def optional_positive(instance, attribute, value) -> None:
    if value is not None:
        if not is_number(value) or not math.isfinite(value) or value <= 0:
            _refuse(instance, attribute, "a positive finite number or None", value)


def betas(instance, attribute, value) -> None:
    """A pair (b1, b2), each in [0, 1)."""
    if type(value) not in (tuple, list) or len(value) != 2:
        _refuse(instance, attribute, "a pair (beta1, beta2)", value)
    for i, beta in enumerate(value):
        if not is_number(beta) or not 0 <= beta < 1:
            raise ValueError(f"{owner(instance)}: {attribute.name}[{i}] must be in [0, 1), got {beta!r}")


def optional_predicate(instance, attribute, value) -> None:
    """None, or a callable of a parameter's path and value (or of its path alone)."""
    if value is not None and not callable(value):
        amount = " (how much is weight_decay=; decay= chooses the parameters)" if is_number(value) else ""
        _refuse(instance, attribute, f"None or a callable where(path, param) -> bool{amount}", value)


def boolean(instance, attribute, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{owner(instance)}: {attribute.name} must be True or False, got {value!r}")


def pair(value):
    """A list given for a pair becomes a tuple (so the record stays hashable and prints as it was meant)."""
    return tuple(value) if type(value) is list else value
