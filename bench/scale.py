"""Does one epoch of fit take time linear in n and flat anonymous memory? 60k to 480k samples from disk.

    python bench/scale.py                       # W1, 60k 120k 240k 480k, 1 BLAS thread
    python bench/scale.py --workload W2 --sizes 60000 240000 --threads 2

The data: MNIST's 60,000 training images repeated 8 times (copy 0 as it is, the others each
image shifted by a random whole number of pixels in -2..2 along x and y, np.roll on the 28x28
image), written as a uint8 np.memmap (480,000 x 784 bytes, 376 MB) and int64 labels (.npy) in a
temporary folder that is removed at the end. Each size n trains one epoch on the first n rows,
in a fresh child process: the uint8 memmap goes to optim.fit as it is, and fit's
``transform=data.Rescale(dtype=np.float32, scale=1/255)`` turns each batch into float32 in [0, 1].

Per size the child reports the epoch's seconds (around the fit call) and its anonymous memory
(RssAnon in /proc/self/status: the program's own memory; the memmap's pages are file-backed and
count in RssFile, not here): before fit, after fit, and the peak while fit runs, sampled by a
thread every 5 ms. Linear time shows as a constant "s per 60k"; flat memory as a peak RssAnon
that does not grow with n (no copy of the training set, per epoch or at the start) beyond
the one O(n) array any shuffled epoch needs: the permutation, 8 bytes per sample (784 for the
data itself), shown in its own column. Sizes run interleaved, ``--rounds`` times (default 3).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as H  # noqa: E402

SIZES = (60_000, 120_000, 240_000, 480_000)
SHIFT_SEED = 2


def shifted_copy(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each (784,) image rolled by its own random (dy, dx) in -2..2 on the 28x28 grid."""
    out = np.empty_like(images)
    square = images.reshape(-1, 28, 28)
    shifts = rng.integers(-2, 3, size=(len(images), 2))
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            out[rows] = np.roll(square[rows], (dy, dx), axis=(1, 2)).reshape(len(rows), -1)
    return out


