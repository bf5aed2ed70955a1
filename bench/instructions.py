"""Instructions per training step under callgrind: fit against the careful NumPy loop, noise-free.

    python bench/instructions.py                           # W1, this checkout
    python bench/instructions.py --workloads W2 --batches 20 --root /tmp/other-checkout

Each column trains 1 and then 3 epochs of 100 batches (the first 100 batches' worth of MNIST, the
benchmark's weights and batch order) in a fresh process under ``valgrind --tool=callgrind``; the
difference of the two totals over 200 steps is the cost of one step, imports and set-up cancelled
(``--batches N``: epochs of N batches instead; W2's step is ~15x W1's).
``--root`` imports lamina from another checkout (the harness and the reference stay this checkout's):
the same yardstick for two trees, e.g. lamina 0.2. One thread; the two runs of a column go at once
(about 3-5 minutes per column on W1). ``--simulate`` adds callgrind's cache and branch simulation (about
twice as slow): instruction- and data-cache misses and mispredicted branches per step.
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


SIMULATE = ["--cache-sim=yes", "--branch-sim=yes"]
EVENTS = {"Ir": "instructions", "I1mr": "instruction-cache (L1) misses",
          "D1mr": "data-cache (L1) read misses", "D1mw": "data-cache (L1) write misses",
          "Bc": "conditional branches", "Bcm": "conditional branches mispredicted", "Bi": "indirect branches",
          "Bim": "indirect branches mispredicted"}


def collected(root: Path, column: str, workload: str, epochs: int, batches: int,
              simulate: bool = False) -> dict:
    """{event: total} of one child run under callgrind (instructions only, or with the cache and branch
    simulation)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={folder}/out",
                              *(SIMULATE if simulate else []), sys.executable, __file__, "--child", column,
                              workload, str(epochs), str(batches), "--root", str(root)],
                             env=env, capture_output=True, text=True, cwd=folder)
        out = Path(folder, "out")
        names = re.search(r"^events: (.+)$", out.read_text(), re.M) if out.exists() else None
    found = re.search(r"Collected : ([\d ]+)", run.stderr)
    if run.returncode or not found or not names:
        raise RuntimeError(f"callgrind run of {column} {workload} failed:\n{run.stderr[-2000:]}")
    return dict(zip(names.group(1).split(), map(int, found.group(1).split())))


def per_step(root: Path, column: str, workload: str, batches: int, simulate: bool = False) -> dict:
    """{event: count per training step}: the difference of 3 and 1 epochs."""
    with ThreadPoolExecutor(2) as pool:
        one, three = pool.map(lambda e: collected(root, column, workload, e, batches, simulate), (1, 3))
    return {event: (three[event] - one[event]) / (2 * batches) for event in one}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", default=["W1"])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout whose lamina is measured")
    parser.add_argument("--columns", nargs="+", default=["reference", "fit"])
    parser.add_argument("--batches", type=int, default=100, help="batches per epoch (default 100)")
    parser.add_argument("--simulate", action="store_true",
                        help="also callgrind's cache and branch simulation: misses and mispredicts per step")
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
        counts = {column: per_step(root, column, workload, args.batches, args.simulate)
                  for column in args.columns}
        ratio = (counts["fit"]["Ir"] / counts["reference"]["Ir"] if {"fit", "reference"} <= counts.keys()
                 else float("nan"))
        print(f"| {workload} | " + " | ".join(f"{counts[c]['Ir'] / 1e6:.3f} M" for c in args.columns)
              + f" | {ratio:.3f} |", flush=True)
        if args.simulate:
            print(f"\n{workload}, per step:\n")
            print("| event | " + " | ".join(args.columns) + " | fit / reference |")
            print("| --- |" + " --- |" * (len(args.columns) + 1))
            both = {"fit", "reference"} <= counts.keys()
            for event, name in EVENTS.items():
                values = " | ".join(f"{counts[c][event]:,.0f}" for c in args.columns)
                ratio = (counts["fit"][event] / counts["reference"][event]
                         if both and counts["reference"][event] else float("nan"))
                print(f"| {name} ({event}) | {values} | {ratio:.3f} |")
            print()


if __name__ == "__main__":
    main()
