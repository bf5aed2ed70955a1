"""What recording with diagnostics.Monitor costs: an epoch of the main job with and without it, in one run.

    python bench/monitor.py                    # main job (784-256-10, batch 64), 3 rounds, 1 BLAS thread
    python bench/monitor.py --rounds 5 --every 1 10 50

Each round trains one epoch from the same weights and the same shuffle without the callback,
then with ``Monitor(every=...)`` for each ``every`` asked for (default: ``DEFAULT_EVERY`` and 1, the
worst case), in an order that changes from round to round. The table gives the median over rounds
of each epoch's seconds and its ratio to the epoch without the callback measured in the same round,
so only ratios from one run are compared. Prints Markdown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from harness import machine_header

from lamina import data, diagnostics, layers, losses, optim


def epoch(x, y, every: int | None, threads: int) -> tuple[float, int]:
    """Seconds of one epoch of the main job (with a Monitor recording every ``every`` batches) and how many
    records."""
    model = layers.mlp(np.random.default_rng(0), [784, 256, 10])
    opt = optim.SGD(optim.Cosine(0.1, -(-len(x) // 64)), momentum=0.9, nesterov=True)
    callbacks = [] if every is None else [diagnostics.Monitor(every=every)]
    started = time.perf_counter()
    optim.fit(model, losses.SoftmaxCrossEntropy(), opt, x, y, epochs=1, batch_size=64,
              rng=np.random.default_rng(1), progress=False, callbacks=callbacks, threads=threads)
    seconds = time.perf_counter() - started
    return seconds, (len(callbacks[0].records["step"]) if callbacks else 0)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--every", type=int, nargs="+", default=[diagnostics.DEFAULT_EVERY, 1])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    (x, y), _ = data.mnist()
    epoch(x[:2000], y[:2000], None, args.threads)  # warm up: imports, caches, BLAS
    settings = [None, *args.every]
    times = {s: [] for s in settings}
    ratios = {s: [] for s in settings}
    records = {}
    for r in range(args.rounds):
        order = settings[r % len(settings):] + settings[:r % len(settings)]
        measured = {}
        for s in order:
            measured[s], records[s] = epoch(x, y, s, args.threads)
            print(f"round {r + 1}: every={s}: {measured[s]:.2f} s", file=sys.stderr)
        for s in settings:
            times[s].append(measured[s])
            ratios[s].append(measured[s] / measured[None])
    print("## Monitor: recording overhead on one epoch of the main job\n")
    print("\n".join(machine_header()))
    print(f"\n784-256-10 ReLU, batch 64, SGD Nesterov 0.9 cosine lr 0.1, 60000 samples (938 batches), "
          f"{args.threads} BLAS thread(s), median of {args.rounds} rounds\n")
    print("| callback | records per epoch | epoch (s) | ratio to no callback (same round) |")
    print("| --- | ---: | ---: | ---: |")
    for s in settings:
        default = " (default)" if s == diagnostics.DEFAULT_EVERY else ""
        name = "none" if s is None else f"Monitor(every={s}){default}"
        print(f"| {name} | {records[s]} | {statistics.median(times[s]):.2f} | "
              f"{statistics.median(ratios[s]):.3f} |")


if __name__ == "__main__":
    main()
