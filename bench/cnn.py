"""One epoch of a small CNN on MNIST: lamina (optim.fit) against a careful NumPy CNN and PyTorch eager.

    python bench/cnn.py                      # 1 and 2 BLAS threads, 3 rounds, PyTorch if it can be found
    python bench/cnn.py --threads 1 --rounds 5
    python bench/cnn.py --torch-python /work/torchvenv/bin/python
    python bench/cnn.py --samples 15000      # a quarter of the epoch: the first 15,000 images, fit's order
    python bench/cnn.py --threads 1 2 auto   # auto: fit(threads="auto"), the others at their defaults
    python bench/cnn.py --threads 1 1,2      # 1,2: lamina's fit(threads=(1, 2)), the others at 2 threads
    python bench/cnn.py --baseline /tmp/old  # one more column: lamina from another checkout (PYTHONPATH)

The network (channels-last in lamina and the reference, NCHW in PyTorch), float32:

    conv 1->32 3x3, max-pool 2, ReLU, conv 32->64 3x3, max-pool 2, ReLU, flatten, dense 1600->128, ReLU, dense
    128->10

(max-pool before ReLU: the same function and gradients as the other order, on a quarter of the
elements; all three run it this way). SGD with momentum 0.9, learning rate 0.05, batch 128,
softmax cross-entropy: one epoch of the 60,000 training images.

Every implementation starts from the same weights (lamina's Conv2D.init / Dense.init drawn from
default_rng(0), handed to the others in their layouts) and sees the same batches (fit's order:
default_rng(1).permutation(60000), or of n with ``--samples n``, batches of consecutive entries, the last
one partial), from the same float32 images (the shipped IDX files, x / 255 as float32). Each epoch runs in a
fresh child process: it loads the data, warms up (16 steps from the initial weights on the first 2,048
images, in fit's order for them, untimed; the weights after them are compared), resets its peak RSS (Linux
/proc/self/clear_refs), trains the epoch from the initial weights (timed: wall clock and process CPU),
reports its peak RSS (VmHWM: data included) and evaluates the 10,000 test images. Rounds rotate the order of
the implementations; the table gives the median over rounds, ratios of medians and the median of each
round's own ratios (its epochs ran seconds apart, so a disturbance that lasts a round cancels out).

PyTorch is never a dependency: it runs in its own process, from the interpreter given by
``--torch-python`` (default: this one if it imports torch, else /work/torchvenv/bin/python if it
exists), with ``torch.set_num_threads``; lamina and the reference get the thread count through
threadpoolctl (lamina through ``fit(threads=...)``). With ``--threads auto`` lamina runs fit's default
``threads="auto"`` and the others run at their own defaults (no limit set). ``--baseline DIR`` adds a
"baseline" column: lamina's child again with ``PYTHONPATH=DIR`` (another checkout, e.g. a
``git worktree`` of an older commit), so that a change is timed against the code before it in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness as H  # noqa: E402

BATCH, LEARNING_RATE, MOMENTUM = 128, 0.05, 0.9
WARMUP_SAMPLES = 2048
DEFAULT_TORCH_PYTHON = "/work/torchvenv/bin/python"


# ---------------------------------------------------------------- shared by the children (numpy only)

def images():
    """((x_train (60000, 28, 28, 1) float32 in [0, 1], y_train int64), (x_test, y_test)) from the shipped IDX
    files."""
    (xa, ya), (xb, yb) = H.mnist_uint8()
    scale = np.float32(1 / 255)
    return ((xa.reshape(-1, 28, 28, 1).astype(np.float32) * scale, ya),
            (xb.reshape(-1, 28, 28, 1).astype(np.float32) * scale, yb))


def start_state(samples: int = 60000) -> dict:
    """The initial arrays (lamina layouts) and fit's batch order over the first ``samples`` images."""
    from lamina import layers
    rng = np.random.default_rng(0)
    conv1, conv2 = layers.Conv2D.init(rng, 1, 32, 3), layers.Conv2D.init(rng, 32, 64, 3)
    dense1, dense2 = layers.Dense.init(rng, 1600, 128), layers.Dense.init(rng, 128, 10)
    state = {}
    for i, layer in enumerate((conv1, conv2, dense1, dense2)):
        state[f"w{i}"], state[f"b{i}"] = np.array(layer.weight), np.array(layer.bias)
    state["order"] = np.random.default_rng(1).permutation(samples)
    state["warmup_order"] = np.random.default_rng(1).permutation(WARMUP_SAMPLES)   # fit's order on x[:2048]
    return state


