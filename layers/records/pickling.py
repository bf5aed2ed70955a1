"""Pickling a record through its constructor, so a copy's arrays come back read-only and its checks run
again."""

from __future__ import annotations

import attrs


def rebuild(cls: type, fields: dict):
    """``cls(**fields)``: how a pickled record comes back."""
    return cls(**fields)


class BuiltOnLoad:
    """Mixin of a record class: pickle (and copy) rebuild it through its constructor, not by restoring its
    slots."""

    __slots__ = ()

    def __reduce__(self):
        fields = {field.alias: getattr(self, field.name) for field in attrs.fields(type(self)) if field.init}
        return rebuild, (type(self), fields)
