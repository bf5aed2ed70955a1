"""fit's threads="auto" while a CPU-bound process holds a core: what each fresh fit spends on more threads.

    python bench/contention.py                        # W1 and W2, 3 fits each, this checkout
    PYTHONPATH=/tmp/before python bench/contention.py # the same with lamina from another checkout

A busy Python loop runs for the whole measurement (another user's job on one of the cores); each fit is
a fresh one-epoch ``optim.fit`` at its default ``threads="auto"`` after a warm-up fit. Every batch that
``BlasThreads`` times is logged with the thread count it ran at, so the table shows how many batches ran
at more than one thread (on a machine with one core taken, each of them collapses: OpenBLAS's second
thread waits a time slice at every matrix product), what the first of them cost against a one-thread
batch, and the epoch. Run it once per checkout inside one locked run for a same-run before/after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402

from lamina.optim import threads as T  # noqa: E402


def logged() -> list[tuple[int, float]]:
    """[(thread count, seconds)] of every batch BlasThreads times from now on."""
    log, record = [], T.BlasThreads.record

    def logging_record(self, n, seconds):
        log.append((self.current, seconds))
        record(self, n, seconds)

    T.BlasThreads.record = logging_record
    return log


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=["W1", "W2"])
    parser.add_argument("--fits", type=int, default=3)
    args = parser.parse_args()
    print(f"# bench/contention.py {' '.join(sys.argv[1:])}: lamina from {Path(T.__file__).parents[1]}")
    print("\n".join(f"- {line}" for line in H.machine_header()))
    print()
    (x, y), _ = H.mnist_uint8()
    x = x.astype(np.float32) * np.float32(1 / 255)
    log = logged()
    print("| workload | fit | epoch (s) | batches at 2+ threads | their seconds | first / a 1-thread batch |")
    print("| --- | --- | --- | --- | --- | --- |")
    for wl in args.workloads:
        w = H.WORKLOADS[wl]
        model, loss, opt = H.lamina_setup(wl)
        H.lamina_fit(model, loss, opt, x[:2048], y[:2048], epochs=1, batch_size=w["batch_size"],
                     rng=np.random.default_rng(H.SHUFFLE_SEED))
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.3)
            for i in range(args.fits):
                log.clear()
                started = time.perf_counter()
                H.lamina_fit(model, loss, opt, x, y, epochs=1, batch_size=w["batch_size"],
                             rng=np.random.default_rng(H.SHUFFLE_SEED))
                seconds = time.perf_counter() - started
                more = [s for count, s in log if count > 1]
                one = statistics.median(s for count, s in log if count == 1)
                print(f"| {wl} | {i + 1} | {seconds:.2f} | {len(more)} | {sum(more):.3f} | "
                      f"{more[0] / one if more else 0:.0f}x |", flush=True)
        finally:
            hog.kill()
            hog.wait()
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
