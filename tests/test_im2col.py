"""layers/im2col.py's scratch buffers: kept per thread and name, grown when too small."""

import threading

import numpy as np

from lamina.layers.im2col import scratch


def test_scratch_is_reused_by_name_grown_when_too_small_and_separate_per_thread():
    a = scratch("test-a", (4, 5), np.float32)
    a[...] = 7
    again = scratch("test-a", (2, 3), np.float64)
    assert again.shape == (2, 3) and again.dtype == np.float64
    assert np.shares_memory(a, again)
    assert not np.shares_memory(a, scratch("test-b", (4, 5), np.float32))
    grown = scratch("test-a", (100, 100), np.float32)
    assert grown.shape == (100, 100) and not np.shares_memory(a, grown)
    other = []
    thread = threading.Thread(target=lambda: other.append(scratch("test-a", (100, 100), np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(grown, other[0])
