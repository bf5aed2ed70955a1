"""Checks of settings (sizes, rates, fractions, choices), one wording everywhere: "who: name must be ..., got
...".

Each check takes ``(who, name, value)``, raises a ValueError naming both when the value does not fit and
returns it (an int as ``int``, a number as ``float``); ``allow_none=True`` lets None through. The interval a
number must lie in is in the check's name: ``fraction_closed`` [0, 1], ``fraction_right_open`` [0, 1),
``fraction_left_open`` (0, 1], ``fraction_open`` (0, 1). ``validator(check)`` makes any of them an attrs
validator that names the record's class and the field.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def is_real(value) -> bool:
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_int(value) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def refuse(who: str, name: str, what: str, value, allow_none: bool = False):
    """The ValueError every check raises: "who: name must be what, got value"."""
    raise ValueError(f"{who}: {name} must be {what}{' or None' if allow_none else ''}, got {value!r}")


def _int(who: str, name: str, value, low: int, what: str, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if not (is_int(value) and value >= low):
        refuse(who, name, what, value, allow_none)
    return int(value)


def _number(who: str, name: str, value, fits, what: str, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if not (is_real(value) and math.isfinite(value) and fits(value)):
        refuse(who, name, what, value, allow_none)
    return float(value)


def positive_int(who: str, name: str, value, *, allow_none: bool = False) -> int | None:
    """An int >= 1."""
    return _int(who, name, value, 1, "a positive int", allow_none)


def non_negative_int(who: str, name: str, value, *, allow_none: bool = False) -> int | None:
    """An int >= 0."""
    return _int(who, name, value, 0, "an int >= 0", allow_none)


def finite_number(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A finite real number."""
    return _number(who, name, value, lambda v: True, "a finite number", allow_none)


def positive_number(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A finite number > 0."""
    return _number(who, name, value, lambda v: v > 0, "a positive finite number", allow_none)


def non_negative_number(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A finite number >= 0."""
    return _number(who, name, value, lambda v: v >= 0, "a finite number >= 0", allow_none)


def fraction_closed(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A number in [0, 1]."""
    return _number(who, name, value, lambda v: 0 <= v <= 1, "a number in [0, 1]", allow_none)


def fraction_right_open(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A number in [0, 1) (a rate that must leave something: dropout, momentum, a held-out share)."""
    return _number(who, name, value, lambda v: 0 <= v < 1, "a number in [0, 1)", allow_none)


def fraction_left_open(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A number in (0, 1] (a decay factor)."""
    return _number(who, name, value, lambda v: 0 < v <= 1, "a number in (0, 1]", allow_none)


def fraction_open(who: str, name: str, value, *, allow_none: bool = False) -> float | None:
    """A number in (0, 1) (a split that leaves something on both sides)."""
    return _number(who, name, value, lambda v: 0 < v < 1, "a number in (0, 1)", allow_none)


def one_of(who: str, name: str, value, choices, *, allow_none: bool = False):
    """One of ``choices`` (compared with ==), listed in the error."""
    if value is None and allow_none:
        return None
    if not any(_same(value, choice) for choice in choices):
        refuse(who, name, "one of " + ", ".join(repr(choice) for choice in choices), value, allow_none)
    return value


def _same(value, choice) -> bool:
    """value == choice, never taking True for 1 nor comparing an array element by element."""
    return (isinstance(value, type(choice)) and isinstance(value, bool) == isinstance(choice, bool)
            and value == choice)


def boolean(who: str, name: str, value) -> bool:
    """True or False (a TypeError otherwise: 0 and 1 are not flags)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


def validator(check, *, name: str | None = None, who=None, **options):
    """An attrs validator running ``check(who, name or the field's name, value, **options)``; ``who``: how the
    error names the record, a function of it (its class name when None)."""
    def validate(instance, attribute, value) -> None:
        check(type(instance).__name__ if who is None else who(instance), name or attribute.name, value,
              **options)
    return validate


def converter(check, who: str, name: str, **options):
    """An attrs converter: the value ``check(who, name, value, **options)`` returns (an int as ``int``, a
    number as ``float``)."""
    return lambda value: check(who, name, value, **options)
