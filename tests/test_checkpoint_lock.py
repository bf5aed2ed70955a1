"""A checkpoint folder belongs to one run: an OS lock that dies with its process (real processes:
tests/train_worker.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from comparisons import same_bits

from lamina import layers, optim
from lamina.optim.checkpoints import FolderLock
from test_signals import ENV, TIMEOUT, WORKER_PATH, finish, read_line, worker

RACES = 3                       # two runs started together on one empty folder, this many times


def start(folder, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER_PATH), "train", str(folder), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def snapshot(folder: Path) -> dict:
    """Every file in the folder with its size, modification time and inode."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino) for p in folder.iterdir()}


def second_fit(folder, **settings):
    model, loss, opt, x, y = worker.problem()
    settings = {"epochs": 3, "batch_size": worker.BATCH_SIZE, "keep": worker.KEEP, **settings}
    return optim.fit(model, loss, opt, x, y, progress=False, rng=np.random.default_rng(worker.SEED),
                     checkpoint=folder, **settings)


@pytest.mark.parametrize("resume", [False, True], ids=["new", "resume"])
def test_a_second_fit_on_a_live_runs_folder_is_refused_at_once_and_touches_nothing(tmp_path, resume):
    live = start(tmp_path, "--epochs", "2", "--every", "4", "--announce", "30", "--linger", "4")
    assert read_line(live) == "at 30"           # lingering in epoch 2 with checkpoints written
    (tmp_path / ".checkpoint-00009-0000000.npz.0123456789abcdef.tmp").write_bytes(b"not ours to remove")
    before = snapshot(tmp_path)
    with pytest.raises(FileExistsError) as refused:
        second_fit(tmp_path, resume=tmp_path if resume else None)
    assert str(tmp_path) in str(refused.value) and f"process {live.pid}" in str(refused.value)
    assert refused.value.filename == str(tmp_path)
    assert snapshot(tmp_path) == before
    assert finish(live) == "" and live.returncode == 0             # the live run finished untouched
    assert len(layers.load_extra(optim.checkpoints.latest_checkpoint(tmp_path))["history"]["loss"]) == 2


def test_two_runs_started_together_on_one_empty_folder_one_runs_one_is_refused(tmp_path):
    for race in range(RACES):
        folder = tmp_path / f"race{race}"
        runs = [start(folder, "--epochs", "1", "--announce", "0", "--linger", "6") for _ in range(2)]
        errors = [finish(run) for run in runs]
        codes = sorted(run.returncode for run in runs)
        assert codes == [0, 1], errors
        loser = [run for run in runs if run.returncode][0]
        winner = [run for run in runs if not run.returncode][0]
        refusal = errors[runs.index(loser)]
        # while the winner runs, its lock refuses the loser; a loser started later (a loaded machine) finds
        # its checkpoints
        assert "FileExistsError" in refusal
        assert f"process {winner.pid}" in refusal or "holds checkpoints of another run" in refusal
        assert len(list(folder.glob("checkpoint-*.npz"))) == 1


def test_a_killed_runs_folder_resumes_at_once_to_the_same_bits(tmp_path):
    reference, _ = worker.train(tmp_path / "reference", epochs=2, every=4)
    live = start(tmp_path / "run", "--epochs", "2", "--every", "4", "--announce", "30", "--linger", "30")
    assert read_line(live) == "at 30"
    live.send_signal(signal.SIGKILL)
    live.wait(TIMEOUT)
    assert (tmp_path / "run" / FolderLock.NAME).read_text().strip() == str(live.pid)   # the lock file stays
    model, _ = worker.train(tmp_path / "run", epochs=2, every=4, resume=True)
    assert same_bits(model, reference)


def test_the_lock_is_released_after_an_error_and_a_held_folder_refuses_in_process(tmp_path):
    with FolderLock(tmp_path):
        holder = subprocess.run([sys.executable, "-c", f"from lamina.optim.checkpoints import FolderLock\n"
                                 f"FolderLock({str(tmp_path)!r}).__enter__()"],
                                capture_output=True, text=True, env={**ENV, "PYTHONPATH": os.getcwd()})
        assert holder.returncode == 1 and f"process {os.getpid()}" in holder.stderr
    with pytest.raises(ValueError):
        second_fit(tmp_path, batch_size=0)                  # refused before the folder is taken
    model, history = second_fit(tmp_path)                   # the folder is free again
    assert len(history["loss"]) == 3
