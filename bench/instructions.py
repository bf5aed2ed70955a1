"""Instructions per training step under callgrind: fit against the careful NumPy loop, noise-free.

    python bench/instructions.py                           # W1, this checkout
    python bench/instructions.py --workloads W2 --batches 20 --root /tmp/other-checkout

Each column trains 1 and then 3 epochs of 100 batches (the first 100 batches' worth of MNIST, the
benchmark's weights and batch order) in a fresh process under ``valgrind --tool=callgrind``; the
difference of the two totals over 200 steps is the cost of one step, imports and set-up cancelled
(``--batches N``: epochs of N batches instead; W2's step is ~15x W1's).
``--root`` imports lamina from another checkout (the harness and the reference stay this checkout's):
the same yardstick for two trees, e.g. lamina 0.2. One thread; the two runs of a column go at once
(about 3-5 minutes per column on W1).
Needs valgrind; run it at ``nice -n 19``: instruction counts do not depend on the load.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

def train(root: Path, column: str, workload: str, epochs: int, batches: int) -> None:
    """The child: ``epochs`` epochs of ``batches`` batches of ``column`` ("fit" or "reference")."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))   # this checkout's harness; lamina from root
    import harness as H
    import numpy as np
    import reference as R
    from threadpoolctl import threadpool_limits

    w = H.WORKLOADS[workload]
    (x, y), _ = H.mnist_uint8()
    n = w["batch_size"] * batches
    x, y = (x[:n] / np.float32(255)).astype(np.float32), y[:n]
    with threadpool_limits(1):
        if column == "reference":
            mlp = R.MLP(H.lamina_arrays(H.lamina_model(w["sizes"])), w["learning_rate"], w["momentum"])
            rng = np.random.default_rng(H.SHUFFLE_SEED)
            for _ in range(epochs):
                mlp.train_epoch(x, y, w["batch_size"], rng)
        else:
            model, loss, opt = H.lamina_setup(workload)
            H.lamina_fit(model, loss, opt, x, y, epochs=epochs, batch_size=w["batch_size"],
                         rng=np.random.default_rng(H.SHUFFLE_SEED), threads=1)


def collected(root: Path, column: str, workload: str, epochs: int, batches: int) -> int:
    """The total instructions of one child run under callgrind."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
                              sys.executable, __file__, "--child", column, workload, str(epochs),
                              str(batches), "--root", str(root)],
                             env=env, capture_output=True, text=True, cwd=folder)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode or not found:
        raise RuntimeError(f"callgrind run of {column} {workload} failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def per_step(root: Path, column: str, workload: str, batches: int) -> float:
    with ThreadPoolExecutor(2) as pool:
        one, three = pool.map(lambda e: collected(root, column, workload, e, batches), (1, 3))
    return (three - one) / (2 * batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=["W1"])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose lamina is measured")
    parser.add_argument("--columns", nargs="+", default=["reference", "fit"])
    parser.add_argument("--batches", type=int, default=100, help="batches per epoch (default 100)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.root.resolve()
    if args.child:
        column, workload, epochs, batches = args.child
        return train(root, column, workload, int(epochs), int(batches))
    print(f"# instructions per training step (callgrind, one thread), lamina from {root}\n")
    print("| workload | " + " | ".join(args.columns) + " | fit / reference |")
    print("| --- |" + " --- |" * (len(args.columns) + 1))
    for workload in args.workloads:
        counts = {column: per_step(root, column, workload, args.batches) for column in args.columns}
        ratio = counts["fit"] / counts["reference"] if {"fit", "reference"} <= counts.keys() else float("nan")
        print(f"| {workload} | " + " | ".join(f"{counts[c] / 1e6:.3f} M" for c in args.columns)
              + f" | {ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
