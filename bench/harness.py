"""Shared plumbing for the benchmarks: data, workloads, the lamina training call, memory and machine info.

Not part of lamina and not a test: the scripts beside this file import it as a plain module
(``python bench/mlp.py`` puts bench/ first on sys.path).
"""

from __future__ import annotations

import gzip
import inspect
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

def _read_idx_gz(path: Path) -> np.ndarray:
    """A gzipped IDX file as an array (uint8 payloads only, which is what MNIST holds)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an uint8 IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_uint8():
    """((x_train uint8 (60000, 784), y_train int64), (x_test, y_test)), read from the shipped IDX files."""
    def part(images, labels):
        x = _read_idx_gz(IDX_DIR / images)
        return x.reshape(len(x), -1).copy(), _read_idx_gz(IDX_DIR / labels).astype(np.int64)
    return (part("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            part("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))


def mnist():
    """((x_train float32 (60000, 784) in [0, 1], y_train int64), (x_test, y_test)): lamina.data.mnist() when it exists."""
    try:
        from lamina import data
        loader = data.mnist
    except (ImportError, AttributeError):
        loader = None
    if loader is not None:
        return loader(), "lamina.data.mnist()"
    (xa, ya), (xb, yb) = mnist_uint8()
    scale = np.float32(1 / 255)
    return ((xa.astype(np.float32) * scale, ya), (xb.astype(np.float32) * scale, yb)), "bench IDX reader"


class Rescale:
    """Fallback per-batch transform (used only when lamina.data.Rescale does not exist yet): uint8 -> float32 * scale."""

    def __init__(self, dtype=np.float32, scale=1 / 255):
        self.dtype, self.scale = np.dtype(dtype), scale

    def __call__(self, x):
        return np.multiply(x, self.scale, dtype=self.dtype)


def rescale_transform():
    """(transform, where it comes from): lamina.data.Rescale(dtype=float32, scale=1/255) if it exists."""
    try:
        from lamina import data
        return data.Rescale(dtype=np.float32, scale=1 / 255), "lamina.data.Rescale"
    except (ImportError, AttributeError):
        return Rescale(np.float32, 1 / 255), "bench fallback Rescale (lamina.data.Rescale missing)"


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


def fit_available() -> bool:
    try:
        from lamina import optim
        return callable(getattr(optim, "fit", None))
    except ImportError:
        return False


def lamina_path() -> str:
    return "optim.fit" if fit_available() else "hand-written loop on the public API (optim.fit missing)"


def _hand_fit(model, loss, opt, x, y, *, epochs, batch_size, rng, transform=None):
    """Stand-in for optim.fit until it exists: the same batches (one rng.permutation(n) per epoch)."""
    state = opt.init(model)
    n = len(x)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            if transform is not None:
                xb = transform(xb)
            logits, cache = model.forward(xb)
            _, loss_cache = loss.forward(logits, yb)
            _, grads = model.backward(cache, loss.backward(loss_cache), input_grad=False)
            model, state = opt.update(model, grads, state)
    return model, {}


def lamina_fit(model, loss, opt, x, y, *, epochs, batch_size, rng, threads=None, transform=None):
    """optim.fit with progress off (and ``threads``/``transform`` when fit takes them); the hand loop otherwise."""
    if not fit_available():
        return _hand_fit(model, loss, opt, x, y, epochs=epochs, batch_size=batch_size, rng=rng, transform=transform)
    from lamina import optim
    accepted = inspect.signature(optim.fit).parameters
    kwargs = dict(epochs=epochs, batch_size=batch_size, rng=rng, progress=False)
    if threads is not None and "threads" in accepted:
        kwargs["threads"] = threads
    if transform is not None:
        if "transform" not in accepted:
            raise TypeError("optim.fit has no transform= option; bench/scale.py needs it")
        kwargs["transform"] = transform
    return optim.fit(model, loss, opt, x, y, **kwargs)


def lamina_arrays(model):
    """[(weight, bias), ...] of the Dense layers, as writable float32 copies."""
    from lamina import layers
    out = []
    for layer in model.layers:
        if isinstance(layer, layers.Dense):
            out.append((np.array(layer.weight), np.array(layer.bias)))
    return out


def lamina_predict(model, x, batch_size=1000):
    return np.concatenate([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


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
        f"lamina: git {git_revision()}; training through {lamina_path()}",
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
    """The machine-wide 'cpu' line of /proc/stat: user nice system idle iowait irq softirq steal (clock ticks)."""
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
    """The machine's CPU-seconds between two cpu_ticks() readings: used by other processes, idle, stolen by the host."""
    hz = os.sysconf("SC_CLK_TCK")
    d = [(b - a) / hz for a, b in zip(before, after)]
    busy = d[0] + d[1] + d[2] + d[5] + d[6]
    return (f"CPU-seconds during the run: this benchmark {own_seconds:.0f}, other processes {max(busy - own_seconds, 0):.0f}, "
            f"idle {d[3]:.0f}, stolen by the host {d[7]:.1f}")


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
