"""Pointers for habits from PyTorch and Keras: a keyword a record does not take gets the name it does take."""

from __future__ import annotations

import difflib
import functools

import attrs

ALIASES = {"lr": "learning_rate", "p": "rate", "dropout": "rate", "beta1": "betas", "beta2": "betas",
           "num_features": "n_features", "in_features": "n_in", "out_features": "n_out",
           "max_norm": "clip_norm", "clipnorm": "clip_norm", "decay": "weight_decay"}


def unknown_keywords(cls: type, kwargs: dict) -> str | None:
    """A message naming each keyword ``cls`` does not take and the one meant, or None when all are known."""
    if not attrs.has(cls):
        return None
    known = [field.alias for field in attrs.fields(cls) if field.init]
    wrong = [key for key in kwargs if key not in known]
    if not wrong:
        return None
    parts = []
    for key in wrong:
        meant = ALIASES.get(key) if ALIASES.get(key) in known else None
        meant = meant or next(iter(difflib.get_close_matches(key, known, n=1)), None)
        parts.append(f"{key}= (did you mean {meant}=?)" if meant else f"{key}=")
    return f"{cls.__name__} takes no {', '.join(parts)}; it takes {', '.join(k + '=' for k in known)}"


@functools.lru_cache(maxsize=None)
def _known(cls: type) -> frozenset:
    if not attrs.has(cls):
        return frozenset()
    return frozenset(field.alias for field in attrs.fields(cls) if field.init)


class KeywordHints:
    """Mixin of a record class: an unknown keyword is a TypeError that names the one meant (``lr=`` ->
    ``learning_rate=``), and sizes where the arrays go (``Dense(784, 10)``) point to the class's ``init``."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        if args and all(type(a) is int for a in args) and isinstance(cls.__dict__.get("init"), classmethod):
            sizes = ", ".join(map(str, args))
            raise TypeError(f"{cls.__name__}({sizes}) gives the record's arrays, not its sizes; a new layer "
                            f"is {cls.__name__}.init(rng, {sizes}), e.g. layers.{cls.__name__}.init("
                            f"np.random.default_rng(0), {sizes})")
        if kwargs and not _known(cls).issuperset(kwargs):
            raise TypeError(unknown_keywords(cls, kwargs))
        return super().__new__(cls)
