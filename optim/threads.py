"""BLAS threads for a loop of batches: pinned (an int), left alone (None), or chosen by timing the batches
("auto").

``fit`` and ``evaluate`` wrap their loop in ``BlasThreads(threads)`` and each batch's work in
``blas.batch(n)``:

    with BlasThreads(threads) as blas:
        for xb, yb in ...:
            with blas.batch(len(xb)):
                ...forward, backward, update...
        history["threads"].append(blas.epoch())

"auto" measures on the work itself. A *round* runs each candidate count for a warm-up batch and
then at least ``MIN_BATCHES`` batches and ``MIN_SECONDS`` of them, and keeps the count with the
least mean time per batch (the fewer threads unless more are ``MARGIN`` faster). The first round
tries every candidate; later rounds try the counts next to the chosen one and the chosen one
again last. A round starts:

- now and then: after ``INTERVAL`` seconds of batches, doubled each time the choice stands
  (up to ``MAX_INTERVAL``), back to ``INTERVAL`` when it changes;
- when a batch turns slow: ``STREAK`` batches in a row slower than ``SLOW`` times the usual
  (another process took a core: two OpenBLAS threads then wait a time slice at every matrix
  product, 10-100x slower);

never sooner than ``BUDGET`` times what the last round cost (its time less the chosen count's
time for as many batches), so trials stay a few percent of the run whatever the machine does.
A candidate is dropped from a round as soon as its batches take ``ABORT`` times the best known
mean: a count that collapses costs one batch. More threads are not tried while the machine has no
free core for them, a trial there could only collapse: over a stretch of batches long enough to tell,
the machine's idle time (``/proc/stat``); over a shorter one (the first round, at the very start),
the threads of other processes running at each of its batches (``/proc/loadavg``, where there is one).
So a loop that starts while another process holds a core runs on one thread from its first batch.

A candidate is a thread count ``n`` (BLAS on ``n`` threads, and large element-wise work and convolution
blocks split in ``n`` parts, ``layers/split_rows``) or a pair ``(blas, parts)`` that sets the two apart: on
two cores "auto" tries ``1``, ``(1, 2)`` and ``2``. The pair wins where the matrix products are small (a
CNN: its convolution blocks run in parts, each with its own one-thread product, and the dense products at
one thread leave no BLAS thread spinning on the core the next parts need). The parts never change a bit;
timing never changes the numbers either: the same batches run, only the BLAS thread count differs, and
that is fixed at a pinned int (bit for bit).
"""

from __future__ import annotations

import collections
import os
import time
from contextlib import nullcontext

from lamina.layers import split_rows
from lamina.layers.settings import is_int

AUTO = "auto"
ENV = "LAMINA_THREADS"

WARM = 1              # batches run and not measured after each switch
MIN_BATCHES = 4       # measured batches per candidate in a round, at least ...
MIN_SECONDS = 0.05    # ... and at least this much time
MAX_BATCHES = 400     # but never more batches than this
MARGIN = 0.03         # more threads must be this much faster to be chosen
ABORT = 2.5           # a candidate whose batches take this times the best known mean leaves the round
SLOW = 1.5            # a batch this much slower than the usual is slow ...
STREAK = 3            # ... and this many in a row start a round
INTERVAL = 2.0        # seconds of batches between rounds, at first
MAX_INTERVAL = 32.0
BUDGET = 25.0         # no round sooner than this times the last round's cost (~4% of the time at most)
IDLE = 0.5            # a core counts as free when it was idle at least this part of the stretch
IDLE_WINDOW = 0.5     # seconds: a shorter stretch says nothing (the kernel's idle counts move in ticks, and
                      # lazily for a sleeping core), so the trial goes ahead: a collapse costs one batch
SMOOTH = 0.05         # weight of a new batch in the usual time (an average over ~20 batches)


