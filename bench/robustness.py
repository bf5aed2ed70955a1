"""Kills, mutated files and races on one checkpoint folder: counts of each, and whether anything was lost.

    python bench/robustness.py                       # 12 kills, 3000 mutations, 6 races
    python bench/robustness.py --kills 4 --mutations 500 --races 2

kills: a training process (tests/train_worker.py, a checkpoint every batch) gets SIGKILL at a random
moment after its first checkpoint; the folder is resumed at once in this process (the dead run's lock
is gone with it) and must end with the very model of an uninterrupted run. mutations: a checkpoint
file with random bytes changed, cut short or its manifest's values replaced; every load must give a
checkpoint or a ModelFileError, never another exception. races: two processes start training on one
empty folder at once; exactly one must run and the other be refused with FileExistsError.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import train_worker as worker  # noqa: E402
from comparisons import same_bits  # noqa: E402

from lamina import optim  # noqa: E402
from lamina.layers.errors import ModelFileError  # noqa: E402
from lamina.layers.files import stored_zip  # noqa: E402

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
WORKER = [sys.executable, str(ROOT / "tests" / "train_worker.py"), "train"]


def kills(root: Path, count: int, rng) -> int:
    """Processes killed mid-run whose folder resumed to the uninterrupted model -> how many."""
    reference, _ = worker.train(root / "reference", epochs=2, every=1)
    survived = 0
    for trial in range(count):
        folder = root / f"kill{trial}"
        command = [*WORKER, str(folder), "--epochs", "2", "--every", "1", "--writer", "slow"]
        process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not list(folder.glob("checkpoint-*.npz")) and process.poll() is None:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        model, _ = worker.train(folder, epochs=2, every=1, resume=True)
        survived += same_bits(model, reference)
    return survived


def mutated(data: bytes, rng) -> bytes:
    """``data`` with one fault: bytes changed, cut short, or a manifest value replaced."""
    kind = rng.integers(3)
    if kind == 0:
        out = bytearray(data)
        for at in rng.integers(0, len(out), size=rng.integers(1, 8)):
            out[at] = rng.integers(256)
        return bytes(out)
    if kind == 1:
        return data[:rng.integers(0, len(data))]
    return data


def manifest_mutation(path: Path, out: Path, rng) -> None:
    """The checkpoint at ``path`` with one value of its manifest's extra replaced by an odd one."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    manifest = json.loads(members[0][1])
    extra = manifest["extra"]
    odd = [None, -1, 0, 10 ** 9, 1.5, "x", [], {}, [1, "a"], {"bit_generator": {}}, True]
    key = sorted(extra)[rng.integers(len(extra))]
    if isinstance(extra[key], dict) and extra[key] and rng.integers(2):
        inner = sorted(extra[key])[rng.integers(len(extra[key]))]
        extra[key][inner] = odd[rng.integers(len(odd))]
    else:
        extra[key] = odd[rng.integers(len(odd))]
    data = [(members[0][0], [json.dumps(manifest).encode()])] + [(n, [d]) for n, d in members[1:]]
    with open(out, "wb") as file:
        stored_zip.write_archive(file, data)


def mutations(root: Path, count: int, rng) -> tuple[int, int, list]:
    """(loads tried, refused with ModelFileError, other exceptions)."""
    source = sorted((root / "reference").glob("checkpoint-*.npz"))[-1]
    data, refused, others = source.read_bytes(), 0, []
    target = root / "mutant.npz"
    for trial in range(count):
        if trial % 3 == 2:
            manifest_mutation(source, target, rng)
        else:
            target.write_bytes(mutated(data, rng))
        try:
            optim.load_checkpoint(target)
        except ModelFileError:
            refused += 1
        except Exception as error:  # noqa: BLE001 (what this script counts)
            others.append(f"{type(error).__name__}: {str(error)[:100]}")
    return count, refused, others


def races(root: Path, count: int) -> int:
    """Pairs started together on one empty folder where exactly one ran and the other was refused."""
    fair = 0
    for trial in range(count):
        folder = root / f"race{trial}"
        command = [*WORKER, str(folder), "--epochs", "1", "--announce", "0", "--linger", "3"]
        pair = [subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for _ in range(2)]
        errors = [process.communicate()[1].decode() for process in pair]
        codes = sorted(process.returncode for process in pair)
        fair += codes == [0, 1] and any("FileExistsError" in error for error in errors)
    return fair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--mutations", type=int, default=3000)
    parser.add_argument("--races", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        survived = kills(root, args.kills, rng)
        print(f"kills: {survived} of {args.kills} resumed to the uninterrupted model bit for bit")
        tried, refused, others = mutations(root, args.mutations, rng)
        print(f"mutations: {tried} loads of damaged checkpoints, {refused} ModelFileError, "
              f"{tried - refused - len(others)} loaded (harmless change), {len(others)} other exceptions")
        for line in sorted(set(others))[:10]:
            print("   ", line)
        fair = races(root, args.races)
        print(f"races: {fair} of {args.races} pairs on one folder: one ran, the other refused")


if __name__ == "__main__":
    main()
