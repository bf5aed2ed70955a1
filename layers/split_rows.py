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

A job whose parts call BLAS (a convolution's blocks: a copy, then a matrix product) says ``blas=True``: while
its parts run, BLAS runs one thread in each of them, so the parts are the threads (each its own copy and
product, in its own core's cache) instead of BLAS's threads waiting on one copy after another.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from lamina.layers.settings import positive_int

MIN_ELEMENTS = 1 << 16
"""The least array size worth splitting (elements): below it, a thread handoff costs more than it saves."""

_parts = 1
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_blas = None


def parts() -> int:
    """How many parts a large job is split into now."""
    return _parts


def set_parts(n: int) -> int:
    """Split large jobs in ``n`` parts from now on (1: run them whole); returns the previous count."""
    global _parts
    n = positive_int("split_rows.set_parts", "n", n)
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


def blas_libraries() -> list:
    """The loaded BLAS libraries' thread controls (threadpoolctl's, looked up once per process)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController   # only when a job first needs it
        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def run(job, n: int, size: int, *, blas: bool = False) -> None:
    """``job(start, stop)`` over the rows ``[0, n)``: whole, or in ``parts()`` slices that run at once when
    ``size`` (the elements the job touches) is at least ``MIN_ELEMENTS``; the last slice runs here.
    ``blas``: the job calls BLAS, which runs one thread per part while the parts run."""
    k = min(_parts, n)
    if k < 2 or size < MIN_ELEMENTS or threading.current_thread().name.startswith("lamina-rows"):
        job(0, n)
        return
    cuts = [n * i // k for i in range(k + 1)]
    pool = _workers(k - 1)
    libraries = blas_libraries() if blas else []
    saved = [library.num_threads for library in libraries]
    for library in libraries:
        library.set_num_threads(1)
    try:
        futures = [pool.submit(job, cuts[i], cuts[i + 1]) for i in range(k - 1)]
        try:
            job(cuts[k - 1], n)
        finally:
            for future in futures:
                future.exception()      # every part has finished before BLAS gets its threads back
        for future in futures:
            future.result()
    finally:
        for library, count in zip(libraries, saved):
            library.set_num_threads(count)