def parse(value, source: str = "threads"):
    """"auto", None, a positive int or a (BLAS threads, parts) pair of them from a setting (a string from the
    environment: "auto", "none" or digits)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if text in ("none", ""):
            return None
        if text.isdigit() and int(text) > 0:
            return int(text)
    elif value is None:
        return None
    elif _positive(value):
        return int(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_positive, value)):
        return int(value[0]), int(value[1])
    raise ValueError(f"{source} must be \"auto\", None, a positive int or a pair of them (BLAS threads, "
                     f"parts), got {value!r}")


def _positive(value) -> bool:
    return is_int(value) and value > 0


def resolve(threads, who: str = "fit"):
    """The setting in force: ``threads``, except that $LAMINA_THREADS (when set) replaces "auto"."""
    threads = parse(threads, f"{who}: threads")
    if threads == AUTO and os.environ.get(ENV) is not None:
        return parse(os.environ[ENV], f"${ENV}")
    return threads


class Blas:
    """The thread count of the loaded BLAS libraries (through threadpoolctl, looked up once)."""

    def __init__(self):
        self.libraries = split_rows.blas_libraries()

    def get(self) -> int | None:
        counts = [library.num_threads for library in self.libraries]
        return max(counts) if counts else None

    def set(self, n: int) -> None:
        for library in self.libraries:
            library.set_num_threads(n)

    def save(self):
        return [library.num_threads for library in self.libraries]

    def restore(self, saved) -> None:
        for library, n in zip(self.libraries, saved):
            library.set_num_threads(n)


def idle_seconds() -> float | None:
    """CPU-seconds the whole machine has been idle since boot (Linux /proc/stat), None where unknown."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_loadavg = None   # a descriptor of /proc/loadavg, opened once (a fresh open costs ~10x a read)


def _running_threads() -> int:
    """Threads running or ready to run on the whole machine now, this reader included (/proc/loadavg)."""
    global _loadavg
    if _loadavg is None:
        _loadavg = os.open("/proc/loadavg", os.O_RDONLY)
    return int(os.pread(_loadavg, 128, 0).split()[3].split(b"/")[0])


def _own_running_threads() -> int:
    """This process's threads running or ready to run now (/proc/self/task/*/stat)."""
    n = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(os.path.join(task.path, "stat"), "rb") as f:
                n += f.read().rpartition(b")")[2].split()[0] == b"R"
        except OSError:  # a thread that just ended
            pass
    return n


def free_cores() -> int | None:
    """Cores other processes leave to this one now: the CPUs less the other processes' threads running or
    ready to run (Linux), None where unknown."""
    try:
        total = _running_threads()
        others = max(0, total - _own_running_threads()) if total > 1 else 0
        return (os.cpu_count() or 1) - others
    except (OSError, ValueError, IndexError):
        return None


def candidates(most: int) -> list[int]:
    """1, 2, 4, ... up to ``most``, and ``most`` itself."""
    counts, n = [], 1
    while n < most:
        counts.append(n)
        n *= 2
    return counts + [most]


def most_threads(blas) -> int:
    """The most threads worth trying: the least of the BLAS's thread count (``blas.get()``) and the CPUs this
    process may use."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(blas.get() or 1, cpus))


def settings(most: int) -> list:
    """The candidates "auto" tries: each count of ``candidates(most)``, and before each count after the
    first, the pair (the count before it, this count): BLAS on fewer threads than the work's parts."""
    counts = candidates(most)
    return [counts[0], *(c for before, count in zip(counts, counts[1:]) for c in ((before, count), count))]


def blas_and_parts(candidate) -> tuple[int, int]:
    """A candidate's (BLAS threads, parts): ``n`` is ``(n, n)``."""
    return (candidate, candidate) if isinstance(candidate, int) else tuple(candidate)


def _threads(candidate) -> int:
    """The threads a candidate runs on."""
    return max(blas_and_parts(candidate))


def _order(candidate) -> tuple[int, int]:
    """Fewer threads first, then fewer BLAS threads."""
    return _threads(candidate), blas_and_parts(candidate)[0]


