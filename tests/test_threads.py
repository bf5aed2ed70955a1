"""BLAS threads in fit and evaluate: the chooser's logic on a simulated machine (injected clock and BLAS),
pinning, leaving alone, $LAMINA_THREADS and the history. No wall-clock limits: every time here is
simulated."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from lamina import layers, losses, optim
from lamina.layers import split_rows
from lamina.optim import threads as T
from lamina.optim.threads import BlasThreads


def blas_threads() -> int:
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


class Machine:
    """A simulated BLAS and clock: a batch at ``threads`` takes ``cost(threads, batch index)`` seconds."""

    def __init__(self, cost, threads=2, idle_rate=None, free=None):
        self.cost, self.threads, self.now, self.sets = cost, threads, 0.0, []
        self.idle_rate = idle_rate  # idle cores (a function of the batch index), None: unknown
        self.free_now = free        # cores other processes leave free (a function of the batch index)

        self.batch = 0
        self.idle_total = 0.0

    # the BLAS handle
    def get(self):
        return self.threads

    def set(self, n):
        self.threads = n
        self.sets.append(n)

    def save(self):
        return [self.threads]

    def restore(self, saved):
        self.threads = saved[0]

    # the clocks
    def clock(self):
        return self.now

    def idle(self):
        return self.idle_total if self.idle_rate is not None else None

    def free(self):
        return self.free_now(self.batch) if self.free_now is not None else None

    def chooser(self, counts=(1, 2)):
        return BlasThreads("auto", counts=counts, clock=self.clock, blas=self, idle=self.idle, free=self.free)

    def run(self, chooser, batches, n=32):
        """Run ``batches`` batches of ``n`` samples; the counts they ran at."""
        ran = []
        for _ in range(batches):
            with chooser.batch(n):
                seconds = self.cost(self.threads, self.batch)
                self.now += seconds
                if self.idle_rate is not None:
                    self.idle_total += self.idle_rate(self.batch) * seconds
            ran.append(self.threads)
            self.batch += 1
        return ran


@pytest.fixture
def auto(monkeypatch):
    """fit and evaluate choose ("auto"), as outside the test suite."""
    monkeypatch.delenv("LAMINA_THREADS", raising=False)


def two_faster(threads, batch):      # a wide network on an idle machine (W2-like)
    return 0.004 if threads == 1 else 0.003


def one_faster(threads, batch):      # a narrow one (W1-like)
    return 0.0003 if threads == 1 else 0.0004


def test_keeps_the_faster_count(auto):
    for cost, best in ((two_faster, 2), (one_faster, 1)):
        machine = Machine(cost)
        with machine.chooser() as chooser:
            ran = machine.run(chooser, 3000)
            assert chooser.rounds[0].keys() == {1, 2}
            assert chooser.epoch() == best
        assert ran[-1] == best
        assert machine.now < 1.03 * 3000 * cost(best, 0)  # the trials cost less than 3% of the time
        assert machine.threads == 2  # the setting before is restored


def test_fewer_threads_unless_more_are_clearly_faster(auto):
    machine = Machine(lambda threads, batch: 0.004 if threads == 1 else 0.0039)  # 2.5% faster: within MARGIN
    with machine.chooser() as chooser:
        machine.run(chooser, 200)
        assert chooser.epoch() == 1


def test_leaves_two_threads_within_a_few_batches_when_another_process_takes_a_core(auto):
    start = 2000

    def cost(threads, batch):
        if batch < start:
            return two_faster(threads, batch)
        return 0.008 if threads == 1 else 0.2  # the other core is taken: two threads wait a time slice

    machine = Machine(cost)
    with machine.chooser() as chooser:
        ran = machine.run(chooser, 2600)
    assert ran[start - 1] == 2
    assert ran[start:].count(2) <= T.STREAK + 1  # the slow streak, and one batch more at most
    assert ran[-1] == 1


def test_goes_back_to_two_threads_when_the_core_is_free_again(auto):
    def cost(threads, batch):
        busy = 1000 <= batch < 3000
        return (0.008 if threads == 1 else 0.2) if busy else two_faster(threads, batch)

    machine = Machine(cost)
    with machine.chooser() as chooser:
        ran = machine.run(chooser, 3000 + int(2 * T.MAX_INTERVAL / 0.004))
    assert ran[2999] == 1 and ran[-1] == 2


def test_a_collapsing_count_costs_one_batch_per_round_and_rounds_stay_within_budget(auto):
    def cost(threads, batch):  # the other core busy throughout: two threads 50x slower
        return 0.004 if threads == 1 else 0.2

    machine = Machine(cost)
    with machine.chooser() as chooser:
        ran = machine.run(chooser, 20000)
        rounds = chooser.rounds
    # every trial of 2 stopped after its first batch
    assert all(results[2] == pytest.approx(0.2) for results in rounds)
    assert ran.count(2) == len(rounds)
    assert machine.now < 1.05 * 20000 * 0.004  # the trials cost less than 5%


def test_no_more_threads_tried_while_no_core_is_idle(auto):
    machine = Machine(lambda threads, batch: 0.004 if threads == 1 else 0.2, idle_rate=lambda batch: 0.0)
    with machine.chooser() as chooser:
        ran = machine.run(chooser, 20000)
    # the first round's stretch is too short to read the idle counts: two threads get one batch (aborted);
    # after that the machine is seen to have no idle core and they are never tried again
    assert ran.count(2) <= 2 and 2 not in ran[20:]

    machine = Machine(two_faster, idle_rate=lambda batch: 1.0 if machine.threads == 1 else 0.0)
    with machine.chooser() as chooser:
        ran = machine.run(chooser, 200)
    assert ran[-1] == 2


def test_a_loop_that_starts_while_another_process_holds_a_core_never_tries_two_threads(auto):
    def cost(threads, batch):  # the other core busy from the start: two threads 50x slower
        return 0.004 if threads == 1 else 0.2

    # the first round is too short for the idle counts; the running threads say one core of two is taken
    # (and, with no idle counts at all, a later round reads them once before it would try two threads)
    for idle_rate in (lambda batch: 0.0, None):
        machine = Machine(cost, idle_rate=idle_rate, free=lambda batch: 1)
        with machine.chooser() as chooser:
            ran = machine.run(chooser, 20000)
            assert chooser.rounds[0] == {1: pytest.approx(0.004)} and len(chooser.rounds) > 3
        assert 2 not in ran

    # on a free machine the same reading lets the first round try two threads, and keep them when faster
    machine = Machine(two_faster, idle_rate=lambda batch: 2.0 - machine.threads, free=lambda batch: 2)
    with machine.chooser() as chooser:
        ran = machine.run(chooser, 200)
        assert chooser.rounds[0].keys() == {1, 2}
    assert ran[-1] == 2


def test_free_cores_reads_this_machine():
    free = T.free_cores()
    assert free is None or free <= (os.cpu_count() or 1)


def test_a_short_last_batch_is_not_a_measurement(auto):
    short = [False]

    def cost(threads, batch):  # one thread is faster; short batches are (falsely) very fast at two
        if short[0]:
            return 0.0001 if threads == 2 else 0.003
        return 0.003 if threads == 1 else 0.004

    machine = Machine(cost)
    with machine.chooser() as chooser:
        for i in range(400):  # every tenth batch is short
            short[0] = i % 10 == 9
            machine.run(chooser, 1, n=5 if short[0] else 32)
        assert all(results[1] < results[2] for results in chooser.rounds)
        assert chooser.epoch() == 1


def test_epoch_reports_the_count_of_most_batches_and_starts_over(auto):
    machine = Machine(two_faster)
    with machine.chooser() as chooser:
        machine.run(chooser, 500)
        first = chooser.epoch()
        machine.run(chooser, 5)
        assert (first, chooser.epoch()) == (2, 2)


def test_candidate_counts():
    assert T.candidates(1) == [1]
    assert T.candidates(2) == [1, 2]
    assert T.candidates(6) == [1, 2, 4, 6]
    assert T.candidates(8) == [1, 2, 4, 8]


def test_auto_tries_blas_on_fewer_threads_than_the_parts():
    assert T.settings(1) == [1]
    assert T.settings(2) == [1, (1, 2), 2]
    assert T.settings(4) == [1, (1, 2), 2, (2, 4), 4]
    assert [T.blas_and_parts(c) for c in T.settings(2)] == [(1, 1), (1, 2), (2, 2)]


def cnn_like(threads, batch):
    """Small products: parts on two cores pay, two BLAS threads do not (they spin on the parts' core)."""
    return {(1, 1): 0.006, (1, 2): 0.0045, (2, 2): 0.007}[threads, split_rows.parts()]


def test_keeps_one_blas_thread_and_two_parts_when_that_is_fastest(auto):
    machine = Machine(cnn_like)
    with machine.chooser(counts=T.settings(2)) as chooser:
        ran = machine.run(chooser, 3000)
        assert chooser.rounds[0].keys() == {1, (1, 2), 2}
        assert (machine.threads, split_rows.parts()) == (1, 2)
        assert chooser.epoch() == 2                            # the threads it ran on: the parts
    assert ran.count(2) < 0.03 * len(ran)                      # BLAS at two threads in the trials only
    assert machine.now < 1.03 * 3000 * 0.0045
    assert (machine.threads, split_rows.parts()) == (2, 1)     # both settings restored


def test_no_parts_tried_while_another_process_holds_a_core(auto):
    machine = Machine(cnn_like, free=lambda batch: 1)
    with machine.chooser(counts=T.settings(2)) as chooser:
        machine.run(chooser, 3000)
        assert all(results.keys() == {1} for results in chooser.rounds)


def test_a_pair_pins_blas_threads_and_parts_apart():
    with threadpool_limits(2, user_api="blas"):
        with BlasThreads((1, 2)) as chooser:
            assert (blas_threads(), split_rows.parts(), chooser.epoch()) == (1, 2, 2)
        assert (blas_threads(), split_rows.parts()) == (2, 1)
    _, history, seen = train((1, 2))
    assert history["threads"] == [2, 2] and set(seen) == {1}
    for a, b in zip(weights(train((1, 2))[0]), weights(train(1)[0])):   # parts never change a bit
        assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "two", "0", (1,), (1, 0), (1, 2, 3), (True, 2)])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError, match="threads must be"):
        BlasThreads(bad)