def arrays_of(state) -> list:
    return [(state[f"w{i}"], state[f"b{i}"]) for i in range(4)]


def report_child(seconds, cpu, peak_kb, reset, accuracy, arrays, out):
    np.savez(out, **{f"{k}{i}": a for i, pair in enumerate(arrays) for k, a in zip("wb", pair)})
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_kb": peak_kb, "reset": reset,
                      "accuracy": accuracy}))


def measure(warm, train, evaluate, arrays, out):
    """Save the warm-up's weights; reset the peak RSS, run ``train()`` timed, then report: the child's last
    act."""
    np.savez(out.replace(".npz", "-warmup.npz"), **{f"{k}{i}": a for i, pair in enumerate(arrays(warm))
                                                     for k, a in zip("wb", pair)})
    reset = H.reset_peak_rss()
    wall, cpu = time.perf_counter(), time.process_time()
    trained = train()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = H.proc_status()["VmHWM"]
    report_child(wall, cpu, peak, reset, evaluate(trained), arrays(trained), out)


# ---------------------------------------------------------------- lamina

def lamina_model(arrays):
    from lamina import layers
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = arrays
    return layers.Sequence([
        layers.Conv2D(weight=w1, bias=b1), layers.MaxPool2D(), layers.ReLU(),
        layers.Conv2D(weight=w2, bias=b2), layers.MaxPool2D(), layers.ReLU(),
        layers.Flatten(), layers.Dense(weight=w3, bias=b3), layers.ReLU(), layers.Dense(weight=w4, bias=b4),
    ])


def child_lamina(state, threads, out):
    from lamina import layers, losses, optim
    (x, y), (x_test, y_test) = images()
    model0 = lamina_model(arrays_of(state))
    loss, opt = losses.SoftmaxCrossEntropy(), optim.SGD(learning_rate=LEARNING_RATE, momentum=MOMENTUM)

    def fit(xs, ys):
        return optim.fit(model0, loss, opt, xs, ys, epochs=1, batch_size=BATCH, rng=np.random.default_rng(1),
                         progress=False, threads=threads)[0]

    warm = fit(x[:WARMUP_SAMPLES], y[:WARMUP_SAMPLES])
    samples = len(state["order"])
    measure(warm, lambda: fit(x[:samples], y[:samples]),
            lambda model: float(optim.evaluate(model, loss, x_test, y_test, threads=threads)["accuracy"]),
            lambda model: [(layer.weight, layer.bias) for layer in model.layers
                           if isinstance(layer, (layers.Conv2D, layers.Dense))],
            out)


# ---------------------------------------------------------------- the NumPy reference

def child_reference(state, threads, out):
    from contextlib import nullcontext
    from threadpoolctl import threadpool_limits
    import cnn_reference as R
    (x, y), (x_test, y_test) = images()
    with threadpool_limits(cores(threads), user_api="blas") if threads != "auto" else nullcontext():
        warm = R.CNN(arrays_of(state), LEARNING_RATE, MOMENTUM)
        warm.train_epoch(x[:WARMUP_SAMPLES], y[:WARMUP_SAMPLES], BATCH, np.random.default_rng(1))

        def train():
            cnn = R.CNN(arrays_of(state), LEARNING_RATE, MOMENTUM)
            samples = len(state["order"])
            cnn.train_epoch(x[:samples], y[:samples], BATCH, np.random.default_rng(1))
            return cnn

        measure(warm, train, lambda cnn: float(np.mean(cnn.predict(x_test).argmax(axis=1) == y_test)),
                lambda cnn: cnn.arrays(), out)


# ---------------------------------------------------------------- PyTorch eager (its own process and
# interpreter)

