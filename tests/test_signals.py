"""Crash safety and signals: SIGKILL at random moments, exact resume after a kill, SIGINT and SIGTERM.

The training runs in subprocesses (tests/train_worker.py). The many short runs killed with
SIGKILL are forked from one worker process that has lamina imported already (a fork server), so
a trial costs a fraction of a second instead of a Python start-up. Every wait has a timeout, only
to avoid a hang; no assertion is about time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from comparisons import same_bits, without_seconds

from lamina import layers, optim

WORKER_PATH = Path(__file__).with_name("train_worker.py")
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TIMEOUT = 60                    # seconds; only against hangs
TRIALS = 40
KILL_DELAYS = (0.0, 0.3)        # seconds after the first checkpoint exists


def _load_worker():
    name = "lamina_tests_train_worker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKER_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


worker = _load_worker()
N_BATCHES = -(-worker.N // worker.BATCH_SIZE)


def files(folder):
    return sorted(Path(folder).glob("checkpoint-*.npz"))


def temporaries(folder):
    return sorted(Path(folder).glob(".checkpoint-*.tmp"))


def final_name(temporary: Path) -> str:
    """``.checkpoint-00001-0000002.npz.<hex>.tmp`` -> ``checkpoint-00001-0000002.npz``."""
    return temporary.name[1:].rsplit(".", 2)[0]


def wait_for(condition, what: str, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


# ---- the fork server --------------------------------------------------------------------------------

class ForkServer:
    """``train_worker.py serve``: forks one training child per request; children are reaped on request."""

    def __init__(self, log: Path):
        self.log = log
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen([sys.executable, str(WORKER_PATH), "serve"],
                                            stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=stderr, env=ENV)
        self.pending = b""

    def ask(self, command: dict, timeout: float = TIMEOUT) -> dict:
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()
        deadline, fd = time.monotonic() + timeout, self.process.stdout.fileno()
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"the fork server did not answer {command} in {timeout} s; "
                                     f"{self.errors()}")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"the fork server ended; {self.errors()}")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def errors(self) -> str:
        return "its stderr: " + self.log.read_text(errors="replace")[-3000:]

    def start(self, folder, *, epochs=3, every=1, writer="slow", final=None) -> int:
        answer = self.ask({"do": "train", "folder": str(folder), "epochs": epochs, "every": every,
                           "writer": writer, "final": final and str(final)})
        return answer["pid"]

    def reap(self, pid: int) -> dict:
        return self.ask({"do": "reap", "pid": pid})

    def kill_at(self, folder, delay: float, **run) -> dict:
        """Start a run, wait for its first checkpoint, sleep ``delay`` s, SIGKILL it; the child's end
        status."""
        pid = self.start(folder, **run)
        try:
            wait_for(lambda: files(folder), f"the first checkpoint in {folder}")
            time.sleep(delay)
        finally:
            os.kill(pid, signal.SIGKILL)     # not reaped yet, so the pid is still the child's
            status = self.reap(pid)
        return status

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ForkServer(tmp_path_factory.mktemp("fork-server") / "stderr.txt")
    yield server
    server.close()


def kill_trials(server, root: Path, writer: str, seed: int):
    """TRIALS runs killed with SIGKILL at seeded random moments: [(newest checkpoint, loads?, stray
    temporaries)]."""
    delays = random.Random(seed)
    results = []
    for trial in range(TRIALS):
        folder = root / f"{writer}-{trial}"
        status = server.kill_at(folder, delays.uniform(*KILL_DELAYS), writer=writer, epochs=3, every=1)
        assert status == {"signal": signal.SIGKILL}, f"trial {trial} ended with {status}; {server.errors()}"
        newest = files(folder)[-1]
        try:
            optim.load_checkpoint(newest)
            loads = True
        except layers.ModelFileError:
            loads = False
        results.append((newest, loads, temporaries(folder)))
    return results


# ---- SIGKILL -----------------------------------------------------------------------------------------

def test_after_a_sigkill_at_a_random_moment_the_newest_checkpoint_always_loads(server, tmp_path):
    """40 kills while checkpointing every batch through the atomic writer on a slow disk."""
    results = kill_trials(server, tmp_path, "slow", seed=1)
    unloadable = [newest.name for newest, loads, _ in results if not loads]
    with_strays = sum(1 for _, _, strays in results if strays)
    print(f"\nSIGKILL, atomic writer: {TRIALS} kills, {TRIALS - len(unloadable)} newest loadable, "
          f"{with_strays} killed mid-write (a temporary file left)")
    assert not unloadable
    assert with_strays > 0      # kills did land in the middle of writes: the test had teeth
    for newest, _, strays in results:
        assert optim.latest_checkpoint(newest.parent) == newest
        assert optim.load_checkpoint(newest.parent).path == newest
        assert not set(strays) & set(files(newest.parent))


def test_a_naive_writer_fails_the_same_test(server, tmp_path):
    """The same kills with the same slow chunks written straight to the final path: the test sees the
    damage."""
    results = kill_trials(server, tmp_path, "naive", seed=1)
    unloadable = [newest.name for newest, loads, _ in results if not loads]
    print(f"\nSIGKILL, naive writer: {TRIALS} kills, {len(unloadable)} newest unloadable")
    assert unloadable
    assert not any(strays for _, _, strays in results)


def test_resume_after_a_sigkill_mid_epoch_is_bit_identical(server, tmp_path):
    reference = tmp_path / "reference.npz"
    pid = server.start(tmp_path / "uninterrupted", epochs=3, every=0, writer="real", final=reference)
    assert server.reap(pid) == {"exit": 0}, server.errors()

    delays = random.Random(2)
    # until the kill leaves a mid-epoch checkpoint newest (almost always the first)
    for attempt in range(5):
        folder = tmp_path / f"killed-{attempt}"
        status = server.kill_at(folder, delays.uniform(0.05, 0.4), epochs=3, every=1, writer="slow")
        assert status == {"signal": signal.SIGKILL}, server.errors()
        start = optim.load_checkpoint(folder)
        if start.position > 0:
            break
    assert 0 < start.position and start.epoch < 3

    model, history = worker.train(folder, epochs=3, every=1, resume=True)
    assert same_bits(model, layers.load(reference))
    assert without_seconds(history) == without_seconds(layers.load_extra(reference)["history"])
    assert start.path.exists()  # the checkpoint resumed from is kept


# ---- SIGINT and SIGTERM to a training process -------------------------------------------------------

def start_training(folder, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER_PATH), "train", str(folder), "--epochs", "100000",
                             *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def read_line(process, timeout: float = TIMEOUT) -> str:
    """One line of the process's stdout (read unbuffered, so that select sees what is left)."""
    fd, line = process.stdout.fileno(), b""
    while not line.endswith(b"\n"):
        if not select.select([fd], [], [], timeout)[0]:
            raise AssertionError(f"no line from the training process in {timeout} s")
        byte = os.read(fd, 1)
        if not byte:
            raise AssertionError("the training process ended early: "
                                 f"{process.communicate()[1].decode()[-3000:]}")
        line += byte
    return line.decode().strip()


