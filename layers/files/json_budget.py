"""How much memory parsing a JSON text takes, known before it is parsed (loaders stay bounded by the file)."""

from __future__ import annotations

BYTES_PER_OBJECT = 200          # a parsed dict with a key or two (CPython 3.8-3.13: 64-232)
BYTES_PER_ARRAY = 72            # a parsed list
BYTES_PER_VALUE = 40            # each further item or key: a float or an int and its slot in a list
BYTES_PER_QUOTE = 24            # a str's fixed part, half for each of its two quotes
SPARE_BYTES = 48 << 20
"""Any JSON text may take this much beside three times its own size (with the text and its decoded copy,
about the 4 times plus 100 MB a loader may take)."""


def parsed_bytes(data: bytes) -> int:
    """An upper estimate of the memory ``json.loads(data)`` takes beyond the text itself (a brace, bracket,
    comma, colon or escaped quote inside a string counts too: never an underestimate)."""
    values = (data.count(b",") + data.count(b":")) * BYTES_PER_VALUE + data.count(b'"') * BYTES_PER_QUOTE
    return data.count(b"{") * BYTES_PER_OBJECT + data.count(b"[") * BYTES_PER_ARRAY + values


def too_large(data: bytes) -> str | None:
    """Why parsing ``data`` would need more than 3 times its size plus SPARE_BYTES, or None when it fits."""
    need, budget = parsed_bytes(data), 3 * len(data) + SPARE_BYTES
    if need <= budget:
        return None
    return (f"its {len(data):,} bytes of JSON would take about {need:,} bytes of memory once parsed (at most "
            f"{budget:,} are allowed: 3 times its size plus {SPARE_BYTES >> 20} MB)")
