"""The GPT's training step: lamina against a careful hand-written NumPy GPT and against PyTorch eager.

    python bench/gpt.py                       # 200 float32 steps at 1 and 2 threads, agreement, profile
    python bench/gpt.py --steps 100 --threads 1 --no-torch
    python bench/gpt.py --threads 1 auto      # auto: fit(threads="auto"), the others at their own defaults

The model is examples/shakespeare_gpt.py's (nanoGPT's CPU configuration: 4 pre-norm blocks, 4 heads,
width 128, context 64, batch 12, the output layer tied to the embedding; AdamW with betas (0.9, 0.99),
decay 0.1 on matrices, clipping at 1, lamina's cosine schedule). All three start from the same weights
(lamina's init, handed over in nanoGPT's names) and train on the same batches of Tiny Shakespeare
windows in the same order: lamina through ``optim.fit`` (``steps_per_epoch``, its shuffle from
``default_rng(SHUFFLE_SEED)``), the others indexing with that permutation. lamina and the NumPy
reference (bench/gpt_reference.py) run in this process, PyTorch (bench/gpt_torch.py) in its own with
an interpreter that has torch (``--torch-python``; /work/torchvenv by default when it exists).

Checks: in float64 the three losses agree to 1e-9 relative over 5 steps; in float32 the losses of
the last step agree within 1%. Times are medians of the per-step times after a warm-up, ratios taken
within one run. The profile times ``--profile-steps`` lamina steps under cProfile and sums each
function's own time by where it lives (layer class, loss, optimizer, loop): NumPy's operators run
inside the Python function that calls them, so a layer's matrix products count as that layer's time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
from contextlib import nullcontext
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "examples"))
import gpt_reference  # noqa: E402
import harness as H  # noqa: E402
from shakespeare_gpt import gpt as build_gpt  # noqa: E402

from lamina import data, layers, losses, optim  # noqa: E402

INIT_SEED, DATA_SEED, SHUFFLE_SEED = 0, 1, 2
CONFIG = dict(dim=128, heads=4, layers=4, context=64, batch_size=12)
TORCH_VENV = Path("/work/torchvenv/bin/python")


def state_of(model, blocks: int) -> dict:
    """lamina's GPT -> nanoGPT's names with torch's layouts (a Linear weight (out, in))."""
    L = model.layers
    state = {"wte.weight": L[0].weight, "wpe.weight": L[1].weight}
    for i in range(blocks):
        ln1, attention = L[3 + 2 * i].inner.layers[:2]
        ln2, fc, _, proj = L[4 + 2 * i].inner.layers[:4]
        state.update({f"h.{i}.ln_1.weight": ln1.weight, f"h.{i}.ln_1.bias": ln1.bias,
                      f"h.{i}.attn.c_attn.weight": attention.weight_qkv.T,
                      f"h.{i}.attn.c_attn.bias": attention.bias_qkv,
                      f"h.{i}.attn.c_proj.weight": attention.weight_out.T,
                      f"h.{i}.attn.c_proj.bias": attention.bias_out,
                      f"h.{i}.ln_2.weight": ln2.weight, f"h.{i}.ln_2.bias": ln2.bias,
                      f"h.{i}.c_fc.weight": fc.weight.T, f"h.{i}.c_fc.bias": fc.bias,
                      f"h.{i}.c_proj.weight": proj.weight.T, f"h.{i}.c_proj.bias": proj.bias})
    state.update({"ln_f.weight": L[-2].weight, "ln_f.bias": L[-2].bias})
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


def workload(steps: int):
    """(lamina model, state, vocabulary size, x (steps b, t), y, order (steps b,), learning rates)."""
    text = data.tiny_shakespeare()
    vocab = data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    x_all, y_all = data.windows(ids[:int(0.9 * len(ids))], CONFIG["context"])
    starts = np.random.default_rng(DATA_SEED).integers(0, len(x_all), steps * CONFIG["batch_size"])
    model = build_gpt(np.random.default_rng(INIT_SEED), len(vocab), dim=CONFIG["dim"], heads=CONFIG["heads"],
                      blocks=CONFIG["layers"], context=CONFIG["context"], dropout=0.0)
    schedule = optim.Cosine(initial=1e-3, total=2000, final=1e-4, warmup=100)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(starts))
    return (model, state_of(model, CONFIG["layers"]), len(vocab), x_all[starts], y_all[starts], order,
            np.array([schedule(i) for i in range(steps)]))


class StepTimes:
    """fit callback: each step's loss and its time (from the previous step's end)."""

    def __init__(self):
        self.losses, self.seconds, self.last = [], [], None

    def on_train_begin(self, run):
        self.last = time.perf_counter()

    def on_batch_end(self, run):
        now = time.perf_counter()
        self.losses.append(run.loss)
        self.seconds.append(now - self.last)
        self.last = now


def run_lamina(model, x, y, lrs, threads: int, dtype, callbacks=()) -> dict:
    """fit over the batches (one epoch of len(lrs) steps), threads pinned: per-step losses and times."""
    model = layers.map_parameters(lambda p: p.astype(dtype), model)
    opt = optim.AdamW(optim.Cosine(initial=1e-3, total=2000, final=1e-4, warmup=100), betas=(0.9, 0.99),
                      weight_decay=0.1, clip_norm=1.0, decay=lambda path, p: p.ndim >= 2)
    times = StepTimes()
    optim.fit(model, losses.SoftmaxCrossEntropy(), opt, x, y, epochs=1, steps_per_epoch=len(lrs),
              batch_size=CONFIG["batch_size"], rng=np.random.default_rng(SHUFFLE_SEED), progress=False,
              threads=threads, callbacks=[times, *callbacks])
    return {"losses": times.losses, "seconds": times.seconds}


def run_reference(state, x, y, order, lrs, threads: int, dtype) -> dict:
    """The NumPy GPT over the same batches: per-step losses and times."""
    net = gpt_reference.GPT(state, heads=CONFIG["heads"], dtype=dtype)
    b, out = CONFIG["batch_size"], {"losses": [], "seconds": []}
    with threadpool_limits(threads) if threads != "auto" else nullcontext():
        for i, lr in enumerate(lrs):
            started = time.perf_counter()
            rows = order[i * b:(i + 1) * b]
            out["losses"].append(net.step(x[rows], y[rows], float(lr)))
            out["seconds"].append(time.perf_counter() - started)
    return out


def run_torch(python: Path, state, vocab: int, x, y, order, lrs, threads: int, dtype: str) -> dict:
    """bench/gpt_torch.py in its own process over the same weights and batches."""
    b = CONFIG["batch_size"]
    rows = order[:len(lrs) * b].reshape(len(lrs), b)
    config = dict(CONFIG, vocab=vocab)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / "work.npz"
        np.savez(work, config=json.dumps(config), x=x[rows], y=y[rows], lr=lrs,
                 **{f"w:{k}": v for k, v in state.items()})
        pinned = ["--threads", str(threads)] if threads != "auto" else []
        proc = subprocess.run([str(python), str(HERE / "gpt_torch.py"), "--steps-of", str(work), *pinned,
                               "--dtype", dtype], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"bench/gpt_torch.py failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def per_step(result: dict, warm: int) -> float:
    return statistics.median(result["seconds"][warm:])


def relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def agreement(model, state, vocab, x, y, order, python) -> bool:
    """float64, 5 steps: every pair of the three losses within 1e-9 relative."""
    lrs5 = np.array([optim.Cosine(initial=1e-3, total=2000, final=1e-4, warmup=100)(i) for i in range(5)])
    b = CONFIG["batch_size"]
    x5, y5 = x[order[:5 * b]], y[order[:5 * b]]                # fit's own permutation of these rows differs:
    own = np.random.default_rng(SHUFFLE_SEED).permutation(5 * b)  # so the others follow it
    runs = {"lamina": run_lamina(model, x5, y5, lrs5, 1, np.float64),
            "numpy": run_reference({k: v.astype(np.float64) for k, v in state.items()}, x5, y5, own, lrs5, 1,
                                   np.float64)}
    if python:
        runs["torch"] = run_torch(python, {k: v.astype(np.float64) for k, v in state.items()}, vocab, x5, y5,
                                  own, lrs5, 1, "float64")
    worst = max(relative(runs[a]["losses"], runs["lamina"]["losses"]) for a in runs if a != "lamina")
    if "torch" in runs:
        worst = max(worst, relative(runs["numpy"]["losses"], runs["torch"]["losses"]))
    print("float64, 5 steps, losses: " + "; ".join(f"{k} " + " ".join(f"{v:.12f}" for v in r["losses"])
                                                  for k, r in runs.items()))
    ok = worst <= 1e-9
    print(f"float64 agreement: largest relative difference {worst:.2e} ({'ok' if ok else 'FAILED'}: <= 1e-9)")
    return ok


CATEGORIES = [("attention", "layers/attention.py"), ("softmax (maths)", "layers/maths.py"),
              ("layer norm", "layers/layer_norm.py"), ("dense (matrix products)", "layers/dense.py"),
              ("tied output (Transposed)", "layers/transposed.py"), ("GELU", "layers/activations.py"),
              ("embeddings", "layers/embedding.py"), ("embeddings", "layers/positional_embedding.py"),
              ("loss", "losses/"), ("update (optimizer)", "optim/executor.py"),
              ("update (optimizer)", "optim/transforms"), ("update (optimizer)", "optim/chain"),
              ("update (optimizer)", "optim/clipping.py"), ("combinators", "layers/combinator.py"),
              ("combinators", "layers/sequence.py"), ("combinators", "layers/residual.py"),
              ("records and trees", "layers/records/")]


def profile(model, x, y, steps: int) -> None:
    """cProfile of ``steps`` lamina steps at 1 thread; each function's own time summed by category."""
    lrs = np.zeros(steps)
    profiler = cProfile.Profile()
    with threadpool_limits(1):
        profiler.enable()
        rows = steps * CONFIG["batch_size"]
        run_lamina(model, x[:rows], y[:rows], lrs, 1, np.float32)
        profiler.disable()
    totals, all_time = {}, 0.0
    for (file, _, name), (_, _, own, _, _) in pstats.Stats(profiler).stats.items():
        all_time += own
        where = next((label for label, part in CATEGORIES if part in file.replace(os.sep, "/")), None)
        if where is None:
            where = "NumPy functions (sum, mean, ...)" if "numpy" in file or file == "~" else "other Python"
        totals[where] = totals.get(where, 0.0) + own
    print(f"where lamina's step goes (cProfile, {steps} steps at 1 thread, own time by place; "
          f"{1000 * all_time / steps:.1f} ms a step under the profiler):")
    for where, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {where:34s} {100 * seconds / all_time:5.1f}%  {1000 * seconds / steps:7.2f} ms/step")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="float32 steps timed per implementation")
    p.add_argument("--warm", type=int, default=10, help="steps left out of the timing at the start")
    p.add_argument("--threads", type=lambda v: v if v == "auto" else int(v), nargs="+", default=[1, 2],
                   help="BLAS thread counts; auto: lamina at fit's default, the others at theirs")
    p.add_argument("--torch-python", type=Path, default=TORCH_VENV if TORCH_VENV.exists() else None)
    p.add_argument("--no-torch", dest="torch_python", action="store_const", const=None)
    p.add_argument("--profile-steps", type=int, default=30, help="lamina steps under cProfile (0: none)")
    args = p.parse_args(argv)
    print("\n".join(H.machine_header()))
    model, state, vocab, x, y, order, lrs = workload(max(args.steps, 5))
    lrs = lrs[:args.steps]
    print(f"workload: GPT {CONFIG}, vocabulary {vocab}, {sum(v.size for v in state.values()) - 0:,} "
          f"parameters, AdamW + cosine + clipping, {args.steps} steps")
    ok = agreement(model, state, vocab, x, y, order, args.torch_python)
    for threads in args.threads:
        runs = {"lamina": run_lamina(model, x, y, lrs, threads, np.float32),
                "numpy": run_reference(state, x, y, order, lrs, threads, np.float32)}
        if args.torch_python:
            runs["torch"] = run_torch(args.torch_python, state, vocab, x, y, order, lrs, threads, "float32")
        ms = {k: 1000 * per_step(r, args.warm) for k, r in runs.items()}
        print(f"\n{threads} thread(s), float32, median ms per step after {args.warm}: "
              + ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
        print(f"  lamina / NumPy reference: {ms['lamina'] / ms['numpy']:.2f}"
              + (f"   lamina / PyTorch eager: {ms['lamina'] / ms['torch']:.2f}" if "torch" in ms else ""))
        last = {k: r["losses"][-1] for k, r in runs.items()}
        spread = max(abs(v - last["lamina"]) / last["lamina"] for v in last.values())
        within = spread <= 0.01
        ok &= within
        print(f"  loss at step {args.steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items())
              + f" (largest difference {100 * spread:.2f}%: {'ok' if within else 'FAILED'}, <= 1%)")
    if args.profile_steps:
        print()
        profile(model, x, y, args.profile_steps)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