def finish(process) -> str:
    try:
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return stderr.decode(errors="replace")


AT = N_BATCHES + 2                        # the signal arrives during epoch 1, batch 2
STOP = divmod(AT + 1, N_BATCHES)          # the next batch boundary: (1, 3)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_training_at_the_next_batch_boundary_with_a_checkpoint(tmp_path, signum):
    folder = tmp_path / "run"
    process = start_training(folder, "--every", "0", "--announce", str(AT))   # checkpoints: each epoch's end
    try:
        assert read_line(process) == f"at {AT}"
        process.send_signal(signum)
    finally:
        stderr = finish(process)
    # an uncaught TrainingInterrupted (a KeyboardInterrupt) that names the checkpoint
    if signum == signal.SIGINT:
        assert process.returncode == 1, stderr
        assert "optim.errors.TrainingInterrupted: training interrupted" in stderr, stderr
        assert str(files(folder)[-1]) in stderr.splitlines()[-1], stderr
    else:                        # the end the signal itself would give
        assert process.returncode == -signum and "Traceback" not in stderr, stderr
    stopped = optim.load_checkpoint(files(folder)[-1])
    assert (stopped.epoch, stopped.position) == STOP          # not a checkpoint of the epoch schedule
    assert stopped.state.step == AT + 1
    assert not temporaries(folder)

    # an exact batch boundary: resumed from it, the run is the uninterrupted one
    epochs = stopped.epoch + 1
    reference, reference_history = worker.train(tmp_path / "reference", epochs, 0)
    model, history = worker.train(folder, epochs, 0, resume=True)
    assert same_bits(model, reference)
    assert without_seconds(history) == without_seconds(reference_history)


def test_a_second_sigint_during_the_save_cannot_corrupt_it(tmp_path):
    """Ctrl-C twice: the second arrives while the checkpoint of the first is being written (slowly)."""
    expected = f"checkpoint-{STOP[0]:05d}-{STOP[1]:07d}.npz"
    hit_the_save = False
    for attempt in range(3):    # until the second SIGINT lands during the save (almost always the first time)
        folder = tmp_path / f"run-{attempt}"
        process = start_training(folder, "--every", "0", "--announce", str(AT),
                                 "--writer", "slow", "--chunk", "256", "--pause", "0.005")
        try:
            assert read_line(process) == f"at {AT}"
            process.send_signal(signal.SIGINT)
            saving = wait_for(lambda: [t for t in temporaries(folder) if final_name(t) == expected],
                              "the save after the first SIGINT")[0]
            process.send_signal(signal.SIGINT)
            hit_the_save = saving.exists()
        finally:
            stderr = finish(process)
        assert process.returncode == 1 and "TrainingInterrupted" in stderr.splitlines()[-1], stderr
        assert files(folder)[-1].name == expected               # that save was completed, not abandoned
        stopped = optim.load_checkpoint(files(folder)[-1])
        assert stopped.state.step == AT + 1
        assert not temporaries(folder)
        if hit_the_save:
            break
    assert hit_the_save