def child_torch(state, threads, out):
    import torch
    import torch.nn.functional as F
    if threads != "auto":
        torch.set_num_threads(cores(threads))
    (x, y), (x_test, y_test) = images()
    xt = torch.from_numpy(x.reshape(-1, 1, 28, 28))     # one channel: NHWC and NCHW are the same bytes
    yt = torch.from_numpy(y)
    order = torch.from_numpy(state["order"])
    warm_order = torch.from_numpy(state["warmup_order"])

    def model():
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = arrays_of(state)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.MaxPool2d(2), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3), torch.nn.MaxPool2d(2), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(1600, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
        with torch.no_grad():
            net[0].weight.copy_(torch.from_numpy(w1.transpose(3, 2, 0, 1).copy()))
            net[0].bias.copy_(torch.from_numpy(b1))
            net[3].weight.copy_(torch.from_numpy(w2.transpose(3, 2, 0, 1).copy()))
            net[3].bias.copy_(torch.from_numpy(b2))
            # lamina flattens (h, w, c), torch (c, h, w)
            w3_chw = w3.reshape(5, 5, 64, 128).transpose(3, 2, 0, 1).reshape(128, 1600)
            net[7].weight.copy_(torch.from_numpy(w3_chw.copy()))
            net[7].bias.copy_(torch.from_numpy(b3))
            net[9].weight.copy_(torch.from_numpy(w4.T.copy()))
            net[9].bias.copy_(torch.from_numpy(b4))
        return net

    def train(order=order):
        net = model()
        opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return net

    def evaluate(net):
        with torch.no_grad():
            logits = torch.cat([net(torch.from_numpy(x_test[i:i + 1000].reshape(-1, 1, 28, 28)))
                                for i in range(0, len(x_test), 1000)])
        return float((logits.argmax(dim=1).numpy() == y_test).mean())

    def arrays(net):
        t = [p.detach().numpy() for p in net.parameters()]
        return [(t[0].transpose(2, 3, 1, 0), t[1]), (t[2].transpose(2, 3, 1, 0), t[3]),
                (t[4].reshape(128, 64, 5, 5).transpose(2, 3, 1, 0).reshape(1600, 128), t[5]), (t[6].T, t[7])]

    measure(train(warm_order), train, evaluate, arrays, out)


CHILDREN = {"lamina": child_lamina, "baseline": child_lamina, "reference": child_reference,
            "torch": child_torch}


# ---------------------------------------------------------------- the parent

def torch_python(given: str | None) -> str | None:
    if given:
        return given
    if H.torch_available():
        return sys.executable
    return DEFAULT_TORCH_PYTHON if Path(DEFAULT_TORCH_PYTHON).exists() else None


def run(impl, threads, state_file, out, python, baseline=None) -> dict:
    env = dict(os.environ)
    if threads != "auto":
        env["OMP_NUM_THREADS"] = str(cores(threads))
    if impl == "baseline":
        env["PYTHONPATH"] = os.pathsep.join([baseline, *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.run([python, __file__, "--child", impl, "--threads", label(threads), "--state",
                           state_file, "--out", out], capture_output=True, text=True, timeout=1800, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def max_relative_difference(a: str, b: str) -> float:
    with np.load(a) as fa, np.load(b) as fb:
        return max(float(np.abs(fa[k] - fb[k]).max() / max(np.abs(fb[k]).max(), 1e-30)) for k in fa.files)


def thread_count(text: str):
    """A --threads value: a positive int, "auto", or "B,P" (lamina's BLAS threads and parts apart)."""
    if text == "auto":
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    pair = text.split(",")
    if len(pair) == 2 and all(p.isdigit() and int(p) > 0 for p in pair):
        return int(pair[0]), int(pair[1])
    raise argparse.ArgumentTypeError(f'expected a positive int, "auto" or "B,P", got {text!r}')


def cores(threads):
    """The thread count the reference and PyTorch run at for a --threads value (a pair: its parts)."""
    return threads[1] if isinstance(threads, tuple) else threads


def label(threads) -> str:
    return ",".join(map(str, threads)) if isinstance(threads, tuple) else str(threads)


def med(values):
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=thread_count, nargs="+", default=[1, 2],
                        help='BLAS thread counts, or "auto" (lamina\'s default; the others unlimited)')
    parser.add_argument("--baseline", metavar="DIR",
                        help="one more column: lamina imported from the checkout DIR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=60000,
                        help="train on the first N images (fit's order over them): a part of the epoch")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--torch-python", default=None, help="the interpreter that runs PyTorch's child")
    parser.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with np.load(args.state) as f:
            state = {k: f[k] for k in f.files}
        CHILDREN[args.child](state, args.threads[0], args.out)
        return

    pythons = {"lamina": sys.executable, **({"baseline": sys.executable} if args.baseline else {}),
               "reference": sys.executable}
    if not args.no_torch and (tp := torch_python(args.torch_python)):
        pythons["torch"] = tp
    names = list(pythons)
    print("\n".join(H.machine_header()))
    if "torch" in pythons:
        version = subprocess.run([pythons["torch"], "-c", "import torch; print(torch.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"PyTorch {version} eager, NCHW, in its own process ({pythons['torch']})")
    print(f"network: conv 1->32 3x3, max-pool 2, ReLU, conv 32->64 3x3, max-pool 2, ReLU, flatten, "
          f"dense 1600->128, ReLU, dense 128->10; SGD lr {LEARNING_RATE} momentum {MOMENTUM}, batch {BATCH}; "
          f"one epoch of MNIST ({args.samples:,} images)", flush=True)
    ticks, own = H.cpu_ticks(), H.own_cpu_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        state_file = os.path.join(tmp, "state.npz")
        np.savez(state_file, **start_state(args.samples))
        results = {t: {name: [] for name in names} for t in args.threads}
        for threads in args.threads:
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    out = os.path.join(tmp, f"{name}-{label(threads)}.npz")
                    result = run(name, threads, state_file, out, pythons[name], args.baseline)
                    results[threads][name].append(result)
                    print(f"  threads {label(threads)} round {r + 1}: {name:9s} {result['seconds']:6.1f} s "
                          f"(cpu {result['cpu']:.1f} s), peak RSS {result['peak_kb'] / 1024:.0f} MB, "
                          f"test accuracy {result['accuracy']:.4f}", flush=True)
        differences = {}
        for when in ("-warmup", ""):
            for name in names[1:]:
                differences[name, when] = max_relative_difference(
                    os.path.join(tmp, f"lamina-{label(args.threads[-1])}{when}.npz"),
                    os.path.join(tmp, f"{name}-{label(args.threads[-1])}{when}.npz"))
    print(report(results, names, differences, args.samples))
    print(H.describe_ticks(ticks, H.cpu_ticks(), H.own_cpu_seconds() - own))


def report(results, names, differences, samples: int = 60000) -> str:
    others = [n for n in names if n != "lamina"]
    header = (["BLAS threads", *(f"{n} s/epoch" for n in names), *(f"lamina / {n}" for n in others),
               *(f"lamina / {n} per round" for n in others), *(f"lamina / {n} CPU s" for n in others),
               *(f"{n} peak RSS MB" for n in names), *(f"{n} test accuracy" for n in names)])
    lines = ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for threads, by in results.items():
        seconds = {n: med([r["seconds"] for r in by[n]]) for n in names}
        cpu = {n: med([r["cpu"] for r in by[n]]) for n in names}
        rounds = len(by["lamina"])
        row = [label(threads), *(f"{seconds[n]:.1f}" for n in names),
               *(f"{seconds['lamina'] / seconds[n]:.2f}" for n in others),
               *(f"{med([by['lamina'][i]['seconds'] / by[n][i]['seconds'] for i in range(rounds)]):.2f}"
                 for n in others),
               *(f"{cpu['lamina'] / cpu[n]:.2f}" for n in others),
               *(f"{max(r['peak_kb'] for r in by[n]) / 1024:.0f}" for n in names),
               *(f"{by[n][-1]['accuracy']:.4f}" for n in names)]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    steps = -(-WARMUP_SAMPLES // BATCH)
    lines.append(f"median of {rounds} rounds per thread count (CPU s: the ratio of the median process CPU "
                 "times, which a busy machine disturbs less than wall time; at 2 threads it adds up both); "
                 "peak RSS: the largest VmHWM of the rounds (data included: 188 MB of float32 training "
                 f"images). Weights against lamina's, max |a - b| / max |b|: after the {steps} warm-up "
                 "steps " + ", ".join(f"{n} {d:.1e}" for (n, w), d in differences.items() if w)
                 + "; after the epoch "
                 + ", ".join(f"{n} {d:.1e}" for (n, w), d in differences.items() if not w)
                 + f" (float32 rounding differences grow over {-(-samples // BATCH)} steps at learning "
                   "rate 0.05 with momentum 0.9)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
