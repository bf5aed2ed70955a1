"""fit's threads="auto" while a CPU-bound process holds a core, against lamina's own idle one-thread epoch.

    python bench/contention.py                        # W1, W2 and the CNN, 3 fits each, this checkout
    python bench/contention.py --workloads CNN --samples 20000
    PYTHONPATH=/tmp/before python bench/contention.py # the same with lamina from another checkout

Issue 22's target: with another process on one core, every epoch of a fresh fit, the first included,
takes at most 1.3x lamina's own one-thread epoch on the idle machine. For each workload: a warm-up fit,
then one fit pinned at one thread with the machine left as it is (run this on a quiet machine: that is
the "idle" epoch), then a busy Python loop starts (another user's job on one of the cores) and ``--fits``
fresh one-epoch fits run at the default ``threads="auto"``. Every batch that ``BlasThreads`` times is
logged with the candidate it ran at, so the table shows how many batches ran on more than one thread (on a
machine with one core taken each of them collapses: a second thread waits a time slice at every handoff),
what the first of them cost against a one-thread batch, and each epoch over the idle one. The MLPs train
on all 60,000 images, the CNN (``bench/cnn.py``'s) on the first ``--samples``.
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
import cnn  # noqa: E402
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


def workload(name: str, samples: int):
    """(fit(threads=None: fit's default) -> None, a warm-up fit) for W1, W2 or the CNN."""
    from lamina import losses, optim
    if name == "CNN":
        (x, y), _ = cnn.images()
        x, y = x[:samples], y[:samples]
        model = cnn.lamina_model(cnn.arrays_of(cnn.start_state(samples)))
        loss = losses.SoftmaxCrossEntropy()
        opt = optim.SGD(learning_rate=cnn.LEARNING_RATE, momentum=cnn.MOMENTUM)
        batch = cnn.BATCH
    else:
        (x, y), _ = H.mnist_uint8()
        x = x.astype(np.float32) * np.float32(1 / 255)
        model, loss, opt = H.lamina_setup(name)
        batch = H.WORKLOADS[name]["batch_size"]

    def fit(threads=None, n=len(x)):
        H.lamina_fit(model, loss, opt, x[:n], y[:n], epochs=1, batch_size=batch,
                     rng=np.random.default_rng(H.SHUFFLE_SEED), threads=threads)
    return fit, lambda: fit(n=2048)


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2", "CNN"], choices=["W1", "W2", "CNN"])
    parser.add_argument("--fits", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10000, help="the CNN's training images")
    args = parser.parse_args()
    print(f"# bench/contention.py {' '.join(sys.argv[1:])}: lamina from {Path(T.__file__).parents[1]}")
    print("\n".join(f"- {line}" for line in H.machine_header()))
    print()
    log = logged()
    print("| workload | fit | epoch (s) | / idle 1-thread epoch | batches on 2+ threads | their seconds | "
          "first / a 1-thread batch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    worst = {}
    for name in args.workloads:
        fit, warm = workload(name, args.samples)
        warm()
        idle = timed(lambda: fit(threads=1))
        print(f"| {name} | idle, 1 thread | {idle:.2f} | 1.00 | 0 | 0 | - |", flush=True)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.3)
            for i in range(args.fits):
                log.clear()
                seconds = timed(fit)
                more = [s for candidate, s in log if max(T.blas_and_parts(candidate)) > 1]
                one = statistics.median(s for candidate, s in log if max(T.blas_and_parts(candidate)) == 1)
                worst[name] = max(worst.get(name, 0.0), seconds / idle)
                print(f"| {name} | busy, auto, {i + 1} | {seconds:.2f} | {seconds / idle:.2f} | "
                      f"{len(more)} | {sum(more):.3f} | {more[0] / one if more else 0:.0f}x |", flush=True)
        finally:
            hog.kill()
            hog.wait()
    print("\nworst busy epoch / idle one-thread epoch (target <= 1.3): "
          + ", ".join(f"{name} {ratio:.2f}" for name, ratio in worst.items()))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