# ---- signals in-process: the handlers are restored --------------------------------------------------

class RaiseSignal:
    """A transform that sends ``signum`` to this process while converting batch ``at`` (counted from the start
    of fit)."""

    def __init__(self, signum, at):
        self.signum, self.at, self.calls = signum, at, -1   # fit's first call is a 1-row probe

    def __repr__(self):
        return "RaiseSignal()"

    def __call__(self, xb):
        if self.calls == self.at:
            signal.raise_signal(self.signum)
        self.calls += 1
        return xb


def fit_in_process(folder=None, *, epochs=3, transform=None, opt=None, rng=None):
    model, loss, default_opt, x, y = worker.problem()
    return optim.fit(model, loss, opt or default_opt, x, y, epochs=epochs, batch_size=worker.BATCH_SIZE,
                     rng=rng or np.random.default_rng(0), progress=False, checkpoint=folder,
                     transform=transform)


@pytest.fixture
def saved_handlers():
    """Whatever a test does to the handlers of SIGINT and SIGTERM is undone after it."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield saved
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("at", [N_BATCHES + 2, 2 * N_BATCHES - 1], ids=["mid-epoch", "last-batch"])
def test_sigint_stops_at_the_next_boundary_writes_a_checkpoint_restores_the_handler_and_raises(
        tmp_path, saved_handlers, at):
    original = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as caught:
        fit_in_process(tmp_path, epochs=4, transform=RaiseSignal(signal.SIGINT, at))
    assert isinstance(caught.value, optim.TrainingInterrupted)
    assert caught.value.checkpoint == files(tmp_path)[-1]
    assert signal.getsignal(signal.SIGINT) is original
    assert signal.getsignal(signal.SIGTERM) is saved_handlers[signal.SIGTERM]
    stopped = optim.load_checkpoint(tmp_path)
    assert (stopped.epoch, stopped.position) == divmod(at + 1,
                                                       N_BATCHES)   # right after the batch of the signal
    assert stopped.state.step == at + 1


def test_sigterm_ends_through_the_original_handler_after_the_checkpoint(tmp_path, saved_handlers):
    class Terminated(Exception):
        pass

    def on_sigterm(signum, frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    at = N_BATCHES + 5
    with pytest.raises(Terminated):
        fit_in_process(tmp_path, epochs=4, transform=RaiseSignal(signal.SIGTERM, at))
    assert signal.getsignal(signal.SIGTERM) is on_sigterm
    assert signal.getsignal(signal.SIGINT) is saved_handlers[signal.SIGINT]
    stopped = optim.load_checkpoint(tmp_path)
    assert (stopped.epoch, stopped.position) == divmod(at + 1, N_BATCHES)


def test_the_handlers_are_restored_after_a_normal_end_and_after_an_error(tmp_path, saved_handlers):
    def mine(signum, frame):
        pass

    signal.signal(signal.SIGINT, mine)
    fit_in_process(epochs=1)
    assert signal.getsignal(signal.SIGINT) is mine
    with pytest.raises(optim.NonFiniteLossError), np.errstate(all="ignore"):
        fit_in_process(tmp_path, opt=optim.SGD(1e38))
    assert signal.getsignal(signal.SIGINT) is mine
    assert signal.getsignal(signal.SIGTERM) is saved_handlers[signal.SIGTERM]


def test_an_ignored_sigint_stays_ignored(tmp_path, saved_handlers):
    """A process that ignores SIGINT (a background job of a script, say) keeps training through it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, history = fit_in_process(tmp_path, epochs=2, transform=RaiseSignal(signal.SIGINT, 3))
    except KeyboardInterrupt:
        pytest.fail("fit stopped on a SIGINT that the process ignores")
    assert len(history["loss"]) == 2
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    assert [(c.epoch, c.position) for c in map(optim.load_checkpoint, files(tmp_path))] == [(1, 0), (2, 0)]


def test_fit_in_another_thread_leaves_the_handlers_alone(saved_handlers):
    results = []
    thread = threading.Thread(target=lambda: results.append(fit_in_process(epochs=1)))
    thread.start()
    thread.join(TIMEOUT)
    assert len(results) == 1 and len(results[0][1]["loss"]) == 1
    assert {s: signal.getsignal(s) for s in saved_handlers} == saved_handlers
