"""Initialisers: how every ``init`` that draws weights draws them, and the check of its generator.

``init="he"`` (the default) draws N(0, 2 / fan_in), ``"glorot"`` N(0, 2 / (fan_in + fan_out)), and a
float is the standard deviation of a zero-mean normal (nanoGPT's GPT uses 0.02). Biases start at zero.
"""

from __future__ import annotations

import math

import numpy as np

from lamina.layers.settings import is_real

NAMED = ("he", "glorot")


def check_rng(rng, who: str, call: str) -> None:
    """TypeError unless ``rng`` is a Generator; ``call`` shows how to call ``who`` (for the message)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} needs a numpy.random.Generator first: {call}, got {type(rng).__name__}")


def standard_deviation(init, fan_in: int, fan_out: int, who: str) -> float:
    """The std ``init`` names: sqrt(2 / fan_in) ("he"), sqrt(2 / (fan_in + fan_out)) ("glorot"), a float."""
    if isinstance(init, str) and init in NAMED:
        return math.sqrt(2 / fan_in if init == "he" else 2 / (fan_in + fan_out))
    if is_real(init) and math.isfinite(init) and init >= 0:
        return float(init)
    raise ValueError(f'{who}: init must be "he", "glorot" or a float >= 0 (the std of a zero-mean normal), '
                     f"got {init!r}")


def normal(rng: np.random.Generator, shape: tuple, init, fan_in: int, fan_out: int, dtype, who: str):
    """A weight of ``shape`` drawn from N(0, std²), std as ``init`` says, in ``dtype``."""
    std = standard_deviation(init, fan_in, fan_out, who)
    return rng.normal(0.0, std, size=shape).astype(dtype)
