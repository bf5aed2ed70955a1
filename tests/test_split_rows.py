"""layers/split_rows.py: a row job split in parts covers every row once, gives the same bits as the whole
job, runs small jobs whole, and passes a part's error on."""

import threading

import numpy as np
import pytest

from lamina import layers
from lamina.layers import split_rows
from lamina.layers.mode import TRAIN


def test_parts_cover_every_row_once_and_run_on_other_threads():
    seen, names = [], set()

    def job(a, b):
        seen.append((a, b))
        names.add(threading.current_thread().name)

    with split_rows.using(3):
        split_rows.run(job, 10, split_rows.MIN_ELEMENTS)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]
    assert threading.current_thread().name in names
    assert any(name.startswith("lamina-rows") for name in names)
    assert split_rows.parts() == 1


def test_split_job_gives_the_same_bits_as_the_whole():
    x = np.random.default_rng(0).standard_normal((7, 50, 300)).astype(np.float32)
    whole, split = np.empty_like(x), np.empty_like(x)

    def softmax(y, a, b):
        e = np.exp(x[a:b] - x[a:b].max(axis=-1, keepdims=True))
        y[a:b] = e / e.sum(axis=-1, keepdims=True)

    softmax(whole, 0, len(x))
    with split_rows.using(2):
        split_rows.run(lambda a, b: softmax(split, a, b), len(x), x.size)
    assert np.array_equal(whole, split)


def test_small_jobs_and_single_rows_run_whole_on_the_calling_thread():
    calls = []
    with split_rows.using(2):
        split_rows.run(lambda a, b: calls.append((a, b, threading.current_thread().name)), 8,
                       split_rows.MIN_ELEMENTS - 1)
        split_rows.run(lambda a, b: calls.append((a, b, threading.current_thread().name)), 1,
                       split_rows.MIN_ELEMENTS * 4)
    here = threading.current_thread().name
    assert calls == [(0, 8, here), (0, 1, here)]


def test_an_error_in_a_part_reaches_the_caller():
    def job(a, b):
        if a == 0:
            raise ArithmeticError("part 0 failed")

    with split_rows.using(2), pytest.raises(ArithmeticError, match="part 0 failed"):
        split_rows.run(job, 4, split_rows.MIN_ELEMENTS)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_part_count_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="positive int"):
        split_rows.set_parts(bad)
    assert split_rows.parts() == 1


def test_blas_jobs_run_one_blas_thread_per_part_and_get_the_count_back():
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    seen = []
    with threadpool_limits(2, user_api="blas"), split_rows.using(2):
        split_rows.run(lambda a, b: seen.append(blas_threads()), 4, split_rows.MIN_ELEMENTS, blas=True)
        assert blas_threads() == [2] * len(blas_threads())
        with pytest.raises(ArithmeticError):
            split_rows.run(lambda a, b: 1 / 0, 4, split_rows.MIN_ELEMENTS, blas=True)
        assert blas_threads() == [2] * len(blas_threads())
        split_rows.run(lambda a, b: seen.append(blas_threads()), 4, split_rows.MIN_ELEMENTS)
    assert seen[:2] == [[1] * len(blas_threads())] * 2      # both parts, while they ran
    assert seen[2:] == [[2] * len(blas_threads())] * 2      # a job that does not call BLAS leaves it alone


@pytest.mark.parametrize("make", [
    lambda rng: layers.GELU(),
    lambda rng: layers.MultiHeadAttention.init(rng, 128, 4, causal=True),
], ids=["GELU", "MultiHeadAttention"])
def test_layers_that_split_their_rows_give_the_bits_of_the_whole(make):
    rng = np.random.default_rng(0)
    layer = make(rng)
    x = (3 * rng.standard_normal((12, 64, 128)) + 1).astype(np.float32)   # above MIN_ELEMENTS: split
    dy = rng.standard_normal(x.shape).astype(np.float32)
    runs = []
    for parts in (1, 2):
        with split_rows.using(parts):
            y, cache = layer.forward(x, TRAIN)
            dx, grads = layer.backward(cache, dy, TRAIN)
        runs.append([y, dx, *layers.parameters(grads)])
    for whole, split in zip(*runs):
        assert np.array_equal(whole, split)
