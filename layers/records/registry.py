"""The registry: the record classes a model file may name (the built-in layers, registered where they are
defined, plus the user's own).

It is the one piece of global state in lamina, and only ever added to. A model file names each
record by its registered name; loading looks the name up here and nowhere else, so a file can
never make lamina import or call anything that was not registered.
"""

from __future__ import annotations

import re

import attrs

from lamina.layers.records.outline import with_outline

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_classes: dict[str, type] = {}
_names: dict[type, str] = {}


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type | None = None, *, name: str | None = None):
    """Class decorator: model files may hold records of ``cls``, named ``name`` (default ``cls.__name__``).

    Use ``@layers.register`` or ``@layers.register(name="MyScale")`` above ``@attrs.frozen``; the
    class is returned unchanged. Registering a class again is a no-op; a class redefined under the
    same module and qualified name (a re-run notebook cell) replaces the old one; any other class
    under a taken name is a ValueError.
    """
    if cls is None:
        return lambda cls: register(cls, name=name)
    if not isinstance(cls, type) or not attrs.has(cls):
        raise TypeError(f"register needs an attrs class, got {cls!r}; put @layers.register above "
                        "@attrs.frozen")
    name = cls.__name__ if name is None else name
    if not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"register: the name must be a Python identifier (no dots), got {name!r}")
    if _names.get(cls, name) != name:
        raise ValueError(f"register: {_where(cls)} is already registered as {_names[cls]!r}, "
                         f"cannot register it again as {name!r}")
    old = _classes.get(name)
    if old is not None and old is not cls:
        if _where(old) != _where(cls):
            raise ValueError(f"register: the name {name!r} is taken by {_where(old)}; register "
                             f"{_where(cls)} under another one: @layers.register(name=...)")
        del _names[old]
    _classes[name] = cls
    _names[cls] = name
    cls.__doc__ = with_outline(cls)  # help(cls): the constructor and fields right after the docstring
    return cls


def registered_class(name: str) -> type | None:
    """The class registered under ``name``, or None."""
    return _classes.get(name)


def registered_name(cls: type) -> str | None:
    """The name ``cls`` is registered under, or None (subclasses are not registered with their parent)."""
    return _names.get(cls)


def registered_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_classes)

