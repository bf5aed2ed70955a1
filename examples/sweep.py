"""A randomized hyper-parameter search for an MNIST MLP, spread over a dask cluster.

    pip install -e '.[dask]'
    python examples/sweep.py                               # a LocalCluster: one worker process per core
    python examples/sweep.py --samples 5000 --iterations 8 # a smaller search
    python examples/sweep.py --scheduler tcp://HOST:8786   # an existing cluster (dask scheduler + workers)
    python examples/sweep.py --sequential                  # the same search in this process, no cluster

scikit-learn's RandomizedSearchCV tries settings of lamina.estimators.NetClassifier (learning
rate, hidden widths, batch size, optimizer) with k-fold cross-validation on the first
``--samples`` MNIST training images; joblib's dask backend sends each fit to a worker. Every fit
is seeded (``--seed``) and uses one BLAS thread, so the scores do not depend on where a fit ran:
the cluster's table is the sequential one. Prints the ranked table and the dashboard address,
saves the best model (``layers.save``: its settings and history ride along) and, when matplotlib
is installed, a plot of the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from lamina import data, layers

SEARCH_SPACE_NOTE = "learning rate log-uniform in [1e-4, 1e-1]; widths, batch size and optimizer uniform"


def search_space() -> dict:
    """What the search draws from (scipy distributions and lists, as RandomizedSearchCV takes them)."""
    from scipy.stats import loguniform
    return {"learning_rate": loguniform(1e-4, 1e-1),
            "hidden": [(64,), (128,), (256,), (128, 64)],
            "batch_size": [32, 64, 128, 256],
            "optimizer": ["sgd", "adam", "adamw", "rmsprop"]}


def make_search(*, iterations: int = 12, folds: int = 3, epochs: int = 3, seed: int = 0,
                space: dict | None = None,
                refit: bool = True):
    """The search: NetClassifier (float32, one BLAS thread, seeded) under RandomizedSearchCV, every core of
    the backend."""
    from sklearn.model_selection import RandomizedSearchCV

    from lamina.estimators import NetClassifier
    net = NetClassifier(epochs=epochs, dtype=np.float32, threads=1, random_state=seed)
    return RandomizedSearchCV(net, search_space() if space is None else space, n_iter=iterations, cv=folds,
                              random_state=seed, n_jobs=-1, refit=refit, error_score=np.nan)


WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask's nannies set MALLOC_TRIM_THRESHOLD_ in their workers, which fixes glibc's mmap threshold at
128 KiB: every parameter-sized array of a training step is then a fresh mmap, and a fit costs about
twice the CPU (measured with bench/sweep.py). The LocalCluster leaves glibc's default; for workers
of your own cluster put ``MALLOC_TRIM_THRESHOLD_: null`` under ``distributed.nanny.pre-spawn-environ``
in their dask config."""


def local_cluster(workers: int, dashboard: str | None = ":8787", host: str | None = None):
    """A dask LocalCluster of ``workers`` worker processes, one thread and one BLAS thread each."""
    import dask
    from dask.distributed import LocalCluster
    one_thread = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    with dask.config.set(WORKER_ENVIRON):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=host,
                            dashboard_address=dashboard, env=one_thread)


class SchedulerUnreachable(ConnectionError):
    """The dask scheduler at the given address did not answer in time."""


def connect(address, timeout: float = 5.0):
    """A dask Client of ``address`` (a scheduler address or a LocalCluster); a clear error after ``timeout``
    seconds."""
    from dask.distributed import Client
    if isinstance(address, str) and "://" not in address:
        raise SchedulerUnreachable(f"--scheduler {address!r} is not an address; expected e.g. "
                                   "tcp://HOST:8786")
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as error:
        raise SchedulerUnreachable(f"cannot reach the dask scheduler at {address} within {timeout:g} s "
                                   f"({type(error).__name__}: {error}); is `dask scheduler` running there "
                                   "and the port open?") from None
    except Exception as error:  # something answered, but not as a dask scheduler does
        raise SchedulerUnreachable(f"cannot connect to a dask scheduler at {address}: what answered there "
                                   f"does not speak dask's protocol ({type(error).__name__}: "
                                   f"{error})") from None


