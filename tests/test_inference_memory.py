"""Inference keeps no caches and runs in chunks sized by the positions a sample holds, so ``model(x)`` and
``evaluate`` hold about one layer's work at a time."""

import tracemalloc

import numpy as np

from lamina import layers
from lamina.layers.layer import ROW_ALIGN, ROWS_PER_CHUNK, rows_per_chunk
from lamina.layers.mode import INFER


def deep_mlp(width=256, depth=10):
    rng = np.random.default_rng(0)
    stack = []
    for _ in range(depth):
        stack += [layers.Dense.init(rng, width, width), layers.ReLU()]
    return layers.Sequence(stack)


def test_without_caches_the_output_is_the_same_bits_and_no_cache_is_kept():
    model = layers.Sequence([deep_mlp(depth=2), layers.Residual(deep_mlp(depth=1))])
    x = np.random.default_rng(1).standard_normal((50, 256)).astype(np.float32)
    y, cache = model.forward(x, layers.EVAL)
    y_infer, nothing = model.forward(x, INFER)
    assert np.array_equal(y, y_infer)
    assert len(cache) == 2 and nothing == ()


def test_inference_holds_about_one_layer_of_work_at_a_time():
    model = deep_mlp()
    x = np.random.default_rng(1).standard_normal((1024, 256)).astype(np.float32)
    one_layer = x.nbytes                                  # 1 MB; the twenty caches of a kept forward: 20 MB
    tracemalloc.start()
    try:
        model(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * one_layer, f"model(x) peaked at {peak / one_layer:.1f} layer outputs"


def test_chunks_count_the_positions_of_a_sample():
    assert rows_per_chunk(np.zeros((5000, 784), np.float32)) == ROWS_PER_CHUNK          # one position each
    assert rows_per_chunk(np.zeros((5000, 64), np.int64)) == 256                       # ids: 64 positions
    assert rows_per_chunk(np.zeros((5000, 64, 128), np.float32)) == 256                # 64 steps of 128
    assert rows_per_chunk(np.zeros((5000, 28, 28, 1), np.float32)) == ROW_ALIGN       # 784 pixels
    assert rows_per_chunk((np.zeros((9, 3)), np.zeros((9, 32), np.int32)), 100) == 100
