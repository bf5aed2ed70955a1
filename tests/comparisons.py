"""Comparisons the checkpoint and signal tests share."""

from __future__ import annotations

from lamina import layers


def same_bits(a, b) -> bool:
    """Same structure, and every parameter array the same dtype, shape and bytes."""
    pa, pb = layers.parameters(a), layers.parameters(b)
    return a == b and len(pa) == len(pb) and all(
        p.dtype == q.dtype and p.shape == q.shape and p.tobytes() == q.tobytes() for p, q in zip(pa, pb))


def without_seconds(history: dict) -> dict:
    """The history without its wall-clock times, which differ from run to run."""
    return {key: value for key, value in history.items() if key != "seconds"}
