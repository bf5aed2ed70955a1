"""What ``help()`` shows first for a record class: its docstring, then its constructor and fields.

``pydoc`` lists a class's methods alphabetically, attrs' generated ``__eq__``, ``__setattr__``, ... first,
and the ``init`` classmethod after them all. ``register`` (where every built-in passes) appends this
outline to the class docstring once, so the constructor and the fields come right after the description.
"""

from __future__ import annotations

import inspect

import attrs

from lamina.layers.records.parameter import field_kind

HEADING = "At a glance:"
"""The outline's first line; the documentation site drops the outline (its pages show the same)."""
KINDS = {"param": "trainable", "buffer": "buffer", "constant": "constant"}


def _default(value) -> str:
    """A default as a reader writes it: ``np.float32``, not ``<class 'numpy.float32'>``."""
    if isinstance(value, type):
        return f"np.{value.__name__}" if value.__module__ == "numpy" else value.__name__
    return repr(value)


def _signature(cls: type, name: str) -> str | None:
    """``Dense.init(rng, n_in, n_out, dtype=np.float32, init='he')``, or None when it is no classmethod."""
    if not isinstance(inspect.getattr_static(cls, name, None), classmethod):
        return None
    parts, star = [], False
    for p in inspect.signature(getattr(cls, name)).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
        star = star or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        shown = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        parts.append(shown if p.default is p.empty else f"{shown}={_default(p.default)}")
    return f"{cls.__name__}.{name}({', '.join(parts)})"


def outline(cls: type) -> str:
    """The outline lines: ``init``'s signature, the fields with their kinds, the protocol's methods."""
    lines = [HEADING]
    build = _signature(cls, "init")
    if build is not None:
        lines.append(f"    build: {build}")
    fields = [f"{f.name} ({KINDS.get(field_kind(f), 'setting')})" for f in attrs.fields(cls) if f.init]
    lines.append(f"    fields: {', '.join(fields) if fields else 'none'}")
    methods = [name for name in ("forward", "backward", "output_shape", "summary") if hasattr(cls, name)]
    if methods:
        lines.append(f"    methods: {', '.join(methods)}; help({cls.__name__}.forward) and so on for each")
    return "\n".join(lines)


def with_outline(cls: type) -> str:
    """The class docstring with its outline after it (once: a class registered again keeps one)."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    if HEADING in doc:
        return cls.__doc__
    return f"{doc}\n\n{outline(cls)}\n" if doc else f"{outline(cls)}\n"
