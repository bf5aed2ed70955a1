"""examples/sweep.py: a search on a real dask LocalCluster (two worker processes, loopback) scores as the
sequential one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("dask.distributed")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sweep.py"


def sweep_module():
    spec = importlib.util.spec_from_file_location("example_sweep", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sweep = sweep_module()


@pytest.fixture(scope="module")
def digits():
    from lamina import data
    (x, y), _ = data.mnist()
    return x[:300], y[:300]


def small_search():
    from scipy.stats import loguniform
    space = {"learning_rate": loguniform(1e-3, 1e-1), "hidden": [(8,), (16,)], "batch_size": [32, 64],
             "optimizer": ["sgd", "adam", "adamw", "rmsprop"]}
    return sweep.make_search(iterations=4, folds=2, epochs=1, seed=3, space=space)


def test_a_local_cluster_search_scores_as_the_sequential_one(digits):
    x, y = digits
    sequential = sweep.run(small_search(), x, y)
    cluster = sweep.local_cluster(2, dashboard=None, host="127.0.0.1")
    try:
        client = sweep.connect(cluster)
        try:
            assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
            spread = sweep.run(small_search(), x, y, client)
            ran_on = set(client.run(lambda: 1))
        finally:
            client.close()
    finally:
        cluster.close()
    assert len(ran_on) == 2
    for key in ("params", "mean_test_score", "split0_test_score", "split1_test_score", "rank_test_score"):
        assert list(map(repr, sequential.cv_results_[key])) == list(map(repr, spread.cv_results_[key])), key
    assert np.isfinite(spread.cv_results_["mean_test_score"]).all()
    np.testing.assert_array_equal(spread.predict(x), sequential.predict(x))  # the refits agree too
    table = sweep.ranked(spread)
    assert table.count("\n") == 5 and table.splitlines()[2].startswith("| 1 |")


def test_saved_best_model_and_plot(tmp_path, digits):
    from lamina import layers
    x, y = digits
    search = sweep.run(small_search(), x, y)
    sweep.save_best(tmp_path / "best.npz", search)
    model = layers.load(tmp_path / "best.npz")
    np.testing.assert_array_equal(model(x), search.best_estimator_.model_(x))
    extra = layers.load_extra(tmp_path / "best.npz")
    assert extra["cv_accuracy"] == search.best_score_ and extra["classes"] == list(range(10))
    pytest.importorskip("matplotlib")
    assert sweep.plot(tmp_path / "scores.png", search) and (tmp_path / "scores.png").stat().st_size > 1000


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds():
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(EXAMPLE), "--scheduler", "tcp://127.0.0.1:9", "--timeout",
                           "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and time.perf_counter() - start < 30
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:9 within 2 s" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(sweep.SchedulerUnreachable, match="not an address; expected e.g. tcp://HOST:8786"):
        sweep.connect("localhost:8786")


def test_flags_parse_and_scheduler_excludes_sequential():
    args = sweep.parser().parse_args(["--samples", "500", "--scheduler", "tcp://h:8786", "--no-plot"])
    assert args.samples == 500 and args.scheduler == "tcp://h:8786" and args.plot is None
    with pytest.raises(SystemExit):
        sweep.parser().parse_args(["--scheduler", "tcp://h:8786", "--sequential"])