class _Timing:
    """The context of one batch: times it and tells the chooser."""

    __slots__ = ("chooser", "clock", "n", "t0")

    def __init__(self, chooser, clock):
        self.chooser, self.clock, self.n, self.t0 = chooser, clock, 0, 0.0

    def __enter__(self):
        self.t0 = self.clock()
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.chooser.record(self.n, self.clock() - self.t0)
        return False


class BlasThreads:
    """The BLAS thread count for one loop (``fit``'s or ``evaluate``'s): pinned, left alone, or chosen
    ("auto").

    ``threads``: "auto", a positive int, a (blas, parts) pair or None ($LAMINA_THREADS replaces "auto").
    ``counts``, ``clock``, ``blas``, ``idle`` and ``free`` are for tests and special machines: the candidates
    (ints and (blas, parts) pairs; default: ``settings(n)``, n the least of the BLAS's thread count and the
    CPUs this process may use), the timer, the BLAS handle (``get``/``set``/``save``/``restore``), the
    machine's idle CPU-seconds and the cores other processes leave free now (each None, or returning None:
    unknown, more threads are tried).
    """

    def __init__(self, threads=AUTO, *, who: str = "fit", counts=None, clock=time.perf_counter, blas=None,
                 idle=idle_seconds, free=free_cores):
        self.setting = resolve(threads, who)
        self.blas = None if self.setting is None else (blas if blas is not None else Blas())
        self.clock, self.idle, self.free = clock, idle, free
        self.counts = list(counts) if counts is not None else None
        self.current = None
        self.used = collections.Counter()   # batches per count this epoch
        self.rounds = []                    # every finished round: {count: mean seconds per batch}
        self._saved = None
        self._timing = _Timing(self, clock) if self.setting == AUTO else None
        self._none = nullcontext()

    # ---------------------------------------------------------------- the loop's hooks

    def __enter__(self):
        if self.setting is None:
            return self
        self._saved = self.blas.save(), split_rows.parts()
        if self.setting != AUTO:
            self._switch(self.setting)
            return self
        if self.counts is None:
            self.counts = settings(most_threads(self.blas))
        self.counts = sorted(set(self.counts), key=_order)
        self._size = None           # the batch size measured (a short last batch is not a measurement)
        self._chosen = None
        self._usual = None          # the chosen count's usual seconds per batch (a running mean)
        self._recent = collections.deque(maxlen=4)
        self._streak = 0
        self._since = 0.0           # seconds of batches since the last round
        self._interval = INTERVAL
        self._gap = 0.0             # no round before this many seconds of batches since the last
        self._idle_mark = None      # (idle CPU-seconds, clock) when the last trial or round began
        self._free_seen = []        # the cores left free, read at each batch of the trial under way
        self._trial = None
        self._start_round(list(self.counts))
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            self.blas.restore(self._saved[0])
            split_rows.set_parts(self._saved[1])
            self._saved = None
        return False

    def batch(self, n: int):
        """The context of one batch of ``n`` samples (timed under "auto")."""
        if self._timing is None:
            return self._none
        self._timing.n = n
        return self._timing

    def epoch(self):
        """The threads of the candidate that ran the most batches since the last call (ties: the fewer
        threads); the pin's, or None."""
        if self.setting is None:
            return None
        if self.setting != AUTO or not self.used:
            return _threads(self.current)
        most = max(self.used.values())
        count = min((c for c, k in self.used.items() if k == most), key=_order)
        self.used.clear()
        return _threads(count)

    # ---------------------------------------------------------------- choosing

    def _switch(self, candidate) -> None:
        if candidate != self.current:
            blas, parts = blas_and_parts(candidate)
            if self.current is None or blas != blas_and_parts(self.current)[0]:
                self.blas.set(blas)
            split_rows.set_parts(parts)
            self.current = candidate

    def record(self, n: int, seconds: float) -> None:
        """One batch of ``n`` samples took ``seconds`` at the current count: measure, and switch if it is
        time."""
        self.used[self.current] += 1
        if self._size is None:
            self._size = n
        elif n != self._size:
            return
        if self._trial is not None:
            self._trial_batch(seconds)
            return
        self._since += seconds
        if self._usual is None or seconds > SLOW * self._usual:
            self._streak += 1
        else:
            self._streak = 0
            self._usual += SMOOTH * (seconds - self._usual)
        self._recent.append(seconds)
        if (self._streak >= STREAK or self._since >= self._interval) and self._since >= self._gap:
            self._start_round(self._neighbours() + [self._chosen])

    def _neighbours(self) -> list[int]:
        i = self.counts.index(self._chosen)
        return [c for c in (self.counts[i - 1] if i else None,
                            self.counts[i + 1] if i + 1 < len(self.counts) else None) if c is not None]

    def _start_round(self, plan: list[int]) -> None:
        self._plan = collections.deque(plan)
        self._results = {}
        self._reference = sum(self._recent) / len(self._recent) if self._recent else None
        self._round_seconds, self._round_batches = 0.0, 0
        self._next_trial()

    def _free_cores(self) -> float | None:
        """Cores the machine left idle since the mark (the start of the last trial or round): its idle time
        over a stretch long enough to tell, else the free cores read at the trial's batches (or now, when
        none ran since) less the threads running it; None: unknown."""
        mark = self._idle_mark
        now = self.idle() if self.idle is not None and mark is not None and mark[0] is not None else None
        if now is not None and self.clock() - mark[1] >= IDLE_WINDOW:
            return (now - mark[0]) / (self.clock() - mark[1])
        seen = self._free_seen or [self.free() if self.free is not None else None]
        if seen[0] is None:
            return None
        return sum(seen) / len(seen) - _threads(self.current)

    def _mark(self) -> None:
        self._idle_mark = (self.idle(), self.clock()) if self.idle is not None else None
        self._free_seen.clear()

    def _next_trial(self) -> None:
        while self._plan:
            count = self._plan.popleft()
            more = _threads(count) - _threads(self.current) if self.current is not None else 0
            if more > 0:
                free = self._free_cores()
                if free is not None and free < IDLE * more:
                    continue  # no idle core for the extra threads: they could only collapse
            self._switch(count)
            self._mark()
            # count, warm-up left, measured, their seconds, all, all seconds
            self._trial = [count, WARM, 0, 0.0, 0, 0.0]
            return
        self._finish_round()

    def _trial_batch(self, seconds: float) -> None:
        trial = self._trial
        free = self.free() if self.free is not None else None
        if free is not None:
            self._free_seen.append(free)
        self._round_seconds += seconds
        self._round_batches += 1
        trial[4] += 1
        trial[5] += seconds
        known = [*self._results.values(), *([self._reference] if self._reference is not None else [])]
        if known and trial[5] > ABORT * min(known) * trial[4]:
            self._results[trial[0]] = trial[5] / trial[4]
            self._next_trial()
            return
        if trial[1]:
            trial[1] -= 1
            return
        trial[2] += 1
        trial[3] += seconds
        if trial[2] >= MIN_BATCHES and (trial[3] >= MIN_SECONDS or trial[2] >= MAX_BATCHES):
            self._results[trial[0]] = trial[3] / trial[2]
            self._next_trial()

    def _finish_round(self) -> None:
        results = self._results
        best = min(results.values())
        chosen = min((c for c, t in results.items() if t <= best * (1 + MARGIN)), key=_order)
        cost = max(0.0, self._round_seconds - self._round_batches * results[chosen])
        self._interval = min(2 * self._interval, MAX_INTERVAL) if chosen == self._chosen else INTERVAL
        self._gap = BUDGET * cost
        self.rounds.append(dict(results))
        self._chosen, self._usual, self._trial = chosen, results[chosen], None
        self._recent.clear()
        self._streak, self._since = 0, 0.0
        self._switch(chosen)
        self._mark()
