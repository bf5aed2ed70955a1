"""Shared plumbing for the benchmarks: raw MNIST, workloads, the lamina training call, memory and machine
info.

Not part of lamina and not a test: the scripts beside this file import it as a plain module
(``python bench/mlp.py`` puts bench/ first on sys.path).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
IDX_DIR = ROOT / "data" / "mnist-idx"

# name -> (layer sizes, batch size, learning rate, momentum)
WORKLOADS = {
    "W1": dict(sizes=(784, 128, 10), batch_size=32, learning_rate=0.1, momentum=0.0,
               label="W1: 784-128-10, batch 32, SGD lr 0.1"),
    "W2": dict(sizes=(784, 512, 512, 10), batch_size=128, learning_rate=0.05, momentum=0.9,
               label="W2: 784-512-512-10, batch 128, SGD momentum 0.9, lr 0.05"),
    "W2-adam": dict(sizes=(784, 512, 512, 10), batch_size=128, learning_rate=1e-3, momentum=0.0, adam=True,
                    label="W2 with Adam: 784-512-512-10, batch 128, Adam lr 1e-3"),
}
INIT_SEED = 0      # Generator that draws the initial weights (lamina's Dense.init, He normal)
SHUFFLE_SEED = 1   # Generator handed to fit (and to the reference): one permutation(n) per epoch


# ---------------------------------------------------------------- data

def mnist_uint8():
    """((x_train uint8 (60000, 784), y_train int64), (x_test, y_test)), read from the shipped IDX files."""
    from lamina import data

    def part(images, labels):
        x = data.read_idx(IDX_DIR / images)
        return x.reshape(len(x), -1), data.read_idx(IDX_DIR / labels).astype(np.int64)
    return (part("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            part("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))


# ---------------------------------------------------------------- lamina

def lamina_model(sizes):
    """The benchmark's initial model: layers.mlp with ReLU, float32, weights from default_rng(INIT_SEED)."""
    from lamina import layers
    return layers.mlp(np.random.default_rng(INIT_SEED), list(sizes), activation=layers.ReLU)


def lamina_setup(workload: str):
    from lamina import losses, optim
    w = WORKLOADS[workload]
    model = lamina_model(w["sizes"])
    loss = losses.SoftmaxCrossEntropy()
    if w.get("adam"):
        opt = optim.Adam(learning_rate=w["learning_rate"])
    else:
        opt = optim.SGD(learning_rate=w["learning_rate"], momentum=w["momentum"])
    return model, loss, opt


def lamina_fit(model, loss, opt, x, y, *, epochs, batch_size, rng, threads=None, transform=None):
    """optim.fit with progress off; ``threads`` None keeps fit's default."""
    from lamina import optim
    kwargs = dict(epochs=epochs, batch_size=batch_size, rng=rng, progress=False, transform=transform)
    if threads is not None:
        kwargs["threads"] = threads
    return optim.fit(model, loss, opt, x, y, **kwargs)


def lamina_arrays(model):
    """[(weight, bias), ...] of the Dense layers, as writable float32 copies."""
    from lamina import layers
    out = []
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            out.append((np.array(layer.weight), np.array(layer.bias)))
    return out


# ---------------------------------------------------------------- memory

def proc_status() -> dict[str, int]:
    """/proc/self/status memory lines in kB (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                out[key] = int(value.split()[0])
    return out


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class AnonSampler:
    """A thread that samples RssAnon every ``interval`` seconds and keeps the peak (kB)."""

    def __init__(self, interval=0.005):
        self.interval, self.peak = interval, proc_status()["RssAnon"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, proc_status()["RssAnon"])
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, proc_status()["RssAnon"])


# ---------------------------------------------------------------- machine

def blas_lines() -> list[str]:
    from threadpoolctl import threadpool_info
    lines = []
    for pool in threadpool_info():
        keys = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads")
        lines.append(", ".join(f"{k}={pool.get(k)}" for k in keys if k in pool)
                     + f" ({Path(pool.get('filepath', '?')).name})")
    return lines


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "layers", "losses",
                                "optim", "data"], capture_output=True, text=True).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine_header() -> list[str]:
    mem = proc_meminfo_total_gb()
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {mem:.0f} GB RAM; "
        f"Linux {platform.release()}; Python {platform.python_version()}; NumPy {np.__version__}",
        f"lamina: git {git_revision()}; training through optim.fit",
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}",
    ]
    lines += [f"threadpoolctl: {line}" for line in blas_lines()]
    return lines


def proc_meminfo_total_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


def cpu_ticks() -> list[int]:
    """The machine-wide 'cpu' line of /proc/stat: user nice system idle iowait irq softirq steal (clock
    ticks)."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def own_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children."""
    import resource
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))


def other_cpu_seconds(before, after, own_seconds: float) -> float:
    """CPU-seconds the rest of the machine used between two cpu_ticks() readings."""
    hz = os.sysconf("SC_CLK_TCK")
    d = [(b - a) / hz for a, b in zip(before, after)]
    return max(d[0] + d[1] + d[2] + d[5] + d[6] - own_seconds, 0.0)


def describe_ticks(before, after, own_seconds: float) -> str:
    """The machine's CPU-seconds between two cpu_ticks() readings: used by other processes, idle, stolen by
    the host."""
    hz = os.sysconf("SC_CLK_TCK")
    d = [(b - a) / hz for a, b in zip(before, after)]
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    return (f"CPU-seconds during the run: this benchmark {own_seconds:.0f}, other processes "
            f"{max(busy - own_seconds, 0):.0f}, idle {d[3]:.0f}, stolen by the host {d[7]:.1f}")


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
        return True
    except Exception:
        return False


def run_child(args: list[str], timeout=600) -> str:
    """Run ``python <args>`` with this interpreter; return its stdout (raise with its stderr on failure)."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout
