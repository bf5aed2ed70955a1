"""Peak memory of each workload's training: lamina against PyTorch eager, each in a fresh process.

    python bench/memory.py                                # W1, W2, CNN, GPT (~3 min, one BLAS thread)
    python bench/memory.py --workloads W1 W2 --root /tmp/before   # lamina and bench/ of another checkout

Every number is a fresh process measured the way its own benchmark measures it, so the rows can be held
against the tables of the README and docs/guide/performance.md:

- W1, W2: ``bench/mlp.py --child-rss`` (MNIST loaded as float32, the peak reset with
  /proc/self/clear_refs, one epoch, VmHWM: the 188 MB of training data included), for lamina, the
  careful NumPy loop and PyTorch eager;
- CNN: ``bench/cnn.py --child`` (a warm-up on 2,048 images, the peak reset, one epoch of the small CNN,
  VmHWM), for lamina, the NumPy CNN and PyTorch eager;
- GPT: the whole training command, ``examples/shakespeare_gpt.py`` against ``bench/gpt_torch.py
  --train`` (nanoGPT's model in PyTorch), ``--steps`` steps each: the peak RSS of the process
  (getrusage), imports, data, evaluation and sampling included.

PyTorch runs with an interpreter that has it (``--torch-python``, /work/torchvenv by default when it
exists; never a lamina dependency). Memory does not depend on the timing, so this needs no quiet
machine; it pins one BLAS thread (and one torch thread) for every process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness as H  # noqa: E402

TORCH_PYTHON = "/work/torchvenv/bin/python"
# lamina's peak RSS in the tables before issue 22 (MB, one BLAS thread): README / docs/guide/performance.md
BEFORE = {"W1": 251, "W2": 254, "CNN": 302}


def child(python, root: Path, args: list[str], threads: int = 1) -> tuple[dict, int]:
    """Run ``python args`` from ``root`` (lamina imported from there): (its last JSON line or {}, its peak
    RSS in kB from getrusage)."""
    env = {**os.environ, "PYTHONPATH": str(root), "LAMINA_THREADS": str(threads),
           "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, *args], cwd=root, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{err.read()[-3000:]}")
        out.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), usage.ru_maxrss


def mlp(workload, pythons, root) -> dict:
    """{implementation: peak MB} from bench/mlp.py's own peak-RSS child."""
    return {name: child(python, root, ["bench/mlp.py", "--child-rss", name, workload, "--threads", "1"])[0]
            ["peak_kb"] / 1024 for name, python in pythons.items()}


def cnn(pythons, root) -> dict:
    """{implementation: peak MB} from bench/cnn.py's own child (one epoch each)."""
    sys.path.insert(0, str(root / "bench"))
    import cnn as bench_cnn
    import numpy as np
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state.npz")
        np.savez(state, **bench_cnn.start_state())
        for name, python in pythons.items():
            report, _ = child(python, root, ["bench/cnn.py", "--child", name, "--threads", "1",
                                             "--state", state, "--out", os.path.join(tmp, f"{name}.npz")])
            out[name] = report["peak_kb"] / 1024
    return out


def gpt(pythons, root, steps) -> dict:
    """{implementation: peak MB} of the whole training command."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        both = ["--steps", str(steps), "--eval-every", str(steps)]
        commands = {"lamina": ["examples/shakespeare_gpt.py", *both, "--sample", "100", "--no-progress",
                               "--out", os.path.join(tmp, "gpt.npz")],
                    "torch": ["bench/gpt_torch.py", "--train", *both, "--threads", "1"]}
        for name, python in pythons.items():
            if name in commands:
                out[name] = child(python, root, commands[name])[1] / 1024
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2", "CNN", "GPT"],
                        choices=["W1", "W2", "CNN", "GPT"])
    parser.add_argument("--root", type=Path, default=H.ROOT, help="the checkout whose lamina and bench/ run")
    parser.add_argument("--torch-python", default=TORCH_PYTHON if Path(TORCH_PYTHON).exists() else None)
    parser.add_argument("--steps", type=int, default=100, help="GPT training steps per command")
    args = parser.parse_args()
    root = args.root.resolve()
    print("# Peak RSS while training: bench/memory.py " + " ".join(sys.argv[1:]))
    print()
    for line in H.machine_header():
        print(f"- {line}")
    print(f"- lamina and bench/ from {root}; PyTorch: {args.torch_python or 'not run'}")
    print()
    rows = []
    for wl in args.workloads:
        names = ["lamina", "reference"] if wl != "GPT" else ["lamina"]
        pythons = {name: sys.executable for name in names}
        if args.torch_python:
            pythons["torch"] = args.torch_python
        got = (mlp(wl, pythons, root) if wl in ("W1", "W2") else cnn(pythons, root) if wl == "CNN"
               else gpt(pythons, root, args.steps))
        print(f"  {wl}: " + ", ".join(f"{n} {mb:.0f} MB" for n, mb in got.items()), flush=True)
        before = BEFORE.get(wl)
        rows.append([wl, *(f"{got[n]:.0f}" if n in got else "-" for n in ("lamina", "reference", "torch")),
                     f"{got['lamina'] / got['torch']:.2f}" if "torch" in got else "-",
                     f"{before}" if before else "-", f"{got['lamina'] / before:.2f}" if before else "-"])
    header = ["workload", "lamina (MB)", "NumPy loop (MB)", "PyTorch eager (MB)", "lamina / PyTorch",
              "lamina before (MB)", "lamina / before"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(f"W1, W2, CNN: one epoch, data included (bench/mlp.py's and bench/cnn.py's own measure); GPT: the "
          f"whole command with {args.steps} steps. Before: the tables of lamina 0.2 (README).")


if __name__ == "__main__":
    main()