def write_data(folder: Path, total: int) -> tuple[Path, Path]:
    """The uint8 memmap (total, 784) and its int64 labels, written into ``folder``."""
    (x, y), _ = H.mnist_uint8()
    rng = np.random.default_rng(SHIFT_SEED)
    copies = -(-total // len(x))
    x_path, y_path = folder / "x_uint8.bin", folder / "y_int64.npy"
    mm = np.memmap(x_path, dtype=np.uint8, mode="w+", shape=(total, x.shape[1]))
    labels = np.empty(total, dtype=np.int64)
    for k in range(copies):
        start, stop = k * len(x), min((k + 1) * len(x), total)
        block = x if k == 0 else shifted_copy(x, rng)
        mm[start:stop] = block[:stop - start]
        labels[start:stop] = y[:stop - start]
    mm.flush()
    del mm
    np.save(y_path, labels)
    return x_path, y_path


def child(x_path: str, y_path: str, total: int, n: int, workload: str, threads: int) -> None:
    """One epoch on the first n rows; prints one JSON line."""
    from lamina import optim  # noqa: F401  (imported before the 'before' reading)
    from lamina import data
    transform = data.Rescale(np.float32, 1 / 255)
    w = H.WORKLOADS[workload]
    x = np.memmap(x_path, dtype=np.uint8, mode="r", shape=(total, 784))[:n]
    y = np.load(y_path, mmap_mode="r")[:n]
    model, loss, opt = H.lamina_setup(workload)
    gc.collect()
    before = H.proc_status()
    with threadpool_limits(limits=threads):
        with H.AnonSampler() as sampler:
            t0, c0 = time.perf_counter(), time.process_time()
            model, history = H.lamina_fit(model, loss, opt, x, y, epochs=1, batch_size=w["batch_size"],
                                          rng=np.random.default_rng(H.SHUFFLE_SEED), threads=threads,
                                          transform=transform)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    after = H.proc_status()
    print(json.dumps({"n": n, "seconds": seconds, "cpu": cpu, "anon_before_kb": before["RssAnon"],
                      "anon_after_kb": after["RssAnon"], "anon_peak_kb": sampler.peak,
                      "file_after_kb": after.get("RssFile"), "hwm_kb": after["VmHWM"],
                      "loss": history.get("loss", [float("nan")])[-1]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--workload", default="W1", choices=sorted(H.WORKLOADS))
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="epochs per size (median), each in its own child")
    parser.add_argument("--child", nargs=4, metavar=("X", "Y", "TOTAL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        x_path, y_path, total, n = args.child
        child(x_path, y_path, int(total), int(n), args.workload, args.threads)
        return

    start = time.perf_counter()
    print("# lamina scaling benchmark: bench/scale.py " + " ".join(sys.argv[1:]))
    print()
    for line in H.machine_header():
        print(f"- {line}")
    w = H.WORKLOADS[args.workload]
    print(f"- workload {w['label']}; BLAS threads = {args.threads}; one epoch per size, each in a fresh "
          "process")
    total = max(args.sizes)
    folder = Path(tempfile.mkdtemp(prefix="lamina-scale-"))
    try:
        t0 = time.perf_counter()
        x_path, y_path = write_data(folder, total)
        print(f"- data: MNIST x{-(-total // 60000)} with random shifts of -2..2 px, uint8 memmap "
              f"({total:,} x 784, {x_path.stat().st_size / 2**20:.0f} MB) in {folder} "
              f"(written in {time.perf_counter() - t0:.1f} s, removed at the end)")
        print(f"- load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
        busy0, own0 = H.cpu_ticks(), H.own_cpu_seconds()
        results = []
        for r in range(args.rounds):
            for n in args.sizes:
                text = H.run_child([__file__, "--child", str(x_path), str(y_path), str(total), str(n),
                                    "--workload", args.workload, "--threads", str(args.threads)])
                res = json.loads(text.strip().splitlines()[-1])
                results.append(res)
                print(f"  n={n:,}: {res['seconds']:.2f} s, peak RssAnon {res['anon_peak_kb'] / 1024:.0f} MB",
                      flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print("- transform: lamina.data.Rescale(np.float32, 1 / 255)")
    print()
    print(f"### One epoch of {args.workload} on n samples from a uint8 memmap, BLAS threads = "
          f"{args.threads}, median of {args.rounds} (peak: max)")
    print()
    print("| samples | s per epoch | s per 60k samples | CPU s per 60k | RssAnon before fit (MB) "
          "| peak RssAnon during fit (MB) | RssAnon after fit (MB) | peak - before (MB) "
          "| of which the shuffle order, 8 B x n (MB) | the rest (MB) | RssFile after (MB) | final loss |")
    print("|" + " --- |" * 12)
    for n in args.sizes:
        rows = [r for r in results if r["n"] == n]
        secs = sorted(r["seconds"] for r in rows)[len(rows) // 2]
        cpu = sorted(r["cpu"] for r in rows)[len(rows) // 2]
        r = rows[-1]
        peak = max(x["anon_peak_kb"] for x in rows)
        grow = (peak - r["anon_before_kb"]) / 1024
        order = 8 * n / 2**20
        print(f"| {n:,} | {secs:.2f} | {secs * 60000 / n:.2f} | {cpu * 60000 / n:.2f} | "
              f"{r['anon_before_kb'] / 1024:.0f} | {peak / 1024:.0f} | {r['anon_after_kb'] / 1024:.0f} | "
              f"{grow:.1f} | {order:.1f} | {grow - order:.1f} | {r['file_after_kb'] / 1024:.0f} | "
              f"{r['loss']:.4f} |")
    per60 = [r["seconds"] * 60000 / r["n"] for r in results]
    peaks = [r["anon_peak_kb"] / 1024 for r in results]
    print()
    print(f"s per 60k: {min(per60):.2f} to {max(per60):.2f} (max/min {max(per60) / min(per60):.2f}); "
          f"peak RssAnon {min(peaks):.0f} to {max(peaks):.0f} MB (spread {max(peaks) - min(peaks):.1f} MB)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"{H.describe_ticks(busy0, H.cpu_ticks(), H.own_cpu_seconds() - own0)}; "
          f"whole run {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