# ---------------------------------------------------------------- fit and evaluate

def problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = layers.mlp(np.random.default_rng(1), [8, 16, 2])
    return model, losses.SoftmaxCrossEntropy(), optim.SGD(learning_rate=0.1, momentum=0.9), x, y


class SeeThreads:
    def __init__(self):
        self.seen = []

    def on_batch_end(self, run):
        self.seen.append(blas_threads())


def train(threads="auto", epochs=2, **kwargs):
    model, loss, opt, x, y = problem()
    seen = SeeThreads()
    extra = {} if threads == "default" else {"threads": threads}
    trained, history = optim.fit(model, loss, opt, x, y, epochs=epochs, batch_size=16,
                                 rng=np.random.default_rng(2),
                                 progress=False, callbacks=[seen], **extra, **kwargs)
    return trained, history, seen.seen


def weights(model):
    return [np.array(p) for p in layers.parameters(model)]


def test_the_suite_pins_one_thread():
    import os
    assert os.environ["LAMINA_THREADS"] == "1"
    _, history, seen = train("default")
    assert history["threads"] == [1, 1] and set(seen) == {1}


def test_an_int_pins_and_the_setting_is_restored():
    with threadpool_limits(1, user_api="blas"):
        _, history, seen = train(2)
        assert set(seen) == {2} and history["threads"] == [2, 2]
        assert blas_threads() == 1