def dashboard(client) -> str:
    """The dashboard's address (served by the scheduler when bokeh is installed)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return f"{client.dashboard_link} (served only with bokeh: pip install -e '.[dask]')"
    return client.dashboard_link


def run(search, x, y, client=None):
    """Fit the search: on the client's cluster through joblib's dask backend, or in this process (client
    None)."""
    if client is None:
        return search.set_params(n_jobs=1).fit(x, y)
    from joblib import parallel_config
    with parallel_config(backend="dask"):
        return search.fit(x, y)


def ranked(search, rows: int | None = None) -> str:
    """The candidates as a Markdown table, best first: rank, mean and spread of the fold scores, fit time,
    settings."""
    results = search.cv_results_
    order = np.argsort(results["rank_test_score"], kind="stable")[:rows]
    lines = ["| rank | accuracy (mean ± std over folds) | fit s | learning_rate | hidden | batch_size | "
             "optimizer |",
             "| ---: | --- | ---: | ---: | --- | ---: | --- |"]
    for i in order:
        p = results["params"][i]
        lines.append(f"| {results['rank_test_score'][i]} | {results['mean_test_score'][i]:.4f} ± "
                     f"{results['std_test_score'][i]:.4f} | {results['mean_fit_time'][i]:.1f} | "
                     f"{p.get('learning_rate', float('nan')):.2e} | {p.get('hidden')} | "
                     f"{p.get('batch_size')} | {p.get('optimizer')} |")
    return "\n".join(lines)


def save_best(path: Path, search) -> None:
    """The refitted best model with its settings, score and history (JSON beside the arrays)."""
    best = search.best_estimator_
    params = {key: list(value) if isinstance(value, tuple) else
              value.item() if isinstance(value, np.generic) else value
              for key, value in search.best_params_.items()}
    layers.save(path, best.model_, params=params, cv_accuracy=float(search.best_score_),
                history=best.history_,
                classes=best.classes_.tolist())


def plot(path: Path, search) -> bool:
    """Mean cross-validated accuracy against the learning rate, one colour per optimizer; False without
    matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    results = search.cv_results_
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = [p.get("optimizer") for p in results["params"]]
    for name in sorted(set(names)):
        rows = [i for i, n in enumerate(names) if n == name]
        ax.errorbar([results["params"][i]["learning_rate"] for i in rows], results["mean_test_score"][rows],
                    yerr=results["std_test_score"][rows], fmt="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("cross-validated accuracy")
    ax.set_title(f"{len(names)} candidates, {search.n_splits_} folds")
    ax.legend(title="optimizer")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--samples", type=int, default=10000, help="MNIST training images the search uses (the "
                                                              "first N)")
    p.add_argument("--iterations", type=int, default=12, help="candidates drawn")
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds")
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit")
    p.add_argument("--seed", type=int, default=0, help="seeds the draws of the search and every fit")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                       help="an existing dask scheduler; default: start a LocalCluster")
    where.add_argument("--sequential", action="store_true", help="no cluster: every fit in this process")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="LocalCluster worker processes")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the scheduler")
    p.add_argument("--out", type=Path, default=Path("sweep-best.npz"), help="where the best model is saved")
    p.add_argument("--plot", type=Path, default=Path("sweep-scores.png"), help="the plot of the scores")
    p.add_argument("--no-plot", dest="plot", action="store_const", const=None)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    for name in ("samples", "iterations", "folds", "epochs", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.folds < 2:
        p.error("--folds must be at least 2")
    try:
        import dask.distributed  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as error:
        sys.exit(f"sweep.py needs scikit-learn and dask: pip install -e '.[dask]' ({error})")

    cluster = client = None
    try:
        if args.scheduler is not None:
            client = connect(args.scheduler, args.timeout)
        elif not args.sequential:
            cluster = local_cluster(args.workers)
            client = connect(cluster, args.timeout)
        if client is not None:
            workers = len(client.scheduler_info(n_workers=-1)["workers"])
            print(f"cluster: {client.scheduler.address}, {workers} workers; dashboard: {dashboard(client)}")
        (x_train, y_train), (x_test, y_test) = data.mnist()
        x, y = x_train[:args.samples], y_train[:args.samples]
        search = make_search(iterations=args.iterations, folds=args.folds, epochs=args.epochs, seed=args.seed)
        print(f"search: {args.iterations} candidates x {args.folds} folds on {len(x)} MNIST images, "
              f"{args.epochs} epochs each ({SEARCH_SPACE_NOTE})")
        start = time.perf_counter()
        run(search, x, y, client)
        seconds = time.perf_counter() - start
    except SchedulerUnreachable as error:
        sys.exit(f"sweep.py: {error}")
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    print(f"\n{ranked(search)}\n")
    best = search.best_estimator_
    print(f"searched in {seconds:.1f} s; best: {json.dumps(search.best_params_, default=str)}, "
          f"cross-validated accuracy {search.best_score_:.4f}, test accuracy "
          f"{best.score(x_test, y_test):.4f} (refit on all {len(x)})")
    save_best(args.out, search)
    print(f"best model saved to {args.out} (lamina.layers.load)")
    if args.plot is not None:
        print(f"scores plotted in {args.plot}" if plot(args.plot, search)
              else "no plot: matplotlib is not installed (pip install -e '.[plot]')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
