"""Vocabulary: the symbols of a text (characters, words, any strings) and their ids."""

from __future__ import annotations

import attrs
import numpy as np


def _symbols(value) -> tuple:
    if isinstance(value, str):
        value = tuple(value)
    symbols = tuple(value)
    for i, symbol in enumerate(symbols):
        if not isinstance(symbol, str):
            raise TypeError(f"Vocabulary: symbols must be strings, but symbols[{i}] is {symbol!r}")
    if len(set(symbols)) != len(symbols):
        seen = set()
        twice = next(s for s in symbols if s in seen or seen.add(s))
        raise ValueError(f"Vocabulary: every symbol must be unique, but {twice!r} is there twice")
    if not symbols:
        raise ValueError("Vocabulary: needs at least one symbol")
    return symbols


@attrs.frozen(repr=False)
class Vocabulary:
    """Symbols and their ids: ``symbols[i]`` has id i. ``unknown`` (one of the symbols, or None): what a
    symbol outside the vocabulary encodes to; None refuses it."""

    symbols: tuple = attrs.field(converter=_symbols)
    unknown: str | None = attrs.field(default=None)
    _ids: dict = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self):
        object.__setattr__(self, "_ids", {symbol: i for i, symbol in enumerate(self.symbols)})
        if self.unknown is not None and self.unknown not in self._ids:
            raise ValueError(f"Vocabulary: unknown must be one of the symbols, got {self.unknown!r}")

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        """The characters of ``text``, sorted."""
        return cls(tuple(sorted(set(text))))

    @classmethod
    def from_tokens(cls, tokens, *, unknown: str | None = None) -> "Vocabulary":
        """The distinct tokens (words or any strings), sorted, with ``unknown`` added if it is not one."""
        symbols = sorted(set(tokens) | ({unknown} if unknown is not None else set()))
        return cls(tuple(symbols), unknown=unknown)

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.symbols[:8])) + (", ..." if len(self) > 8 else "")
        unknown = "" if self.unknown is None else f", unknown={self.unknown!r}"
        return f"Vocabulary({len(self)} symbols: {shown}{unknown})"

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text) -> np.ndarray:
        """A string (one symbol per character) or a sequence of tokens -> ids (len,) int64."""
        ids, unknown = self._ids, self._ids.get(self.unknown)
        try:
            return np.fromiter((ids[s] for s in text), np.int64, len(text))
        except KeyError:
            if unknown is not None:
                return np.fromiter((ids.get(s, unknown) for s in text), np.int64, len(text))
        position = next(i for i, s in enumerate(text) if s not in ids)
        raise ValueError(f"Vocabulary.encode: {text[position]!r} at position {position} is not in the "
                         f"vocabulary ({len(self)} symbols); build it from this text, or give from_tokens an "
                         f"unknown symbol")

    def decode(self, ids) -> str:
        """ids (any shape, read in order) -> the string of their symbols joined."""
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Vocabulary.decode: ids must be integers, got dtype {ids.dtype}")
        flat = ids.reshape(-1)
        bad = (flat < 0) | (flat >= len(self))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"Vocabulary.decode: ids must be in [0, {len(self)}), but ids[{i}] is "
                             f"{int(flat[i])}")
        symbols = self.symbols
        return "".join(symbols[i] for i in flat.tolist())

    def to_json(self) -> dict:
        """The vocabulary as JSON (the form kept in a model file's ``extra``)."""
        return {"symbols": list(self.symbols), "unknown": self.unknown}

    @classmethod
    def from_json(cls, d: dict) -> "Vocabulary":
        """The vocabulary ``to_json`` gave."""
        if not isinstance(d, dict) or "symbols" not in d:
            raise ValueError(f"Vocabulary.from_json: expected a dict with 'symbols', got {type(d).__name__}")
        return cls(tuple(d["symbols"]), unknown=d.get("unknown"))