def test_none_leaves_the_setting_alone():
    for outer in (1, 2):
        with threadpool_limits(outer, user_api="blas"):
            _, history, seen = train(None)
            assert set(seen) == {outer} and history["threads"] == [None, None]
            assert blas_threads() == outer


@pytest.mark.parametrize("value, expected", [("2", 2), (" 1 ", 1), ("none", None)])
def test_lamina_threads_replaces_the_default(monkeypatch, value, expected):
    monkeypatch.setenv("LAMINA_THREADS", value)
    with threadpool_limits(1, user_api="blas"):
        _, history, seen = train("default")
        assert history["threads"] == [expected] * 2
        assert set(seen) == {expected if expected is not None else 1}
        _, history, _ = train(1)  # an int given to fit stays
        assert history["threads"] == [1, 1]


def test_a_bad_lamina_threads_is_named(monkeypatch):
    monkeypatch.setenv("LAMINA_THREADS", "many")
    with pytest.raises(ValueError, match=r"\$LAMINA_THREADS must be"):
        train("default")
    model, loss, _, x, y = problem()
    with pytest.raises(ValueError, match=r"\$LAMINA_THREADS must be"):
        optim.evaluate(model, loss, x, y)


def test_auto_records_json_counts_and_restores(auto):
    with threadpool_limits(2, user_api="blas"):
        _, history, seen = train("auto", epochs=3, validation=problem(5)[3:])
        assert blas_threads() == 2
    assert all(count in (1, 2) for count in history["threads"]) and len(history["threads"]) == 3
    assert set(seen) <= {1, 2}
    assert json.loads(json.dumps(history)) == history


def test_timing_does_not_change_the_numbers(auto, monkeypatch):
    """With one candidate, "auto" times every batch and must give the bits of the pinned count."""
    monkeypatch.setattr(T, "settings", lambda most: [1])
    chosen, history, _ = train("auto")
    pinned, _, _ = train(1)
    assert history["threads"] == [1, 1]
    for a, b in zip(weights(chosen), weights(pinned)):
        assert np.array_equal(a, b)


def test_evaluate_pins_and_chooses(auto):
    model, loss, _, x, y = problem()
    with threadpool_limits(1, user_api="blas"):
        pinned = optim.evaluate(model, loss, x, y, batch_size=8, threads=2)
        chosen = optim.evaluate(model, loss, x, y, batch_size=8)
        assert blas_threads() == 1
    assert chosen["accuracy"] == pinned["accuracy"]
    assert chosen["loss"] == pytest.approx(pinned["loss"], rel=1e-6)


def test_the_count_splits_element_wise_work_as_many_ways_and_is_restored():
    with threadpool_limits(1, user_api="blas"):
        with BlasThreads(2):
            assert split_rows.parts() == 2
        assert split_rows.parts() == 1
        with BlasThreads(None):
            assert split_rows.parts() == 1
