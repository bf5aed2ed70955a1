"""How much faster is examples/sweep.py's search on a 2-worker dask LocalCluster than in one process?

    pip install -e '.[dask]'
    python bench/sweep.py              # 8 candidates x 3 folds, 6000 MNIST images, 2 epochs
    python bench/sweep.py --samples 3000 --iterations 4 --workers 2 --rounds 1

The same RandomizedSearchCV (examples/sweep.py's make_search: NetClassifier float32, one BLAS
thread, seeded; refit off, so only the parallel part is timed) runs sequentially in this process
(n_jobs=1) and through joblib's dask backend on a LocalCluster of ``--workers`` worker processes
(one thread, one BLAS thread each). The cluster is started, and every worker has imported lamina and
scikit-learn, before the clock starts. Both runs must give the same scores (checked), and the
speed-up is the sequential time over the cluster's (best of ``--rounds``). Prints Markdown.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sweep_module():
    """examples/sweep.py as a module."""
    spec = importlib.util.spec_from_file_location("sweep_example", ROOT / "examples" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def warm_up() -> None:
    """Import what a fit needs (run on each worker before timing)."""
    import lamina.estimators  # noqa: F401
    import sklearn.model_selection  # noqa: F401


def cpu_seconds() -> float:
    """CPU time of this process so far (user + system, all threads)."""
    return time.process_time()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=6000)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from lamina import data
    sweep = sweep_module()
    (x_train, y_train), _ = data.mnist()
    x, y = x_train[:args.samples], y_train[:args.samples]

    def search():
        return sweep.make_search(iterations=args.iterations, folds=args.folds, epochs=args.epochs,
                                 seed=args.seed,
                                 refit=False)

    times = {"sequential": [], "cluster": []}
    cpu = {"sequential": [], "cluster": []}
    scores = {}
    cluster = sweep.local_cluster(args.workers, dashboard=None, host="127.0.0.1")
    client = sweep.connect(cluster)
    try:
        client.run(warm_up)
        for _ in range(args.rounds):
            for where in ("sequential", "cluster"):
                used = sum(client.run(cpu_seconds).values()) + cpu_seconds()
                start = time.perf_counter()
                done = sweep.run(search(), x, y, None if where == "sequential" else client)
                times[where].append(time.perf_counter() - start)
                cpu[where].append(sum(client.run(cpu_seconds).values()) + cpu_seconds() - used)
                scores[where] = done.cv_results_["mean_test_score"]
    finally:
        client.close()
        cluster.close()

    same = np.array_equal(scores["sequential"], scores["cluster"], equal_nan=True)
    seq, par = min(times["sequential"]), min(times["cluster"])
    try:
        revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                  capture_output=True,
                                  text=True).stdout.strip()
    except OSError:
        revision = "?"
    print(f"### Search on a dask LocalCluster ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, lamina {revision}, load average {os.getloadavg()[0]:.2f})\n")
    print(f"{args.iterations} candidates x {args.folds} folds = {args.iterations * args.folds} fits of "
          f"NetClassifier on {len(x)} MNIST images, {args.epochs} epochs each; best of {args.rounds} "
          "rounds.\n")
    cpu_seq, cpu_par = min(cpu["sequential"]), min(cpu["cluster"])
    print("| run | seconds | speed-up | CPU seconds (this process + workers) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| sequential (n_jobs=1, one process) | {seq:.1f} | 1.00x | {cpu_seq:.1f} |")
    print(f"| LocalCluster, {args.workers} worker processes x 1 thread | {par:.1f} | {seq / par:.2f}x | "
          f"{cpu_par:.1f} |")
    print(f"\nCPU spent by the cluster's run over the sequential one: {cpu_par / cpu_seq:.2f} (the overhead "
          "of shipping the work; on an otherwise idle machine the speed-up nears workers / this). A busy "
          "machine (load average above the core count) disturbs the wall-clock columns, not this ratio.")
    print(f"\nsame scores in both runs: {'yes' if same else 'NO'}; all rounds (s): "
          f"sequential {', '.join(f'{t:.1f}' for t in times['sequential'])}; "
          f"cluster {', '.join(f'{t:.1f}' for t in times['cluster'])}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
