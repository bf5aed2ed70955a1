"""generate: sample a continuation of token ids from a language model, one token at a time."""

from __future__ import annotations

import math

import attrs
import numpy as np

from lamina.layers.layer import infer
from lamina.layers.maths import softmax
from lamina.layers.positional_embedding import PositionalEmbedding
from lamina.layers.settings import is_real, non_negative_int, positive_int, refuse


def max_length(layer) -> int | None:
    """The ``max_length`` of the model's first PositionalEmbedding (in field order), or None without one."""
    if isinstance(layer, PositionalEmbedding):
        return layer.max_length
    for field in attrs.fields(type(layer)):
        value = getattr(layer, field.name) if field.init else None
        for child in value if isinstance(value, tuple) else (value,):
            found = max_length(child) if attrs.has(type(child)) else None
            if found is not None:
                return found
    return None


def sample(logits: np.ndarray, rng: np.random.Generator, temperature: float, top_k: int | None) -> np.ndarray:
    """One id per row of logits (n, k): the argmax when temperature is 0, else a draw from softmax(logits /
    temperature) over the ``top_k`` largest (all when None)."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    z = logits / logits.dtype.type(temperature)
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k, None]
        z = np.where(z < kth, -np.inf, z)
    cumulative = softmax(z).cumsum(axis=-1)
    u = rng.random((len(z), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= u).sum(axis=-1), z.shape[-1] - 1)


def generate(model, ids, steps: int, rng: np.random.Generator, *, temperature: float = 1.0,
             top_k: int | None = None, context: int | None = None) -> np.ndarray:
    """ids (n, t0) -> (n, t0 + steps): the prompt, then ``steps`` ids, each drawn from the softmax of the
    model's logits at the last position (divided by ``temperature``; 0 is greedy; only the ``top_k`` largest
    kept), the model fed at most the last ``context`` ids (None: its PositionalEmbedding's max_length, else
    all)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu" or ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"generate: ids must be a non-empty int array (n, t0), got dtype {ids.dtype} and "
                         f"shape {ids.shape}")
    non_negative_int("generate", "steps", steps)
    positive_int("generate", "top_k", top_k, allow_none=True)
    positive_int("generate", "context", context, allow_none=True)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"generate: rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not (is_real(temperature) and math.isfinite(temperature) and temperature >= 0):
        refuse("generate", "temperature", "a finite number >= 0 (0: greedy)", temperature)
    context = max_length(model) if context is None else context
    n, t0 = ids.shape
    out = np.empty((n, t0 + steps), np.int64)
    out[:, :t0] = ids
    for t in range(t0, t0 + steps):
        logits = infer(model, out[:, max(0, t - context) if context else 0:t])
        out[:, t] = sample(logits[:, -1] if logits.ndim == 3 else logits, rng, temperature, top_k)
    return out
