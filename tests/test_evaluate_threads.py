"""evaluate's threads="auto": the count is chosen once per process, so repeated calls give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

from lamina import layers, losses, optim
from lamina.optim import evaluation


@pytest.fixture
def auto_threads(monkeypatch):
    """threads="auto" in force (the suite pins $LAMINA_THREADS) and no count chosen yet in this process."""
    monkeypatch.delenv("LAMINA_THREADS", raising=False)
    monkeypatch.setattr(evaluation, "_CHOSEN", {})


def data(n=2000):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 30)).astype(np.float32), rng.integers(0, 5, n)


def test_auto_chooses_once_and_repeated_calls_give_the_same_bits(auto_threads, monkeypatch):
    model = layers.mlp(np.random.default_rng(1), [30, 64, 5])
    x, y = data()
    timed = []
    fastest = evaluation._fastest
    monkeypatch.setattr(evaluation, "_fastest", lambda *a: timed.append(1) or fastest(*a))
    results = [optim.evaluate(model, losses.SoftmaxCrossEntropy(), x, y, batch_size=250) for _ in range(3)]
    assert len(timed) == 1 and evaluation._CHOSEN["count"] in optim.threads.settings(2)
    assert results[0] == results[1] == results[2]


def test_a_small_call_runs_on_one_thread_and_chooses_nothing(auto_threads):
    model = layers.mlp(np.random.default_rng(1), [30, 5])
    x, y = data(100)
    threads = evaluation.evaluation_threads("auto", model, x, None, 250)
    assert threads.setting == 1 and "count" not in evaluation._CHOSEN


def test_a_pinned_count_is_kept_as_given(auto_threads):
    model = layers.mlp(np.random.default_rng(1), [30, 5])
    x, _ = data()
    assert evaluation.evaluation_threads(2, model, x, None, 100).setting == 2
    assert evaluation.evaluation_threads(None, model, x, None, 100).setting is None
    assert "count" not in evaluation._CHOSEN
