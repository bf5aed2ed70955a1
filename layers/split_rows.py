"""Work that is not a matrix product, on more than one core: a job over rows ``[0, n)`` split in parts.

NumPy releases the GIL in its element-wise kernels, copies and reductions, so the parts of a large array
run at once on several cores. A part computes exactly what the whole would for its rows (element-wise
work, or reductions along the other axes), so splitting never changes a bit; a sum *over* the rows must
not be split this way.

    y = np.empty_like(x)
    split_rows.run(lambda a, b: np.tanh(x[a:b], out=y[a:b]), len(x), x.size)

The part count is one until the training loop (``optim``'s thread setting) or the caller says more with
``using(n)``; arrays under ``MIN_ELEMENTS`` elements always run whole (handing a part to a thread costs
tens of microseconds).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

MIN_ELEMENTS = 1 << 16
"""The least array size worth splitting (elements): below it, a thread handoff costs more than it saves."""

_parts = 1
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def parts() -> int:
    """How many parts a large job is split into now."""
    return _parts


def set_parts(n: int) -> int:
    """Split large jobs in ``n`` parts from now on (1: run them whole); returns the previous count."""
    global _parts
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"split_rows.set_parts: expected a positive int, got {n!r}")
    previous, _parts = _parts, n
    return previous


@contextmanager
def using(n: int):
    """``with using(n):`` large jobs run in ``n`` parts inside the block."""
    previous = set_parts(n)
    try:
        yield
    finally:
        set_parts(previous)


def _workers(n: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < n:
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="lamina-rows")
        return _pool


def run(job, n: int, size: int) -> None:
    """``job(start, stop)`` over the rows ``[0, n)``: whole, or in ``parts()`` slices that run at once when
    ``size`` (the elements the job touches) is at least ``MIN_ELEMENTS``; the last slice runs here."""
    k = min(_parts, n)
    if k < 2 or size < MIN_ELEMENTS or threading.current_thread().name.startswith("lamina-rows"):
        job(0, n)
        return
    cuts = [n * i // k for i in range(k + 1)]
    pool = _workers(k - 1)
    futures = [pool.submit(job, cuts[i], cuts[i + 1]) for i in range(k - 1)]
    job(cuts[k - 1], n)
    for future in futures:
        future.result()
